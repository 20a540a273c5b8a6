import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tagMap, TAG_RELEASE } from '../../src/plume/providers/aws/images.js';
import type { AwsClients } from '../../src/plume/providers/aws/clients.js';
import { makeImages, writeSeasonCompose, type SeasonCompose } from '../../tools/reliability/season.js';
import { pungiBody } from '../../tools/reliability/pungi.js';
import { untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import {
  fixtureClients,
  imagesWithoutSnapshot,
  inventory,
  orphanSnapshots,
  rawhideRelease,
  seedDecoy,
  seedRelease,
  type Inventory,
} from '../support/prune-world.js';
import { collect, deleteQueue, publishRaw, uniquePrefix } from '../support/rabbit.js';
import { contractErrors } from '../support/schemas.js';
import { startCli, startWorld, type World } from '../support/world.js';

/**
 * Two simulated months of nightly Rawhide composes through `joystick run` (the built CLI, real RabbitMQ,
 * the AWS emulator, SQLite), with its lifecycle on and the soak's compressed clock: a simulated day lasts
 * DAY_SECONDS, composes are dated by it, and the policy's "now" runs on the same clock. Fedora's Rawhide
 * policy (deprecate after 14 days, delete after 30, keep the newest 3) must hold the stream at 30 live
 * releases from day 30 on; two Cloud (GA) releases, a decoy AMI plume did not make and an old Rawhide
 * release shared with another account must come through untouched (deprecated at most).
 */

const DAYS = 60;
const DAY_SECONDS = 2.5;
const REGIONS = ['us-east-1', 'eu-west-1'];
const DAY = 86_400_000;

let world: World;
let clients: AwsClients;
let joystick: ReturnType<typeof startCli>;
let out: Awaited<ReturnType<typeof collect>>;
let prefix: string;
let queue: string;
let realStart: number;
let simStart: number;
let decoy: string;
let shared: string[];
let sharedKey: string;
const counts: { day: number; releases: number }[] = [];

const ymd = (ms: number) => new Date(ms).toISOString().slice(0, 10).replace(/-/g, '');

/**
 * Where the policy's clock stops: noon (UTC) of the last nightly's date, so that however long a loaded
 * machine takes, the end state is that of the last day: builds are dated by day, so the nightlies of the
 * last 30 dates are 0..29 days old then, and the one before is 30.
 */
function simEnd(): number {
  return Date.parse(`${new Date(simStart + (DAYS - 1) * DAY).toISOString().slice(0, 10)}T12:00:00Z`);
}

function nightly(day: number): SeasonCompose {
  const date = ymd(simStart + day * DAY);
  return {
    id: `Fedora-Rawhide-${date}.n.0`,
    kind: 'rawhide',
    day,
    status: 'FINISHED',
    expect: 'publish',
    arches: ['x86_64'],
    version: 'Rawhide',
    date,
    respin: 0,
    label: null,
    releaseShort: 'Fedora',
    type: 'nightly',
    files: { x86_64: `Fedora-Cloud-Base-Generic-Rawhide-${date}.n.0.x86_64.raw.xz` },
    shape: 'full',
    duplicates: 0,
  };
}

function twoWeek(day: number): SeasonCompose {
  const date = ymd(simStart + day * DAY);
  return {
    ...nightly(day),
    id: `Fedora-Cloud-40-${date}.0`,
    kind: 'two-week',
    version: '40',
    label: `RC-${date}.0`,
    releaseShort: 'Fedora-Cloud',
    type: 'production',
    files: { x86_64: `Fedora-Cloud-Base-40-${date}.0.x86_64.raw.xz` },
  };
}

/** Live Rawhide releases joystick published (by plume's release tag) in the primary region. */
function rawhideReleases(inv: Inventory): string[] {
  return [
    ...new Set(
      inv.images
        .filter((i) => i.region === REGIONS[0])
        .map((i) => tagMap(i.Tags)[TAG_RELEASE] ?? '')
        .filter((r) => r.startsWith('fedora/rawhide/') && r !== sharedKey),
    ),
  ].sort();
}

beforeAll(async () => {
  world = await startWorld({ emulator: { pendingMs: 0 }, regions: REGIONS });
  Object.assign(process.env, world.env);
  clients = fixtureClients(world.emulator.endpoint);
  prefix = uniquePrefix();
  queue = `joystick_lifecycle_${prefix.slice(-8)}`;
  realStart = Date.now();
  simStart = realStart;
  // Already there when joystick starts: a decoy, and a Rawhide release 40 days old shared with an account.
  decoy = await seedDecoy(
    clients,
    REGIONS[0]!,
    `Fedora-Cloud-Base-Generic-Rawhide-${ymd(simStart - 50 * DAY)}.n.0.x86_64-hvm-us-east-1-gp3-0`,
  );
  const old = {
    ...rawhideRelease(new Date(simStart - 40 * DAY).toISOString().slice(0, 10), REGIONS, ['gp3']),
    shareWith: ['111122223333'],
  };
  sharedKey = old.key;
  shared = [...(await seedRelease(clients, old)).values()].flat();
  const config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    // One volume type keeps the simulation small; the prune tests cover two.
    volumeTypes: ['gp3'],
    arches: ['x86_64'],
    channels: ['rawhide', 'cloud'],
    maxParallelJobs: 2,
    extra: `lifecycle = true
prune_interval_hours = 1
simulated_clock = { real_start_ms = ${realStart}, simulated_start = "${new Date(simStart).toISOString()}", day_seconds = ${DAY_SECONDS}, simulated_end = "${new Date(simEnd()).toISOString()}" }`,
  });
  out = await collect([`${prefix}.joystick.image.#`]);
  joystick = startCli('joystick', ['run', '--config', config], world.env, { timeoutMs: 900_000 });
  await untilConsuming(joystick);
}, 120_000);

afterAll(async () => {
  if (process.env.JOYSTICK_TEST_LOG) console.log(joystick?.output().stderr);
  clients?.destroy();
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await world?.close();
});

describe('two simulated months of nightlies with the lifecycle on', { timeout: 900_000 }, () => {
  it('holds Rawhide at its bound, keeps GA, decoy and shared images, and announces each change once', async () => {
    const images = await makeImages(world.dir, ['x86_64'], 4 * 2 ** 20);
    const composes = [...Array.from({ length: DAYS }, (_, d) => nightly(d)), twoWeek(1), twoWeek(15)].sort(
      (a, b) => a.day - b.day,
    );
    for (const c of composes) await writeSeasonCompose(join(world.dir, 'composes'), c, images);
    for (const c of composes) {
      // Each compose finishes a little into its simulated day.
      const at = realStart + (c.day + 0.2) * DAY_SECONDS * 1000;
      if (at > Date.now()) await sleep(at - Date.now());
      await publishRaw(
        `${prefix}.pungi.compose.status.change`,
        pungiBody(c.id, `${world.files.url}/${c.id}/compose`, 'FINISHED', { compose_label: c.label }),
      );
      if (c.kind === 'rawhide' && c.day >= 32)
        counts.push({ day: c.day, releases: rawhideReleases(await inventory(clients, REGIONS)).length });
    }
    // Drain: every job done, the last prune after the last release done.
    const last = `fedora/rawhide/${nightly(DAYS - 1).id}/Cloud-Base/x86_64`;
    const end = Date.now() + 300_000;
    let inv = await inventory(clients, REGIONS);
    while (!(rawhideReleases(inv).includes(last) && rawhideReleases(inv).length <= 30)) {
      if (Date.now() > end) throw new Error(`not settled: ${rawhideReleases(inv).length} releases`);
      await sleep(1000);
      inv = await inventory(clients, REGIONS);
    }
    await sleep(3000);
    inv = await inventory(clients, REGIONS);

    // The bound: at most 30 releases of age 0..29 once a month has passed (one more while a prune lags a
    // release), exactly 30 at the end, in both regions, none without its snapshot and no orphan snapshot.
    const live = rawhideReleases(inv);
    expect(live).toHaveLength(30);
    expect(Math.max(...counts.map((c) => c.releases))).toBeLessThanOrEqual(31);
    expect(live).toEqual(
      Array.from({ length: 30 }, (_, i) => `fedora/rawhide/${nightly(DAYS - 30 + i).id}/Cloud-Base/x86_64`),
    );
    for (const region of REGIONS)
      expect(
        inv.images.filter((i) => i.region === region && live.includes(tagMap(i.Tags)[TAG_RELEASE]!)),
      ).toHaveLength(30);
    expect(orphanSnapshots(inv)).toEqual([]);
    expect(imagesWithoutSnapshot(inv)).toEqual([]);
    // The newest 3 are not even deprecated; what is past 14 days is.
    const byRelease = (r: string) => inv.images.filter((i) => tagMap(i.Tags)[TAG_RELEASE] === r);
    for (const r of live.slice(-3)) expect(byRelease(r).every((i) => !i.DeprecationTime)).toBe(true);
    for (const r of live.slice(0, 14)) expect(byRelease(r).every((i) => i.DeprecationTime)).toBe(true);
    // GA releases, the decoy and the shared release: all still there.
    const ids = new Set(inv.images.map((i) => i.ImageId));
    const ga = inv.images.filter((i) => (tagMap(i.Tags)[TAG_RELEASE] ?? '').startsWith('fedora/cloud/'));
    expect(ga).toHaveLength(2 * REGIONS.length);
    expect(ids.has(decoy)).toBe(true);
    for (const s of shared) expect(ids.has(s), s).toBe(true);

    // Announcements: one per deleted and per deprecated image, valid, never twice.
    await out.waitFor(
      (got) =>
        got.filter((m) => m.routingKey.endsWith('joystick.image.deleted')).length >= 30 * REGIONS.length,
      60_000,
      'the deletions announced',
    );
    await sleep(2000);
    const msgs = out.got;
    expect(msgs.flatMap((m) => contractErrors(m.routingKey.slice(prefix.length + 1), m.body))).toEqual([]);
    const deleted = msgs.filter((m) => m.routingKey.endsWith('joystick.image.deleted'));
    expect(deleted).toHaveLength(30 * REGIONS.length);
    expect(new Set(deleted.map((m) => m.body.image_id)).size).toBe(deleted.length);
    const deprecated = msgs.filter((m) => m.routingKey.endsWith('joystick.image.deprecated'));
    expect(new Set(deprecated.map((m) => m.body.image_id)).size).toBe(deprecated.length);
    for (const m of deleted) expect(ids.has(m.body.image_id as string)).toBe(false);

    // The metric and the status page count the public images of the stream.
    const statusUrl = /"url":"([^"]+)","msg":"status page/.exec(joystick.output().stderr)![1]!;
    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    const rawhidePublic = inv.images.filter((i) =>
      (tagMap(i.Tags)[TAG_RELEASE] ?? '').startsWith('fedora/rawhide/'),
    ).length;
    expect(metrics).toContain(
      `joystick_public_images{provider="aws",channel="rawhide",arch="x86_64"} ${rawhidePublic}`,
    );
    const status = (await (await fetch(`${statusUrl}/status.json`)).json()) as {
      lifecycle: { publicImages: { provider: string; channel: string; arch: string; images: number }[] };
    };
    expect(status.lifecycle.publicImages).toContainEqual({
      provider: 'aws',
      channel: 'rawhide',
      arch: 'x86_64',
      images: rawhidePublic,
    });
    console.log(
      `lifecycle simulation: ${live.length} live Rawhide releases (${live.length * REGIONS.length} AMIs) after ${DAYS} days; max seen ${Math.max(...counts.map((c) => c.releases))}; ${deleted.length} deleted, ${deprecated.length} deprecated announcements`,
    );
  });
});
