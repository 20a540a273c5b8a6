import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * joystick killed (kill -9) while its GCE job sends the archive to Cloud Storage, then restarted: the job,
 * taken over under a new lease, resumes the upload session the killed process saved in the job store and
 * sends only what the session lacks; the session URI (a bearer capability) appears in none of joystick's
 * output, its status page or `joystick status`, and its row is gone once the object is made.
 */

const REGIONS = ['us-east-1'];
const MiB = 2 ** 20;

let world: World;
let prefix: string;
let queue: string;
let config: string;
let dbPath: string;
let out: Awaited<ReturnType<typeof collect>>;
let joystick: ReturnType<typeof startCli> | undefined;

const ofCompose = (id: string) => (r: Received) => r.body.compose === id || r.body.compose_id === id;
const topic = (m: Received) => m.routingKey.slice(prefix.length + 1);

function savedSessions(): { uri: string; object: string }[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare('SELECT uri, object FROM upload_sessions').all() as { uri: string; object: string }[];
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS, gcp: true });
  prefix = uniquePrefix();
  queue = `joystick_gce_resume_${prefix.slice(-8)}`;
  dbPath = join(world.dir, 'joystick.db');
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${dbPath}`,
    regions: REGIONS,
    arches: ['x86_64'],
    maxParallelJobs: 2,
    leaseSeconds: 5,
  });
  out = await collect([`${prefix}.fedimg.#`, `${prefix}.fedora_image_uploader.#`, `${prefix}.joystick.#`]);
});

afterAll(async () => {
  if (process.env.JOYSTICK_TEST_LOG) console.log(joystick?.output().stderr);
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await world?.close();
});

describe('joystick killed mid GCE upload', { timeout: 300_000 }, () => {
  it('resumes the upload after a restart: only the rest of the archive is sent', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241005',
      rawSize: 16 * MiB,
      dataFraction: 0.5,
      arches: ['x86_64'],
      gce: true,
    });
    const archive = compose.gce.x86_64!;
    const size = statSync(join(compose.root, compose.composePath, archive.path)).size;
    const objectName = archive.path.split('/').pop()!;
    const session = () => world.gcp!.uploads().filter((u) => u.name.endsWith(`/${objectName}`));

    // The archive's third 1 MiB request is held: the session holds the first two when joystick is killed.
    const fault = world.gcp!.addFault({
      service: 'storage',
      operation: 'objects.insert.chunk',
      kind: 'latency',
      latencyMs: 60_000,
      skip: 2,
    });
    const first = startCli('joystick', ['run', '--config', config], world.env);
    joystick = first;
    await untilConsuming(first);
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    const deadline = Date.now() + 120_000;
    while (!world.gcp!.faultStats().find((f) => f.id === fault)?.fired) {
      if (Date.now() > deadline)
        throw new Error(`the GCE upload never reached its third chunk: ${first.output().stderr}`);
      await sleep(50);
    }
    first.child.kill('SIGKILL');
    const killed = await first.done;
    world.gcp!.removeFault(fault);
    const killedAt = Date.now();
    expect(session().map((u) => u.persisted)).toEqual([2 * MiB]);
    const saved = savedSessions().filter((s) => s.object.endsWith(`/${objectName}`));
    expect(saved).toHaveLength(1);

    const second = startCli('joystick', ['run', '--config', config], world.env);
    joystick = second;
    await untilConsuming(second);
    await out.waitFor(
      (g) =>
        g
          .filter(ofCompose(compose.composeId))
          .some((m) => topic(m).startsWith('fedora_image_uploader.published.v1.gcp')),
      240_000,
      'the GCE image announced',
    );

    // One session, the killed process's: completed from where it stood, nothing before 2 MiB sent again.
    const [upload, ...others] = session();
    expect(others).toEqual([]);
    expect(upload!.complete).toBe(true);
    const resent = upload!.received.filter((r) => r.at >= killedAt);
    expect(Math.min(...resent.map((r) => r.start))).toBe(2 * MiB);
    expect(resent.reduce((n, r) => n + r.bytes, 0)).toBe(size - 2 * MiB);
    expect(second.output().stderr).toContain('resuming the upload a previous run left');
    // The object is made: its session is forgotten.
    expect(savedSessions().filter((s) => s.object.endsWith(`/${objectName}`))).toEqual([]);

    // A bearer capability: in the job store only, never in joystick's output or status.
    const uploadId = new URL(saved[0]!.uri).searchParams.get('upload_id')!;
    expect(uploadId.length).toBeGreaterThan(20);
    const statusUrl = /"url":"([^"]+)","msg":"status page/.exec(second.output().stderr)![1]!;
    const status = await runCli('joystick', ['status', '--config', config], world.env);
    const statusJson = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
    const pages = [
      await (await fetch(`${statusUrl}/status`)).text(),
      await (await fetch(`${statusUrl}/status.json`)).text(),
    ];
    for (const text of [
      killed.stdout,
      killed.stderr,
      second.output().stdout,
      second.output().stderr,
      status.stdout,
      statusJson.stdout,
      ...pages,
    ])
      expect(text).not.toContain(uploadId);
    expect(statusJson.stdout).toContain(compose.composeId);
  });
});
