import { hostname, tmpdir } from 'node:os';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger, silentLogger } from '../../src/shared/log.js';
import { ReleaseLocks } from '../../src/plume/state/release-lock.js';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * A release holds a lock in the state database (hardening item 9): two runs of the same release on one
 * machine, the built CLI against the AWS emulator, as a person would start them.
 */

const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;
let aws: Inspector;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  // A killed run's snapshot lease lapses in 6 s (30 by default), so the run after it waits less.
  await world.writeConfig('upload_lease_seconds = 6', REGIONS);
  aws = new Inspector(world.emulator.endpoint);
});
afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

type Started = ReturnType<typeof startCli>;

async function until(run: Started, text: string): Promise<void> {
  const end = Date.now() + 60_000;
  while (!run.output().stderr.includes(text)) {
    if (Date.now() > end || run.child.exitCode !== null) throw new Error(run.output().stderr);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The rows of the lock table, read with SQLite as an operator would. */
function locks(): { key: string; host: string; pid: number; command: string; expires_at: string }[] {
  const db = new Database(world.statePath, { readonly: true });
  try {
    return db.prepare('SELECT * FROM release_locks').all() as ReturnType<typeof locks>;
  } finally {
    db.close();
  }
}

function slowUploads(latencyMs = 3000) {
  return world.emulator.addFault({
    service: 'ebs',
    operation: 'PutSnapshotBlock',
    kind: 'latency',
    latencyMs,
  });
}

const started = () => world.emulator.calls().filter((c) => c.operation === 'StartSnapshot').length;

describe('two runs of the same release on one machine', () => {
  it('the second refuses at once with one line naming the holder; the first keeps its snapshot and completes', async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '45', date: '20240601' });
    const slow = slowUploads(15_000);
    world.emulator.clearCalls();
    try {
      const first = startCli('plume', fedoraCloudArgs(world, compose.url), world.env, { timeoutMs: 180_000 });
      await until(first, '"msg":"snapshot started"');
      const t0 = Date.now();
      const [second, third] = await Promise.all([
        runCli('plume', fedoraCloudArgs(world, compose.url), world.env),
        runCli('plume', fedoraCloudArgs(world, compose.url, { verb: 'pre-release' }), world.env),
      ]);
      // Refused while the first still runs, before touching anything.
      expect(first.child.exitCode).toBeNull();
      expect(Date.now() - t0).toBeLessThan(15_000);
      for (const [res, verb] of [
        [second, 'release'],
        [third, 'pre-release'],
      ] as const) {
        expect(res.code, res.stderr).toBe(1);
        const lines = res.stderr.trim().split('\n');
        expect(lines.filter((l) => l.startsWith('plume: error: '))).toHaveLength(1);
        expect(lines.at(-1)).toMatch(
          new RegExp(
            `^plume: error: release fedora/cloud/\\S+ is already running: plume release on ${hostname()}, pid ${first.child.pid}, since \\d{4}-\\d\\d-\\d\\dT[\\d:.]+Z: wait for it to end and run again \\(a holder that was killed frees it at once on this machine, otherwise 60 s after its last heartbeat\\)$`,
          ),
        );
        expect(res.stderr, verb).not.toContain('removing a snapshot left by an interrupted upload');
      }
      expect(started()).toBe(1);
      const a = await first.done;
      expect(a.code, a.stderr).toBe(0);
      // The first one's snapshot was used to the end: one upload, then the uploaded snapshot and a copy
      // per image in the other region, as an undisturbed run leaves.
      expect(started()).toBe(1);
      const inv = await aws.inventory(REGIONS);
      expect(inv.snapshots.filter((s) => JSON.stringify(s).includes('Fedora-Cloud-45'))).toHaveLength(3);
      // Given back on a normal end.
      expect(locks()).toEqual([]);
    } finally {
      world.emulator.removeFault(slow);
    }
  });

  it("a kill -9'd holder does not block the next run: its lock is taken over, with a WARN line", async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '46', date: '20240602' });
    const slow = slowUploads();
    try {
      const first = startCli('plume', fedoraCloudArgs(world, compose.url), world.env, { timeoutMs: 180_000 });
      await until(first, '"msg":"snapshot started"');
      first.child.kill('SIGKILL');
      const killed = await first.done;
      expect(killed.code).toBeNull();
      const left = locks();
      expect(left).toHaveLength(1);
      expect(left[0]).toMatchObject({ host: hostname(), pid: first.child.pid, command: 'plume release' });
    } finally {
      world.emulator.removeFault(slow);
    }
    const next = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env, {
      timeoutMs: 180_000,
    });
    expect(next.code, next.stderr).toBe(0);
    expect(next.stderr).toMatch(
      /"level":"warn",.*"msg":"taking over the lock of release fedora\/cloud\/\S+ from \S+ pid \d+ \(plume release\): process \d+ no longer exists"/,
    );
    expect(locks()).toEqual([]);
  });

  it("another machine's lock refuses until its heartbeat lapses, then is taken over", async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '47', date: '20240603' });
    const done = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env);
    expect(done.code, done.stderr).toBe(0);
    const dry = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--dry-run', '--output', 'json'],
      world.env,
    );
    const key = (JSON.parse(dry.stdout) as { key: string }).key;
    // A run on builder-2, which shares this state file, whose last heartbeat was just now (lock_seconds 60).
    const db = new Database(world.statePath);
    const now = Date.now();
    const put = (expires: number) =>
      db
        .prepare(
          `INSERT OR REPLACE INTO release_locks (key, host, pid, command, started_at, heartbeat_at, expires_at)
           VALUES (?, 'builder-2', 4242, 'plume release', ?, ?, ?)`,
        )
        .run(
          key,
          new Date(now - 120_000).toISOString(),
          new Date(expires - 60_000).toISOString(),
          new Date(expires).toISOString(),
        );
    try {
      put(now + 60_000);
      const refused = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr.trim().split('\n').at(-1)).toMatch(
        `plume: error: release ${key} is already running: plume release on builder-2, pid 4242, since `,
      );
      // Its heartbeats stopped a minute ago: the lock lapsed.
      put(now - 1000);
      const next = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env);
      expect(next.code, next.stderr).toBe(0);
      expect(next.stderr).toContain(
        `taking over the lock of release ${key} from builder-2 pid 4242 (plume release): its last heartbeat was at `,
      );
    } finally {
      db.close();
    }
    expect(locks()).toEqual([]);
  });

  it('SIGTERM mid-upload gives the lock back', async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '48', date: '20240604' });
    const slow = slowUploads();
    try {
      const run = startCli('plume', fedoraCloudArgs(world, compose.url), world.env, { timeoutMs: 180_000 });
      await until(run, '"msg":"snapshot started"');
      expect(locks()).toHaveLength(1);
      run.child.kill('SIGTERM');
      const res = await run.done;
      expect(res.code, res.stderr).toBe(143);
      expect(locks()).toEqual([]);
    } finally {
      world.emulator.removeFault(slow);
    }
  });
});

describe('two different releases at once', () => {
  it('both run together and both complete', async () => {
    const x = await world.compose({ rawSize: 16 * 2 ** 20, version: '49', date: '20240605' });
    const y = await world.compose({ rawSize: 16 * 2 ** 20, version: '50', date: '20240606' });
    const slow = slowUploads(1500);
    try {
      const a = startCli('plume', fedoraCloudArgs(world, x.url), world.env, { timeoutMs: 180_000 });
      const b = startCli('plume', fedoraCloudArgs(world, y.url), world.env, { timeoutMs: 180_000 });
      await Promise.all([until(a, '"msg":"snapshot started"'), until(b, '"msg":"snapshot started"')]);
      // Both hold their own lock at the same time.
      expect(locks()).toHaveLength(2);
      const [ra, rb] = await Promise.all([a.done, b.done]);
      expect(ra.code, ra.stderr).toBe(0);
      expect(rb.code, rb.stderr).toBe(0);
      expect(ra.stderr + rb.stderr).not.toContain('already running');
    } finally {
      world.emulator.removeFault(slow);
    }
    expect(locks()).toEqual([]);
  });
});

describe('two prunes of the same channel', () => {
  it('the second refuses with one line while the first holds the lock; a dry run is not held back', async () => {
    const args = (...extra: string[]) => [
      'prune',
      '--system',
      'fedora',
      '--channel',
      'rawhide',
      '--config',
      world.configPath,
      ...extra,
    ];
    // A prune of fedora/rawhide running on builder-2, which shares this state file (its heartbeat goes on).
    const builder2 = new ReleaseLocks(world.statePath, {
      ttlMs: 60_000,
      log: silentLogger(),
      host: 'builder-2',
      pid: 4343,
    });
    try {
      builder2.acquire('prune fedora/rawhide', 'plume prune');
      const refused = await runCli('plume', args(), world.env);
      expect(refused.code, refused.stderr).toBe(1);
      expect(refused.stderr.trim().split('\n').at(-1)).toMatch(
        /^plume: error: prune of fedora\/rawhide is already running: plume prune on builder-2, pid 4343, since \S+: wait for it to end and run again/,
      );
      const dry = await runCli('plume', args('--dry-run'), world.env);
      expect(dry.code, dry.stderr).toBe(0);
      // Another channel is not held back either.
      const other = await runCli(
        'plume',
        ['prune', '--system', 'fedora', '--channel', 'branched', '--config', world.configPath],
        world.env,
      );
      expect(other.code, other.stderr).toBe(0);
    } finally {
      builder2.close();
    }
    expect(locks()).toEqual([]);
  });
});

describe('a holder whose lock was taken over', () => {
  it('says so at its next heartbeat instead of going on as if the lock were its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plume-lock-'));
    const out = new PassThrough();
    let text = '';
    out.on('data', (d: Buffer) => (text += d.toString()));
    // Paused for longer than its lock lasts (its clock is behind): another machine takes the lock over.
    const a = new ReleaseLocks(join(dir, 'state.db'), {
      ttlMs: 600,
      log: createLogger({ destination: out, name: 'plume' }),
      host: 'builder-1',
      pid: 1,
      now: () => Date.now() - 10_000,
    });
    const b = new ReleaseLocks(join(dir, 'state.db'), {
      ttlMs: 600,
      log: silentLogger(),
      host: 'builder-2',
      pid: 2,
    });
    try {
      a.acquire('fedora/rawhide/x', 'plume release', 'release fedora/rawhide/x');
      b.acquire('fedora/rawhide/x', 'plume release', 'release fedora/rawhide/x');
      expect(b.holder('fedora/rawhide/x')).toMatchObject({ host: 'builder-2', pid: 2 });
      await new Promise((r) => setTimeout(r, 400));
      expect(text).toContain('"msg":"the lock of release fedora/rawhide/x was taken over by another run"');
      // And its release leaves the new holder's row alone.
      a.close();
      expect(b.holder('fedora/rawhide/x')).toMatchObject({ host: 'builder-2', pid: 2 });
    } finally {
      a.close();
      b.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
