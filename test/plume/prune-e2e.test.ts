import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { AwsClients } from '../../src/plume/providers/aws/clients.js';
import { rootSnapshotId } from '../../src/plume/providers/aws/images.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';
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

/**
 * `plume prune` (the built CLI) against the AWS emulator, on releases laid out as `plume release` leaves
 * them: a Rawhide release every 4 days for 44 days in three regions, two volume types each (the primary
 * region's two AMIs share one snapshot), one of them also shared with another account, and two decoys
 * plume did not make. Fedora's Rawhide policy: deprecate after 14 days, delete after 30, keep the newest 3.
 */

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
/**
 * The golden dry run is evaluated at a fixed time; the runs that change things at the clock's, since AWS
 * takes deprecation times only from now on (and the ages below are counted back from either).
 */
const GOLDEN_NOW = '2026-03-01T00:00:00.000Z';
let NOW = GOLDEN_NOW;
const DAY = 86_400_000;
const GOLDEN = new URL('golden/prune/', import.meta.url).pathname;
const UPDATE = process.env.PLUME_UPDATE_GOLDEN === '1';
const SHARED_AGE = 32;

let world: World;
let clients: AwsClients;
let decoys: string[];
let sharedIds: string[];
let byAge: Map<number, string[]>;

function dateAgo(days: number): string {
  return new Date(Date.parse(NOW) - days * DAY).toISOString().slice(0, 10);
}

async function seed(now: string): Promise<void> {
  NOW = now;
  await world.emulator.reset();
  byAge = new Map();
  for (let age = 0; age <= 44; age += 4) {
    const release = {
      ...rawhideRelease(dateAgo(age), REGIONS),
      ...(age === SHARED_AGE ? { shareWith: ['111122223333'] } : {}),
    };
    byAge.set(age, [...(await seedRelease(clients, release)).values()].flat());
  }
  sharedIds = byAge.get(SHARED_AGE)!;
  decoys = [
    await seedDecoy(
      clients,
      'us-east-1',
      'Fedora-Cloud-Base-Rawhide-20200101.n.0.x86_64-hvm-us-east-1-gp3-0',
    ),
    await seedDecoy(
      clients,
      'eu-west-1',
      'Fedora-Cloud-Base-Rawhide-20200102.n.0.x86_64-hvm-eu-west-1-gp3-0',
    ),
  ];
  // What a test counts is what plume did, not the layout.
  world.emulator.clearCalls();
}

const prune = (...extra: string[]) => [
  'prune',
  '--system',
  'fedora',
  '--channel',
  'rawhide',
  '--now',
  NOW,
  '--config',
  world.configPath,
  ...extra,
];

const ids = (inv: Inventory) => new Set(inv.images.map((i) => i.ImageId!));

/** What a finished prune of this layout must leave, whatever happened on the way. */
function expectPruned(inv: Inventory): void {
  const live = ids(inv);
  for (const d of decoys) expect(live.has(d), `decoy ${d}`).toBe(true);
  for (const s of sharedIds) expect(live.has(s), `shared ${s}`).toBe(true);
  for (const [age, list] of byAge) {
    const alive = list.filter((i) => live.has(i));
    if (age >= 30 && age !== SHARED_AGE) expect(alive, `release of age ${age}`).toEqual([]);
    else expect(alive, `release of age ${age}`).toEqual(list);
  }
  expect(orphanSnapshots(inv)).toEqual([]);
  expect(imagesWithoutSnapshot(inv)).toEqual([]);
  const deprecated = inv.images.filter((i) => i.DeprecationTime).map((i) => i.ImageId!);
  const expected = [...byAge].filter(([age]) => age >= 14 && age < 30).flatMap(([, l]) => l);
  expect(deprecated.sort()).toEqual([...expected, ...sharedIds].sort());
}

/** Each successful DeregisterImage / DeleteSnapshot removed something: nothing was deleted twice. */
function expectNothingTwice(before: Inventory, after: Inventory): void {
  const ok = (op: string) =>
    world.emulator.calls().filter((c) => c.operation === op && c.status === 200).length;
  expect(ok('DeregisterImage')).toBe(before.images.length - after.images.length);
  expect(ok('DeleteSnapshot')).toBe(before.snapshots.length - after.snapshots.length);
}

beforeAll(async () => {
  world = await startWorld({ emulator: { pendingMs: 0 }, regions: REGIONS });
  await world.writeConfig('retry_base_ms = 10\nthrottle_base_ms = 10\nretry_max_ms = 50\n', REGIONS);
  // The fixtures are laid out in this process, with the emulator's fake credentials.
  Object.assign(process.env, world.env);
  clients = fixtureClients(world.emulator.endpoint);
}, 60_000);
afterAll(async () => {
  clients?.destroy();
  await world?.close();
});
beforeEach(async (ctx) => {
  await seed(ctx.task.name.startsWith('--dry-run') ? GOLDEN_NOW : new Date().toISOString());
  // A fresh journal for each scenario.
  world.statePath = join(world.dir, `state-${Date.now()}.db`);
  await world.writeConfig('retry_base_ms = 10\nthrottle_base_ms = 10\nretry_max_ms = 50\n', REGIONS);
}, 120_000);

/** Ids as they appear, numbered in order, so the golden file does not depend on the emulator's ids. */
function stableIds(text: string): string {
  const seen = new Map<string, string>();
  return text.replace(/\b(ami|snap)-[0-9a-f]{8,17}\b/g, (id, kind: string) => {
    if (!seen.has(id)) seen.set(id, `${kind}-${String(seen.size + 1).padStart(4, '0')}`);
    return seen.get(id)!;
  });
}

describe('plume prune', () => {
  it('--dry-run prints what would be deprecated and deleted, per region and why, and changes nothing', async () => {
    const before = await inventory(clients, REGIONS);
    const res = await runCli('plume', prune('--dry-run'), world.env);
    expect(res.code, res.stderr).toBe(0);
    const out = stableIds(res.stdout);
    const path = join(GOLDEN, 'fedora-rawhide-dry-run.txt');
    if (UPDATE) writeFileSync(path, out);
    if (!existsSync(path))
      throw new Error('no golden file: review the output, then run with PLUME_UPDATE_GOLDEN=1');
    expect(out).toBe(readFileSync(path, 'utf8'));
    const after = await inventory(clients, REGIONS);
    expect(after.images.map((i) => [i.ImageId, i.DeprecationTime])).toEqual(
      before.images.map((i) => [i.ImageId, i.DeprecationTime]),
    );
    expect(world.emulator.calls().filter((c) => !c.operation.startsWith('Describe'))).toEqual([]);
  }, 120_000);

  it('deletes and deprecates what the policy says, never a decoy or a shared image; a rerun has nothing to do', async () => {
    const before = await inventory(clients, REGIONS);
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    // 3 releases × 3 regions × 2 volume types; the primary region's two AMIs share one snapshot.
    expect(res.stdout).toContain('deprecated 30, deleted 18 ');
    const after = await inventory(clients, REGIONS);
    expectPruned(after);
    expectNothingTwice(before, after);
    const again = await runCli('plume', prune(), world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('deprecated 0, deleted 0');
    expect(ids(await inventory(clients, REGIONS))).toEqual(ids(after));
  }, 120_000);

  it('throttling and a region down: exit 3 with the rest done, then a rerun completes', async () => {
    const before = await inventory(clients, REGIONS);
    world.emulator.addFault({
      service: 'ec2',
      operation: ['DeregisterImage', 'DeleteSnapshot'],
      kind: 'throttle',
      times: 6,
    });
    world.emulator.addFault({
      service: 'ec2',
      operation: 'EnableImageDeprecation',
      kind: 'throttle',
      times: 4,
    });
    const down = world.emulator.addFault({ service: 'ec2', region: 'eu-west-1', kind: 'server-error' });
    const first = await runCli('plume', prune(), world.env);
    expect(first.code, first.stderr).toBe(3);
    expect(first.stdout).toContain('unreachable: aws eu-west-1');
    world.emulator.removeFault(down);
    const mid = await inventory(clients, REGIONS);
    // Nothing in eu-west-1 was touched; the other regions are done.
    expect(mid.images.filter((i) => i.region === 'eu-west-1')).toEqual(
      before.images.filter((i) => i.region === 'eu-west-1'),
    );
    expect(orphanSnapshots(mid)).toEqual([]);
    expect(world.emulator.calls().some((c) => c.fault === 'throttle')).toBe(true);
    const second = await runCli('plume', prune(), world.env);
    expect(second.code, second.stderr).toBe(0);
    const after = await inventory(clients, REGIONS);
    expectPruned(after);
    expectNothingTwice(before, after);
  }, 180_000);

  it('kill -9 between deregistering an AMI and deleting its snapshot: the rerun finishes, nothing twice', async () => {
    const before = await inventory(clients, REGIONS);
    // Every snapshot deletion waits, so the kill lands after AMIs are deregistered and before their snapshots go.
    const slow = world.emulator.addFault({
      service: 'ec2',
      operation: 'DeleteSnapshot',
      kind: 'latency',
      latencyMs: 5000,
    });
    const run = startCli('plume', prune(), world.env);
    const deadline = Date.now() + 60_000;
    while (!world.emulator.calls().some((c) => c.operation === 'DeregisterImage' && c.status === 200)) {
      if (Date.now() > deadline) throw new Error(`no DeregisterImage: ${run.output().stderr}`);
      await sleep(20);
    }
    await sleep(200);
    run.child.kill('SIGKILL');
    await run.done;
    const mid = await inventory(clients, REGIONS);
    // The kill did land mid-delete: deregistered AMIs whose snapshots are still there.
    expect(orphanSnapshots(mid).length).toBeGreaterThan(0);
    world.emulator.removeFault(slow);
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    const after = await inventory(clients, REGIONS);
    expectPruned(after);
    expectNothingTwice(before, after);
    // The snapshots of the AMIs the killed run deregistered went with the rerun.
    for (const i of before.images.filter((x) => !ids(mid).has(x.ImageId!)))
      expect(after.snapshots.some((s) => s.SnapshotId === rootSnapshotId(i))).toBe(false);
  }, 180_000);
});
