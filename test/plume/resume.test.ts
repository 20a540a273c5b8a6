import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startCli, startWorld, type World } from '../support/world.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
let world: World;
let aws: Inspector;
let compose: SampleCompose & { url: string };

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  aws = new Inspector(world.emulator.endpoint);
  compose = await world.compose({ rawSize: 64 * 2 ** 20, dataFraction: 0.2 });
});
afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

function childPids(pid: number): number[] {
  try {
    return execFileSync('pgrep', ['-P', String(pid)], { encoding: 'utf8' })
      .trim()
      .split('\n')
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

/** Running, not merely an unreaped zombie. */
function alive(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const args = () => fedoraCloudArgs(world, compose.url);

/** kill -9 plume while the step's AWS call is in flight, then run it again. */
describe.each([
  ['upload', 'PutSnapshotBlock', 5],
  ['register', 'RegisterImage', 0],
  ['replicate', 'CopyImage', 2],
  ['publish', 'ModifyImageAttribute', 1],
  ['verify', 'DescribeSnapshotAttribute', 1],
])('killed during %s', (step, operation, skip) => {
  it('resumes and finishes with no duplicate or orphaned images and snapshots', async () => {
    await world.emulator.reset();
    await rm(world.statePath, { force: true });
    const rule = world.emulator.addFault({ operation, kind: 'latency', latencyMs: 3000, skip });
    const run = startCli('plume', args(), world.env);
    const deadline = Date.now() + 60_000;
    while (!world.emulator.faultStats().find((f) => f.id === rule && f.fired > 0)) {
      if (Date.now() > deadline) throw new Error(`plume never reached ${operation}: ${run.output().stderr}`);
      await sleep(20);
    }
    await sleep(100);
    // plume's own children (the decompressor while uploading) must not outlive it.
    const children = childPids(run.child.pid!);
    if (step === 'upload') expect(children.length).toBeGreaterThan(0);
    run.child.kill('SIGKILL');
    const killed = await run.done;
    expect(killed.code).toBeNull();
    expect(killed.stderr).toContain(`"step":"${step}","state":"started"`);
    // Its stdin at end of file and its output's reader gone, it exits within moments.
    for (let i = 0; i < 50 && children.some(alive); i++) await sleep(100);
    expect(children.filter(alive)).toEqual([]);
    world.emulator.clearFaults();
    // Let the call in flight when plume died land (the emulator finishes it), as AWS would.
    await sleep(3200);

    const again = await runCli('plume', [...args(), '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    const record = JSON.parse(again.stdout);
    expect(record.status).toBe('complete');
    expect(record.targets.aws.images).toHaveLength(REGIONS.length * 2);

    const inv = await aws.inventory(REGIONS);
    expect(inv.images).toHaveLength(REGIONS.length * 2);
    expect(new Set(inv.images.map((i) => `${i.region}/${i.Name}`)).size).toBe(inv.images.length);
    expect(inv.images.every((i) => i.State === 'available' && i.Public)).toBe(true);
    expect(inv.orphans).toEqual([]);
    expect(inv.snapshots.filter((s) => s.State !== 'completed')).toEqual([]);
    // One uploaded disk in the primary region, one snapshot per copy elsewhere.
    expect(inv.snapshots.filter((s) => s.region === 'us-east-1')).toHaveLength(1);
    expect(inv.snapshots.filter((s) => s.region !== 'us-east-1')).toHaveLength((REGIONS.length - 1) * 2);
  });
});
