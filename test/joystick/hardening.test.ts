import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { statusHtml, statusModel } from '../../src/joystick/http/status.js';
import { openSqlite } from '../../src/joystick/store/db.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { Inspector } from '../support/inspect.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { scratchDatabase } from '../support/postgres.js';
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

describe('a compose read for several leases by one of two replicas', { timeout: 120_000 }, () => {
  // Hardening item 11: the compose lease is renewed while its metadata is read; without the renewal the
  // compose was claimed again mid-read once the lease lapsed (by the other replica, or by another compose
  // loop of the same one) and its images.json read a second time.
  const LEASE_SECONDS = 5; // the smallest lease_seconds allows
  const replicas: ReturnType<typeof startCli>[] = [];
  let pg: Awaited<ReturnType<typeof scratchDatabase>> | undefined;
  let leaseQueue = '';
  let leaseOut: Awaited<ReturnType<typeof collect>> | undefined;

  afterAll(async () => {
    if (process.env.JOYSTICK_TEST_LOG) for (const r of replicas) console.log(r.output().stderr);
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.done));
    await leaseOut?.close();
    if (leaseQueue) await deleteQueue(leaseQueue);
    await pg?.drop();
  });

  it('is read once by one replica, kept by it however long the read, and published once', async () => {
    pg = await scratchDatabase();
    const leasePrefix = uniquePrefix();
    leaseQueue = `joystick_lease_${leasePrefix.slice(-8)}`;
    const leaseConfig = await writeJoystickConfig(
      world,
      {
        prefix: leasePrefix,
        queue: leaseQueue,
        database: pg.url,
        regions: REGIONS,
        arches: ['x86_64'],
        leaseSeconds: LEASE_SECONDS,
        extra: 'compose_stall_seconds = 2',
        // The slow read is allowed: no minimum rate, and deadlines well past it.
        sourceExtra: 'min_rate_bytes_per_second = 0\ndocument_timeout_seconds = 90',
      },
      'lease.toml',
    );
    leaseOut = await collect([
      `${leasePrefix}.fedimg.#`,
      `${leasePrefix}.fedora_image_uploader.#`,
      `${leasePrefix}.joystick.#`,
    ]);
    for (let i = 0; i < 2; i++)
      replicas.push(startCli('joystick', ['run', '--config', leaseConfig], { ...world.env }));
    for (const r of replicas) await untilConsuming(r);
    const v = String(version++);
    const c = await world.compose({
      rawSize: 8 * 2 ** 20,
      version: v,
      date: '20220202',
      arches: ['x86_64'],
    });
    const meta = `${c.composeId}/compose/metadata/images.json`;
    const size = (await stat(join(world.dir, 'composes', meta))).size;
    // The first read of images.json takes about three leases (a few bytes every 100 ms: never idle); any
    // later read (the job's, or a replica taking the compose over) is served at once.
    const fault = { pathSuffix: meta, bytesPerSecond: Math.ceil(size / (3 * LEASE_SECONDS)), times: 1 };
    world.files.faults.push(fault);
    await publishRaw(`${leasePrefix}.pungi.compose.status.change`, pungiMessage(c));
    const publishes = () =>
      leaseOut!.got.filter((m) => m.routingKey === `${leasePrefix}.fedimg.image.publish`);
    // Two regions, two volume types.
    await leaseOut.waitFor(() => publishes().length >= REGIONS.length * 2, 90_000, 'every publish message');
    const logs = () => replicas.map((r) => r.output().stderr);
    const status = async () => {
      const st = await runCli('joystick', ['status', '--config', leaseConfig, '--json'], world.env);
      return (JSON.parse(st.stdout) as { composes: { composeId: string; status: string }[] }).composes.find(
        (x) => x.composeId === c.composeId,
      )?.status;
    };
    const end = Date.now() + 60_000;
    while ((await status()) !== 'published') {
      if (Date.now() > end) throw new Error(`the compose was not published: ${logs().join('\n')}`);
      await sleep(200);
    }
    const id = c.composeId.replace(/\./g, '\\.');
    const lines = (log: string, msg: string) =>
      log.split('\n').filter((l) => new RegExp(`"compose":"${id}"[^\\n]*"msg":"${msg}`).test(l));
    // Read once until it was planned, though that read outlasted the lease more than twice: the renewal kept
    // the compose with its reader (without it, the compose was claimed again once the lease lapsed, by the
    // other replica or by another compose loop of the same one, and read a second time).
    const plannedAt = Math.min(
      ...logs()
        .flatMap((l) => lines(l, 'job queued'))
        .map((l) => Date.parse(JSON.parse(l).time as string)),
    );
    const reads = world.files.requests.filter(
      (r) => r.method === 'GET' && r.path.endsWith(meta) && r.at <= plannedAt,
    );
    expect(reads, 'GETs of images.json until the compose was planned').toHaveLength(1);
    expect(plannedAt - reads[0]!.at).toBeGreaterThan(2 * LEASE_SECONDS * 1000);
    // One replica read the compose: it logged the stall (its read took over 2 s) and queued the jobs; the
    // other queued none (a replica taking the compose over reads it at once and plans it itself).
    const stalls = logs().map((l) => lines(l, 'compose stalled').length);
    const queued = logs().map((l) => lines(l, 'job queued'));
    const reader = stalls.findIndex((n) => n > 0);
    expect(stalls.toSorted(), logs().join('\n')).toEqual([0, 1]);
    expect(queued[reader]!.length, 'the replica that read the compose queued its jobs').toBeGreaterThan(0);
    expect(queued[1 - reader], 'the other replica queued none').toEqual([]);
    for (const l of logs()) expect(l).not.toContain('cannot renew the compose lease');
    // Published once: each AMI registered once, each announcement sent once.
    const inspector = new Inspector(world.emulator.endpoint);
    for (const region of REGIONS) {
      const amis = (await inspector.images(region)).filter((i) => i.Name?.includes(`-${v}-20220202.`));
      expect(amis, region).toHaveLength(2);
      expect(new Set(amis.map((i) => i.Name)).size).toBe(2);
    }
    expect(publishes()).toHaveLength(REGIONS.length * 2);
    expect(new Set(publishes().map((m) => JSON.stringify(m.body))).size).toBe(REGIONS.length * 2);
    // No announcement of any kind (fedimg, the uploader's, joystick's own) went out twice.
    const sent = leaseOut.got.map((m) => `${m.routingKey} ${JSON.stringify(m.body)}`);
    expect(new Set(sent).size).toBe(sent.length);
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
