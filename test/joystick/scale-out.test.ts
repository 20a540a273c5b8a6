import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { scratchDatabase } from '../support/postgres.js';
import { collect, deleteQueue, publishRaw, uniquePrefix } from '../support/rabbit.js';
import { startCli, startWorld, type World } from '../support/world.js';

const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;
let pg: Awaited<ReturnType<typeof scratchDatabase>>;
let prefix: string;
let queue: string;
const replicas: ReturnType<typeof startCli>[] = [];

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  pg = await scratchDatabase();
  prefix = uniquePrefix();
  queue = `joystick_scale_${prefix.slice(-8)}`;
});

afterAll(async () => {
  for (const r of replicas) r.child.kill('SIGTERM');
  await Promise.all(replicas.map((r) => r.done));
  await deleteQueue(queue);
  await world?.close();
  await pg?.drop();
});

describe('two joystick replicas on one durable queue and one PostgreSQL database', () => {
  it('release every image exactly once', async () => {
    const config = await writeJoystickConfig(world, {
      prefix,
      queue,
      database: pg.url,
      regions: REGIONS,
      arches: ['x86_64', 'aarch64'],
      maxParallelJobs: 2,
    });
    const out = await collect([
      `${prefix}.fedimg.#`,
      `${prefix}.fedora_image_uploader.#`,
      `${prefix}.joystick.#`,
    ]);
    for (let i = 0; i < 2; i++)
      replicas.push(startCli('joystick', ['run', '--config', config], { ...world.env }));
    for (const r of replicas) await untilConsuming(r);
    const composes = [];
    for (let i = 0; i < 4; i++)
      composes.push(
        await world.compose({
          rawSize: 8 * 2 ** 20,
          version: `${40 + i}`,
          date: `2024050${i + 1}`,
          arches: ['x86_64', 'aarch64'],
          releaseShort: 'Fedora-Cloud',
        }),
      );
    for (const c of composes) {
      const [, short, version, date] = /^(.*)-(\d+)-(\d{8})\.0$/.exec(c.composeId)!;
      const body = {
        status: 'FINISHED',
        compose_id: c.composeId,
        location: c.url,
        compose_date: date,
        compose_type: 'production',
        compose_respin: 0,
        compose_label: `RC-${date}.0`,
        release_short: short,
        release_version: version,
      };
      // Each compose announced twice, as a flaky bridge would: still released once.
      await publishRaw(`${prefix}.pungi.compose.status.change`, body);
      await publishRaw(`${prefix}.pungi.compose.status.change`, body);
    }
    const jobs = composes.length * 2;
    const publishes = jobs * REGIONS.length * 2;
    await out.waitFor(
      (g) => g.filter((m) => m.routingKey.endsWith('fedimg.image.publish')).length >= publishes,
      240_000,
      'every publish message',
    );
    await sleep(2000);
    // Exactly once: one registration per primary image, one copy per other region, one message each.
    const calls = world.emulator.calls();
    expect(calls.filter((c) => c.operation === 'StartSnapshot')).toHaveLength(jobs);
    expect(calls.filter((c) => c.operation === 'RegisterImage')).toHaveLength(jobs * 2);
    expect(calls.filter((c) => c.operation === 'CopyImage')).toHaveLength(jobs * (REGIONS.length - 1) * 2);
    const publish = out.got.filter((m) => m.routingKey.endsWith('fedimg.image.publish'));
    expect(publish).toHaveLength(publishes);
    expect(
      new Set(
        publish.map(
          (m) =>
            `${String(m.body.compose)}/${String(m.body.image_name)}/${String(m.body.destination)}/${JSON.stringify(m.body.extra)}`,
        ),
      ).size,
    ).toBe(publishes);
    // Both replicas did work.
    const worked = replicas.map((r) => (r.output().stderr.match(/"msg":"job finished"/g) ?? []).length);
    expect(worked.reduce((a, b) => a + b, 0)).toBe(jobs);
    expect(worked.every((n) => n > 0)).toBe(true);
    await out.close();
  });
});
