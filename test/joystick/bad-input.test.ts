import { execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';
import { rehashImage, shrinkXzIndex } from '../support/xz.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';

/**
 * The bad-input catalogue through joystick, on the real RabbitMQ: each bad message or compose ends with a
 * log line (a message dropped) or an ERROR announcement naming the reason, and nothing is published.
 * (Malformed JSON, `compose_id: 42` and a compose without images.json are in joystick-e2e.test.ts.)
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
const MAX_BYTES = 4096;
let world: World;
let prefix: string;
let queue: string;
let config: string;
let joystick: ReturnType<typeof startCli>;
let out: Awaited<ReturnType<typeof collect>>;
let version = 40;

type Compose = SampleCompose & { url: string; dir: string };

async function compose(spec: { dataFraction?: number; rawSize?: number } = {}): Promise<Compose> {
  const c = await world.compose({
    rawSize: spec.rawSize ?? 8 * 2 ** 20,
    dataFraction: spec.dataFraction,
    version: String(version++),
    date: '20210101',
    arches: ['x86_64'],
  });
  return { ...c, dir: join(world.dir, 'composes', c.composePath) };
}

const send = (body: unknown) => publishRaw(`${prefix}.pungi.compose.status.change`, body);
const about = (id: string) => (m: Received) => m.body.compose_id === id || m.body.compose === id;
const log = () => joystick.output().stderr;

/** Publish the compose's message and return the one ERROR message joystick sends about it. */
async function failure(c: { composeId: string; url: string }, topic: string): Promise<Received> {
  await send(pungiMessage(c));
  await out.waitFor(
    (g) => g.some((m) => m.routingKey === `${prefix}.${topic}` && about(c.composeId)(m)),
    120_000,
    `${topic} for ${c.composeId}`,
  );
  const msgs = out.got.filter(about(c.composeId));
  const errors = msgs.filter((m) => m.routingKey === `${prefix}.${topic}`);
  expect(errors).toHaveLength(1);
  expect(errors[0]!.headers.fedora_messaging_severity).toBe(40);
  // Nothing about this compose says an image exists.
  expect(msgs.filter((m) => /image\.(copy|publish)|fedora_image_uploader/.test(m.routingKey))).toEqual([]);
  return errors[0]!;
}

async function jobOf(composeId: string) {
  const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
  return JSON.parse(st.stdout).composes.find((x: { composeId: string }) => x.composeId === composeId);
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  queue = `joystick_bad_${prefix.slice(-8)}`;
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: ['x86_64'],
    extra: `max_message_bytes = ${MAX_BYTES}`,
  });
  out = await collect([`${prefix}.fedimg.#`, `${prefix}.fedora_image_uploader.#`, `${prefix}.joystick.#`]);
  joystick = startCli('joystick', ['run', '--config', config], world.env);
  await untilConsuming(joystick);
});

afterAll(async () => {
  if (process.env.JOYSTICK_TEST_LOG) console.log(log());
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await world?.close();
});

describe('bad messages are dropped with a log line', { timeout: 120_000 }, () => {
  it('an oversized message (over max_message_bytes) and wrong field types', async () => {
    const c = await compose();
    await send({ ...pungiMessage(c), padding: 'x'.repeat(MAX_BYTES) });
    await send([pungiMessage(c)]);
    await send({ ...pungiMessage(c), location: 123 });
    await send({ ...pungiMessage(c), compose_respin: 'zero' });
    await send({ ...pungiMessage(c), status: null });
    const end = Date.now() + 30_000;
    // The bus layer drops what is not a fedora-messaging message; the controller what is not Pungi's.
    const drops = () =>
      (
        log().match(
          /"msg":"dropping a message that is not valid"|"msg":"dropping an invalid compose message"/g,
        ) ?? []
      ).length;
    while (drops() < 5) {
      if (Date.now() > end) throw new Error(`not all dropped: ${log()}`);
      await sleep(100);
    }
    expect(log()).toMatch(
      /"reason":"the body is \d+ bytes, over the limit of 4096".*"msg":"dropping a message that is not valid"/,
    );
    expect(log()).toMatch(
      /"reason":"the body is a JSON array, not an object".*"msg":"dropping a message that is not valid"/,
    );
    expect(log()).toMatch(
      /"reason":"not a Pungi compose status message: location: Invalid input: expected string, received number"/,
    );
    expect(log()).toMatch(/"reason":"not a Pungi compose status message: compose_respin: /);
    expect(log()).toMatch(
      /"reason":"not a Pungi compose status message: status: Invalid input: expected string, received null"/,
    );
    // None of them became a compose, and nothing was fetched for it.
    expect(await jobOf(c.composeId)).toBeUndefined();
    expect(world.files.requests.filter((r) => r.path.includes(c.composeId))).toEqual([]);
  });
});

describe('bad composes end in an ERROR announcement and nothing published', { timeout: 180_000 }, () => {
  it('a compose location on a host that is not allowed: refused with no fetch at all', async () => {
    const c = await compose();
    const m = await failure(
      { ...c, url: c.url.replace('127.0.0.1', 'localhost') },
      'joystick.compose.failed',
    );
    expect(String(m.body.reason)).toMatch(
      /^host localhost:\d+ is not an allowed image source: add it to \[source\] allowed_hosts/,
    );
    expect(world.files.requests.filter((r) => r.path.includes(c.composeId))).toEqual([]);
  });

  it('images.json that is not JSON, or of an unknown productmd version', async () => {
    const notJson = await compose();
    writeFileSync(
      join(notJson.dir, 'metadata', 'images.json'),
      '{"header": {"type": "productmd.images", "ver',
    );
    const m1 = await failure(notJson, 'joystick.compose.failed');
    expect(String(m1.body.reason)).toMatch(
      /metadata\/images\.json is not JSON \(.*\): the compose metadata is damaged or not a productmd file$/,
    );

    const future = await compose();
    const meta = join(future.dir, 'metadata', 'images.json');
    const data = JSON.parse(readFileSync(meta, 'utf8'));
    data.header.version = '9.9';
    writeFileSync(meta, JSON.stringify(data));
    const m2 = await failure(future, 'joystick.compose.failed');
    expect(String(m2.body.reason)).toMatch(
      /metadata\/images\.json is productmd images version 9\.9, which plume does not know: supported: /,
    );
  });

  it('an images.json path with .. or an absolute URL: the job fails at once, nothing is fetched from it', async () => {
    for (const [path, reason] of [
      ['../../../../etc/passwd.raw.xz', /tries to leave the compose directory/],
      ['https://evil.example/Fedora-Cloud-Base.raw.xz', /is not relative to the compose/],
    ] as const) {
      const c = await compose();
      const meta = join(c.dir, 'metadata', 'images.json');
      writeFileSync(meta, readFileSync(meta, 'utf8').replaceAll(c.images.x86_64!.path, path));
      const m = await failure(c, 'joystick.release.failed');
      expect(String(m.body.reason)).toMatch(reason);
      expect(
        world.files.requests.filter(
          (r) => r.path.includes('passwd') || (r.path.endsWith('.raw.xz') && r.path.includes(c.composeId)),
        ),
      ).toEqual([]);
      const job = (await jobOf(c.composeId)).jobs[0];
      // Bad input is not retried: one attempt, failed.
      expect([job.state, job.attempts]).toEqual(['failed', 1]);
    }
  });

  it('a sha256 mismatch, a truncated xz, and an xz that decodes past its index: upload fails, no image', async () => {
    const mismatch = await compose();
    const meta = (c: Compose) => join(c.dir, 'metadata', 'images.json');
    writeFileSync(
      meta(mismatch),
      readFileSync(meta(mismatch), 'utf8').replace(mismatch.images.x86_64!.sha256, 'e'.repeat(64)),
    );

    const truncated = await compose();
    const tImage = join(truncated.dir, truncated.images.x86_64!.path);
    writeFileSync(tImage, readFileSync(tImage).subarray(0, 100_000));
    rehashImage(meta(truncated), truncated.images.x86_64!.sha256, tImage);

    const lying = await compose({ rawSize: 16 * 2 ** 20, dataFraction: 1 });
    const lImage = join(lying.dir, lying.images.x86_64!.path);
    execFileSync('sh', [
      '-c',
      `xz -dc '${lImage}' | xz -T1 -1 -c > '${lImage}.1' && mv '${lImage}.1' '${lImage}'`,
    ]);
    shrinkXzIndex(lImage, 4);
    rehashImage(meta(lying), lying.images.x86_64!.sha256, lImage);

    for (const [c, reason] of [
      [
        mismatch,
        /sha256 mismatch for .*: expected e{64}, got [0-9a-f]{64}: the image changed or is corrupt; nothing was registered/,
      ],
      [truncated, /the image is not a complete xz file \(.*\): check that the file is fully written/],
      [lying, /the image decompresses to more than the 4194304 bytes its xz index declares/],
    ] as const) {
      const m = await failure(c, 'joystick.release.failed');
      expect(String(m.body.reason)).toMatch(reason);
      const job = (await jobOf(c.composeId)).jobs[0];
      expect([job.state, job.attempts]).toEqual(['failed', 1]);
      // fedimg's own failure message went out too, as fedimg sent it.
      const upload = out.got.filter(
        (x) => x.routingKey === `${prefix}.fedimg.image.upload` && about(c.composeId)(x),
      );
      expect(upload.map((x) => x.body.status).sort()).toEqual(['failed', 'failed', 'started', 'started']);
    }

    // Nothing exists in AWS: no image, and every snapshot an upload started was deleted.
    const aws = new Inspector(world.emulator.endpoint);
    const inv = await aws.inventory(REGIONS);
    aws.destroy();
    expect(inv.images).toEqual([]);
    expect(inv.snapshots).toEqual([]);
    expect(out.got.filter((x) => x.routingKey.endsWith('image.publish'))).toEqual([]);
  });
});

describe('AWS credentials others can read', () => {
  it('stop joystick before it starts, naming the file and the fix', async () => {
    const file = join(world.dir, 'shared-credentials');
    writeFileSync(
      file,
      '[default]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = not-a-secret\n',
      {
        mode: 0o644,
      },
    );
    chmodSync(file, 0o644);
    const env = { ...world.env, AWS_SHARED_CREDENTIALS_FILE: file };
    const refused = await runCli('joystick', ['run', '--config', config, '--check'], env);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toContain(`refusing AWS credentials file ${file}: its mode 0644`);
    expect(refused.stderr).toContain(`chmod 600 ${file}`);

    chmodSync(file, 0o600);
    const ok = await runCli('joystick', ['run', '--config', config, '--check'], env);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain('configuration OK');
  });
});
