import { readFile, rm, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { FaultRule } from '../../tools/emulator/index.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startWorld, type RunResult, type World } from '../support/world.js';

/**
 * AWS faults injected during whole `plume release` runs. Each scenario ends in the same final state as an
 * undisturbed run: the same images (names, attributes, tags, publicness) and snapshots in every region,
 * none pending, none orphaned, no duplicate.
 */
const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
// Fast backoff, short waits: the behaviour is the same as production's, only the clock is faster.
const CONFIG = `retry_base_ms = 20
throttle_base_ms = 50
retry_max_ms = 400
request_timeout_seconds = 5
`;
let world: World;
let aws: Inspector;
let compose: SampleCompose & { url: string };
let reference: Awaited<ReturnType<typeof finalState>>;

const args = () => [...fedoraCloudArgs(world, compose.url), '--output', 'json'];

const release = (): Promise<RunResult> => runCli('plume', args(), world.env);
const calls = (operation: string, region?: string) =>
  world.emulator.calls().filter((c) => c.operation === operation && (!region || c.region === region));
const fired = (id: string) => world.emulator.faultStats().find((f) => f.id === id)!.fired;

/** What a release leaves in AWS, without the ids that differ from run to run. */
async function finalState() {
  const inv = await aws.inventory(REGIONS);
  const images = [];
  for (const i of inv.images) {
    const root = i.BlockDeviceMappings?.find((m) => m.DeviceName === i.RootDeviceName)?.Ebs;
    images.push({
      region: i.region,
      name: i.Name,
      state: i.State,
      public: i.Public,
      snapshotPublic: root?.SnapshotId ? await aws.snapshotPublic(i.region, root.SnapshotId) : null,
      architecture: i.Architecture,
      bootMode: i.BootMode,
      ena: i.EnaSupport,
      imds: i.ImdsSupport,
      root: { type: root?.VolumeType, size: root?.VolumeSize },
      tags: Object.fromEntries(
        (i.Tags ?? []).map((t) => [t.Key, t.Value] as const).sort(([a], [b]) => a!.localeCompare(b!)),
      ),
    });
  }
  images.sort((a, b) => `${a.region}/${a.name}`.localeCompare(`${b.region}/${b.name}`));
  const snapshots = REGIONS.map((region) => ({
    region,
    count: inv.snapshots.filter((s) => s.region === region).length,
    states: [...new Set(inv.snapshots.filter((s) => s.region === region).map((s) => s.State))],
  }));
  return { images, snapshots, orphans: inv.orphans.map((s) => `${s.region}/${s.SnapshotId}`) };
}

/** Change one setting of the world's plume config (TOML refuses a key given twice). */
async function setConfig(from: string, to: string): Promise<void> {
  const text = await readFile(world.configPath, 'utf8');
  expect(text).toContain(from);
  await writeFile(world.configPath, text.replace(from, to));
}

async function expectComplete(res: RunResult): Promise<void> {
  expect(res.code, res.stderr).toBe(0);
  expect(JSON.parse(res.stdout).status).toBe('complete');
  expect(await finalState()).toEqual(reference);
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  await world.writeConfig(CONFIG, REGIONS);
  aws = new Inspector(world.emulator.endpoint);
  compose = await world.compose({ rawSize: 64 * 2 ** 20, dataFraction: 0.2 });
  const undisturbed = await release();
  expect(undisturbed.code, undisturbed.stderr).toBe(0);
  reference = await finalState();
  // The reference itself is what a release must leave: every image, public, nothing left over.
  expect(reference.images).toHaveLength(REGIONS.length * 2);
  expect(reference.images.every((i) => i.state === 'available' && i.public && i.snapshotPublic)).toBe(true);
  expect(reference.snapshots.map((s) => s.count)).toEqual([1, 2, 2]);
  expect(reference.orphans).toEqual([]);
});

beforeEach(async () => {
  await world.emulator.reset();
  await world.writeConfig(CONFIG, REGIONS);
  await rm(world.statePath, { force: true });
});

afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

describe('throttling storms', { timeout: 180_000 }, () => {
  it.each([
    ['PutSnapshotBlock', { service: 'ebs', operation: 'PutSnapshotBlock', probability: 0.5 }],
    ['RegisterImage', { operation: 'RegisterImage', times: 10 }],
    ['CopyImage', { operation: 'CopyImage', times: 12 }],
  ] as const)('on %s: backs off, retries and ends as an undisturbed run', async (operation, rule) => {
    const id = world.emulator.addFault({ ...rule, kind: 'throttle' });
    const res = await release();
    await expectComplete(res);
    expect(fired(id)).toBeGreaterThanOrEqual(5);
    // Every call that was throttled was made again, and nothing was created twice.
    const ok = calls(operation).filter((c) => c.status >= 200 && c.status < 300);
    if (operation === 'PutSnapshotBlock') {
      const disk = JSON.parse(res.stdout).targets.aws.upload.disk as string;
      const stats = world.emulator.snapshotStats(disk)!;
      expect(stats.blocksPut).toBe(stats.blockIndexes.length);
      expect(ok).toHaveLength(stats.blocksPut);
    } else expect(ok).toHaveLength(operation === 'RegisterImage' ? 2 : (REGIONS.length - 1) * 2);
  });
});

describe('one region failing for good', { timeout: 180_000 }, () => {
  it('publishes every other region, exits 3 naming the region, and a second run completes it', async () => {
    const id = world.emulator.addFault({
      operation: 'CopyImage',
      region: 'eu-west-1',
      kind: 'access-denied',
    });
    const res = await release();
    expect(res.code, res.stderr).toBe(3);
    const record = JSON.parse(res.stdout).targets.aws;
    expect(record.status).toBe('partial');
    expect(new Set(record.problems.map((p: { location: string }) => p.location))).toEqual(
      new Set(['eu-west-1']),
    );
    expect(record.images.map((i: { location: string }) => i.location).sort()).toEqual([
      'us-east-1',
      'us-east-1',
      'us-west-2',
      'us-west-2',
    ]);
    expect(res.stderr).toMatch(
      /plume: release \S+ is partial: eu-west-1\/gp3: missing: .*eu-west-1\/gp2: missing/,
    );
    expect(res.stderr).toContain('AWS refused ec2:CopyImage in eu-west-1 (UnauthorizedOperation)');
    expect(res.stderr.trim().split('\n').pop()).toBe('plume: run the same command again to complete it');
    // Access denied is never retried by the client: one call per copy and per repair round (2).
    expect(calls('CopyImage', 'eu-west-1')).toHaveLength(2 * 3);
    expect(fired(id)).toBe(6);
    const partial = await finalState();
    expect(partial.images.filter((i) => i.region !== 'eu-west-1')).toEqual(
      reference.images.filter((i) => i.region !== 'eu-west-1'),
    );
    expect(partial.images.filter((i) => i.region === 'eu-west-1')).toEqual([]);
    expect(partial.orphans).toEqual([]);

    world.emulator.removeFault(id);
    const uploads = calls('StartSnapshot').length;
    await expectComplete(await release());
    expect(calls('StartSnapshot')).toHaveLength(uploads);
  });
});

describe('asynchronous states', { timeout: 180_000 }, () => {
  it('copies held pending beyond image_wait end the run partial with a clear error; the next run resumes them', async () => {
    await setConfig('image_wait_minutes = 1', 'image_wait_minutes = 0.05');
    world.emulator.setPendingMs(10 * 60_000, 'us-west-2');
    const t0 = Date.now();
    const res = await release();
    // Bounded: the wait plus the repair rounds' waits, not the ten minutes AWS takes.
    expect(Date.now() - t0).toBeLessThan(60_000);
    expect(res.code, res.stderr).toBe(3);
    expect(res.stderr).toMatch(
      /image ami-\w+ in us-west-2 was not available after 3 s \(state pending\): run again later to resume/,
    );
    expect(res.stderr).toMatch(/release \S+ is partial: us-west-2\/gp3: not-available: image is pending/);
    const copies = calls('CopyImage').length;

    world.emulator.setPendingMs(0, 'us-west-2');
    await expectComplete(await release());
    // The pending copies were found by name and waited for, not copied again.
    expect(calls('CopyImage')).toHaveLength(copies);
  });
});

describe('the uploaded disk held pending', { timeout: 180_000 }, () => {
  it('beyond snapshot_wait: the run fails clearly, and the next one waits for the same snapshot instead of uploading again', async () => {
    await setConfig('snapshot_wait_minutes = 1', 'snapshot_wait_minutes = 0.05');
    world.emulator.setPendingMs(10 * 60_000, 'us-east-1');
    const res = await release();
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toMatch(
      /^plume: error: snapshot snap-\w+ in us-east-1 was not completed after 3 s \(state pending\): run again later to resume$/,
    );
    expect(calls('StartSnapshot')).toHaveLength(1);
    const blocks = calls('PutSnapshotBlock').length;

    world.emulator.setPendingMs(0, 'us-east-1');
    await expectComplete(await release());
    expect(calls('StartSnapshot')).toHaveLength(1);
    expect(calls('PutSnapshotBlock')).toHaveLength(blocks);
  });
});

describe('a deprecation time already past', { timeout: 180_000 }, () => {
  it('deprecates at once and publishes; the public images are never registered again', async () => {
    // deprecate_after_days counts from the compose date (2019-06-11): long past.
    await setConfig('retry_base_ms = 20', 'retry_base_ms = 20\ndeprecate_after_days = 30');
    const t0 = Date.now();
    await expectComplete(await release());
    expect(calls('RegisterImage')).toHaveLength(2);
    expect(calls('DeregisterImage')).toEqual([]);
    for (const region of REGIONS)
      for (const image of await aws.images(region)) {
        const at = Date.parse(image.DeprecationTime!);
        expect(at).toBeGreaterThan(t0);
        expect(at).toBeLessThan(Date.now() + 5 * 60_000);
      }
  });
});

describe('slow and dropped connections', { timeout: 180_000 }, () => {
  it('added latency, and attempts that outlast request_timeout, leave the same state and no duplicate', async () => {
    await setConfig('request_timeout_seconds = 5', 'request_timeout_seconds = 1');
    world.emulator.addFault({ service: 'ec2', kind: 'latency', latencyMs: 300, probability: 0.5 });
    // These attempts time out on the client, but AWS (the emulator) still carries them out.
    const slowCopy = world.emulator.addFault({
      operation: 'CopyImage',
      kind: 'latency',
      latencyMs: 2500,
      times: 2,
    });
    const slowRegister = world.emulator.addFault({
      operation: 'RegisterImage',
      kind: 'latency',
      latencyMs: 2500,
      times: 1,
    });
    const slowBlock = world.emulator.addFault({
      operation: 'PutSnapshotBlock',
      kind: 'latency',
      latencyMs: 2500,
      times: 2,
    });
    await expectComplete(await release());
    expect([fired(slowCopy), fired(slowRegister), fired(slowBlock)]).toEqual([2, 1, 2]);
  });

  it('connections dropped before and after AWS acted: ClientToken and the name lookup prevent duplicates', async () => {
    const rules: FaultRule[] = [
      { operation: 'StartSnapshot', kind: 'drop-after', times: 1 },
      { operation: 'PutSnapshotBlock', kind: 'drop', times: 2 },
      { operation: 'PutSnapshotBlock', kind: 'drop-after', times: 2, skip: 3 },
      { operation: 'CompleteSnapshot', kind: 'drop-after', times: 1 },
      { operation: 'RegisterImage', kind: 'drop', times: 1 },
      { operation: 'RegisterImage', kind: 'drop-after', times: 1 },
      { operation: 'CopyImage', kind: 'drop-after', times: 2 },
      { operation: 'ModifyImageAttribute', kind: 'drop-after', times: 1 },
      { operation: 'CreateTags', kind: 'drop-after', times: 1 },
    ];
    const ids = rules.map((r) => world.emulator.addFault(r));
    await expectComplete(await release());
    expect(ids.map(fired)).toEqual(rules.map((r) => r.times));
    // The snapshot was started twice with one ClientToken, the state above shows one: AWS made one.
    expect(calls('StartSnapshot')).toHaveLength(2);
    expect(calls('RegisterImage').length).toBeGreaterThan(2);
  });
});
