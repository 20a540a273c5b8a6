import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusHtml, statusModel } from '../../src/joystick/http/status.js';
import { openSqlite } from '../../src/joystick/store/db.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * Issue 13 through joystick on the real RabbitMQ: a slow compose host and hostile message fields.
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;
let prefix: string;
let queue: string;
let config: string;
let joystick: ReturnType<typeof startCli>;
let out: Awaited<ReturnType<typeof collect>>;
let version = 50;

async function compose() {
  return world.compose({
    rawSize: 8 * 2 ** 20,
    version: String(version++),
    date: '20220101',
    arches: ['x86_64'],
  });
}

const send = (body: unknown) => publishRaw(`${prefix}.pungi.compose.status.change`, body);
const about = (id: string) => (m: Received) => m.body.compose_id === id || m.body.compose === id;
const log = () => joystick.output().stderr;
const statusUrl = () =>
  /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*"msg":"status page, health and metrics listening"/.exec(
    log(),
  )![1]!;

async function until(what: string, ok: () => boolean | Promise<boolean>, ms = 120_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await ok())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${log().slice(-4000)}`);
    await sleep(100);
  }
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  queue = `joystick_hard_${prefix.slice(-8)}`;
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: ['x86_64'],
    extra: 'compose_stall_seconds = 2',
  });
  out = await collect([`${prefix}.fedimg.#`, `${prefix}.fedora_image_uploader.#`, `${prefix}.joystick.#`]);
  joystick = startCli('joystick', ['run', '--config', config], world.env);
  await untilConsuming(joystick);
});

afterAll(async () => {
  if (process.env.JOYSTICK_TEST_LOG) console.log(log());
  world?.files.faults.splice(0);
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await world?.close();
});

describe('a slow compose host', { timeout: 180_000 }, () => {
  it('holds back no other compose, and its stall shows in the log, the status page and the metrics', async () => {
    const slow = await compose();
    const fast = await compose();
    const slowMeta = `${slow.composeId}/compose/metadata/images.json`;
    world.files.faults.push({ pathSuffix: slowMeta, bytesPerSecond: 1, times: Infinity });
    await send(pungiMessage(slow));
    await until('the slow compose to be read', () =>
      world.files.requests.some((r) => r.path.endsWith(slowMeta)),
    );
    await send(pungiMessage(fast));
    // The other compose is published while the slow one is still being read.
    await until('the fast compose published', () =>
      out.got.some((m) => m.routingKey === `${prefix}.fedimg.image.publish` && about(fast.composeId)(m)),
    );
    expect(out.got.filter(about(slow.composeId))).toEqual([]);
    await until('the stall logged', () =>
      log().includes('"msg":"compose stalled: its metadata is still being read"'),
    );
    expect(log()).toMatch(
      new RegExp(`"compose":"${slow.composeId.replace(/\./g, '\\.')}","seconds":\\d+,"msg":"compose stalled`),
    );
    const page = await (await fetch(`${statusUrl()}/status`)).text();
    const article = page.slice(page.indexOf(`data-compose="${slow.composeId}"`));
    expect(article.slice(0, 600)).toMatch(
      /<p class="error stalled">stalled: reading its metadata for \d+ s<\/p>/,
    );
    const metrics = await (await fetch(`${statusUrl()}/metrics`)).text();
    expect(metrics).toMatch(/^joystick_composes_stalled 1$/m);
    const st = await runCli('joystick', ['status', '--config', config], world.env);
    expect(st.stdout).toMatch(
      new RegExp(
        `^${slow.composeId.replace(/\./g, '\\.')}  received  STALLED: reading its metadata for \\d+ s$`,
        'm',
      ),
    );
    world.files.faults.splice(0);
  });
});

describe(
  'values from the bus are checked before they are stored, and escaped where shown',
  { timeout: 120_000 },
  () => {
    it('a compose id with terminal escapes and a javascript: location are dropped with one line each', async () => {
      const c = await compose();
      const forged = `${c.composeId}\u001b[1A\u001b[2K\rFedora-Cloud-99-20990101.0  published`;
      await send({ ...pungiMessage(c), compose_id: forged });
      await send({ ...pungiMessage(c), location: 'javascript:alert(document.domain)//' });
      const drops = () => (log().match(/"msg":"dropping an invalid compose message"/g) ?? []).length;
      await until('both dropped', () => drops() >= 2, 30_000);
      expect(log()).toMatch(
        /"reason":"not a Pungi compose status message: compose_id: not a Pungi compose id \(/,
      );
      expect(log()).toMatch(
        /"reason":"not a Pungi compose status message: location: not an http\(s\) URL \(a compose location is only ever fetched over http or https\)"/,
      );
      const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
      const ids = (JSON.parse(st.stdout) as { composes: { composeId: string }[] }).composes.map(
        (x) => x.composeId,
      );
      expect(ids.filter((id) => id.startsWith(c.composeId))).toEqual([]);
      expect(world.files.requests.filter((r) => r.path.includes(c.composeId))).toEqual([]);
    });

    it('rows stored before the check are shown escaped: no live link, no terminal escape', async () => {
      const dbPath = join(world.dir, 'old.db');
      const store = await JobStore.open(openSqlite(dbPath));
      const id = 'Fedora-Cloud-30-20190611.0\u001b[2K\rFAKE  published';
      await store.recordCompose(
        { status: 'FINISHED', id, location: 'javascript:alert(document.domain)//<script>x</script>' },
        'm-1',
      );
      const html = statusHtml(await statusModel(store));
      await store.close();
      expect(html).not.toMatch(/href="javascript:/i);
      expect(html).not.toContain('<script>x</script>');
      expect(html).toContain('compose at javascript:alert(document.domain)//&lt;script&gt;x&lt;/script&gt;');
      const oldConfig = await writeJoystickConfig(
        world,
        { prefix, queue, database: `sqlite:///${dbPath}`, regions: REGIONS },
        'old.toml',
      );
      const st = await runCli('joystick', ['status', '--config', oldConfig], world.env);
      expect(st.code, st.stderr).toBe(0);
      expect(st.stdout).not.toContain(String.fromCharCode(27));
      expect(st.stdout).not.toContain('\r');
      expect(st.stdout).toContain('Fedora-Cloud-30-20190611.0\\x1b[2K\\x0dFAKE  published  received');
    });
  },
);
