import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPungiPublisher, queueHeld, queueReady } from '../../tools/reliability/broker.js';
import { pungiBody } from '../../tools/reliability/pungi.js';
import { recordScenario } from '../../tools/reliability/results.js';
import { startTcpProxy } from '../../tools/reliability/tcp-proxy.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';
import { scratchDatabase } from '../support/postgres.js';
import {
  missingFrom,
  openScenario,
  outcomeOf,
  settle,
  type Outcome,
  type Scenario,
} from '../support/reliability.js';
import { startWorld, type World } from '../support/world.js';

/*
 * The database goes away under joystick: SQLite locked by another process's write transaction, PostgreSQL
 * unreachable (a TCP proxy in front of the machine's server resets and refuses connections; the server
 * itself, which others use, is never stopped) or its backends terminated. Jobs wait, or fail loudly and
 * are retried; a compose message is never acked before the compose is recorded (the broker keeps it);
 * once the database is back everything completes as in an undisturbed run.
 */

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
const FILE = 'test/joystick/reliability-database.test.ts';
type Compose = SampleCompose & { url: string };
let world: World;
let composes: Compose[];
let baseline: Outcome;
const scenarios: Scenario[] = [];
const cleanups: (() => Promise<unknown>)[] = [];
const PER_COMPOSE = 15;

async function scenario(database?: string): Promise<Scenario> {
  await world.emulator.reset();
  const s = await openScenario(world, { regions: REGIONS, arches: ['x86_64'], database });
  scenarios.push(s);
  return s;
}

const finished = (c: Compose) => pungiBody(c.composeId, c.url, 'FINISHED');

/** The baseline, narrowed to some composes (their messages name them; their AMIs carry their build). */
function expected(of: Compose[]): Outcome {
  const ids = of.map((c) => c.composeId);
  const builds = of.map((c) => c.images.x86_64!.build);
  return {
    messages: baseline.messages.filter((m) => ids.some((id) => m.includes(`"${id}"`))),
    inventory: baseline.inventory.filter((i) => builds.some((b) => i.includes(` ${b}-`))),
    raw: baseline.raw,
  };
}

async function waitForFault(rule: string, s: Scenario): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!world.emulator.faultStats().some((f) => f.id === rule && f.fired > 0)) {
    if (Date.now() > deadline) throw new Error(`the fault never fired: ${s.joystick.tail()}`);
    await sleep(20);
  }
}

/** The end state of a scenario against the baseline, asserted, and its row for the reliability table. */
async function finish(s: Scenario, of: Compose[]) {
  const want = expected(of);
  await settle(s.ledger, want.messages.length);
  for (const p of s.processes) if (p.running) await p.stop();
  const got = await outcomeOf(world, REGIONS, s.ledger);
  expect(got.inventory).toEqual(want.inventory);
  expect(got.raw.orphans).toEqual([]);
  expect(got.raw.duplicateNames).toEqual([]);
  expect(missingFrom(want.messages, got.messages)).toEqual([]);
  expect(got.messages).toEqual(want.messages);
  expect(s.ledger.duplicates()).toEqual([]);
  expect(await queueHeld(s.queue)).toEqual({ ready: 0, unacked: 0 });
  const jobs = await s.store((st) => st.jobs());
  // Composes are read concurrently, so their jobs are created in any order: compare them by compose.
  const byCompose = (a: string[], b: string[]) => a[0]!.localeCompare(b[0]!);
  expect(jobs.map((j) => [j.composeId, j.state]).sort(byCompose)).toEqual(
    of.map((c) => [c.composeId, 'complete']).sort(byCompose),
  );
  return {
    lost: missingFrom(want.messages, got.messages).length,
    duplicates: s.ledger.duplicates().length,
    resent: [...s.ledger.extraCopies().values()].reduce((a, b) => a + b, 0),
    images: got.raw.images.length,
    jobs,
  };
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  composes = [];
  for (const [i, date] of ['20190611', '20190725', '20190902'].entries())
    composes.push(
      await world.compose({ rawSize: 16 * 2 ** 20, version: `${30 + i}`, date, arches: ['x86_64'] }),
    );
  const s = await scenario();
  await s.start();
  const pub = await openPungiPublisher(s.prefix);
  for (const c of composes) await pub.publish(finished(c));
  await pub.close();
  await settle(s.ledger, PER_COMPOSE * composes.length);
  await s.joystick.stop();
  baseline = await outcomeOf(world, REGIONS, s.ledger);
});

afterAll(async () => {
  for (const s of scenarios) await s.close();
  for (const c of cleanups.reverse()) await c();
  await world?.close();
});

describe('SQLite locked by another process', () => {
  it('acks no compose message while locked; the broker keeps them; all complete once unlocked', async () => {
    const t0 = Date.now();
    expect(baseline.messages).toHaveLength(PER_COMPOSE * composes.length);
    const s = await scenario();
    const first = await s.start();
    // Another process takes the write lock, as `sqlite3 joystick.db` with BEGIN EXCLUSIVE would.
    const locker = new Database(s.database.slice('sqlite:///'.length));
    locker.exec('BEGIN EXCLUSIVE');
    const pub = await openPungiPublisher(s.prefix);
    for (const c of composes) await pub.publish(finished(c));
    await first.waitLog(/cannot record the compose; the broker will redeliver it/, 60_000);
    // Loud: an error line per attempt, naming the compose and the database's complaint.
    const line = first.lines(/cannot record the compose/)[0]!;
    expect(String(line.err)).toMatch(/locked|busy/i);
    expect(locker.prepare('SELECT COUNT(*) AS n FROM composes').get()).toEqual({ n: 0 });
    // Waiting for the lock does not freeze the process: health probes still answer at once.
    expect(await first.healthzMs()).toBeLessThan(1000);
    const held = await queueHeld(s.queue);
    expect(held.ready + held.unacked).toBe(composes.length);
    // The process dies while the database is locked: every message is still the broker's.
    await first.kill9();
    expect(await queueReady(s.queue)).toBe(composes.length);

    // Restarted while still locked, joystick waits for its database instead of giving up.
    const second = await s.start({ wait: false });
    await second.waitLog(/database unavailable/, 60_000);
    await sleep(2000);
    expect(second.running).toBe(true);
    expect(await queueReady(s.queue)).toBe(composes.length);
    locker.exec('COMMIT');
    locker.close();
    await second.ready();

    const r = await finish(s, composes);
    expect(r.jobs.map((j) => j.attempts)).toEqual([1, 1, 1]);
    recordScenario({
      test: `${FILE} > SQLite locked by another process`,
      fault:
        'SQLite locked by another process (BEGIN EXCLUSIVE) while messages arrive, kill -9 and restart while locked',
      injected: 1,
      outcome: `messages nacked and kept by the broker (${composes.length} of ${composes.length}); joystick waited for the database; ${r.images} AMIs`,
      lost: r.lost,
      duplicates: r.duplicates,
      resent: r.resent,
      durationMs: Date.now() - t0,
    });
  });

  it('a job outlives a lock held longer than its lease, and runs once', async () => {
    const t0 = Date.now();
    const s = await scenario();
    await s.start();
    const [a] = composes as [Compose];
    const rule = world.emulator.addFault({ operation: 'CopyImage', kind: 'latency', latencyMs: 1500 });
    const pub = await openPungiPublisher(s.prefix);
    await pub.publish(finished(a));
    await waitForFault(rule, s);
    const locker = new Database(s.database.slice('sqlite:///'.length));
    locker.exec('BEGIN EXCLUSIVE');
    const probes: number[] = [];
    for (const end = Date.now() + 8000; Date.now() < end;) {
      probes.push(await s.joystick.healthzMs()); // lease_seconds is 5
      await sleep(500);
    }
    locker.exec('COMMIT');
    locker.close();
    world.emulator.clearFaults();

    const r = await finish(s, [a]);
    const calls = world.emulator.calls();
    expect(calls.filter((c) => c.operation === 'StartSnapshot')).toHaveLength(1);
    expect(calls.filter((c) => c.operation === 'RegisterImage')).toHaveLength(2);
    expect(r.jobs[0]!.attempts).toBe(1);
    expect(Math.max(...probes)).toBeLessThan(1000);
    recordScenario({
      test: `${FILE} > SQLite locked longer than the job lease`,
      fault: 'SQLite locked for 8 s (longer than the 5 s job lease) during a job',
      injected: 1,
      outcome: `the job waited and finished once (1 upload, 2 registrations); ${r.images} AMIs`,
      lost: r.lost,
      duplicates: r.duplicates,
      resent: r.resent,
      durationMs: Date.now() - t0,
    });
  });
});

describe('PostgreSQL', () => {
  /** A scratch database reached through a TCP proxy the test can cut. */
  async function viaProxy() {
    const db = await scratchDatabase();
    cleanups.push(() => db.drop());
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: 5432 });
    cleanups.push(() => proxy.close());
    const url = new URL(db.url);
    url.port = String(proxy.port);
    const query = async <T>(sql: string, params: unknown[] = []): Promise<T[]> => {
      const c = new pg.Client({ connectionString: db.url });
      await c.connect();
      try {
        return (await c.query(sql, params)).rows as T[];
      } finally {
        await c.end();
      }
    };
    const composeIds = async () =>
      (await query<{ compose_id: string }>('SELECT compose_id FROM composes ORDER BY compose_id')).map(
        (r) => r.compose_id,
      );
    return { db, proxy, url: url.href, name: url.pathname.slice(1), query, composeIds };
  }

  it('unreachable for longer than the job lease mid-job: messages wait in the broker; the job runs once', async () => {
    const t0 = Date.now();
    const pgx = await viaProxy();
    const s = await scenario(pgx.url);
    const js = await s.start();
    const [a, b, c] = composes as [Compose, Compose, Compose];
    // A's copies take 10 s, so A is still running when the database comes back with its lease lapsed.
    const rule = world.emulator.addFault({
      operation: 'CopyImage',
      kind: 'latency',
      latencyMs: 10_000,
      times: 4,
    });
    const pub = await openPungiPublisher(s.prefix);
    await pub.publish(finished(a));
    await waitForFault(rule, s);
    // The network to the database fails: open connections reset, new ones refused, for 8 s (lease: 5 s).
    pgx.proxy.refuse(true);
    pgx.proxy.cut();
    const down = Date.now();
    await pub.publish(finished(b));
    await pub.publish(finished(c));
    await js.waitLog(/cannot record the compose; the broker will redeliver it/, 60_000);
    expect(await pgx.composeIds()).toEqual([a.composeId]);
    const held = await queueHeld(s.queue);
    expect(held.ready + held.unacked).toBe(2);
    expect(await js.healthzMs()).toBeLessThan(1000);
    await sleep(Math.max(0, 8000 - (Date.now() - down)));
    expect(js.count(/could not renew the job lease/)).toBeGreaterThan(0);
    world.emulator.clearFaults();
    pgx.proxy.refuse(false);

    const r = await finish(s, composes);
    // Each job ran once, A's through the outage: no second copy of it started when its lease lapsed.
    expect(r.jobs.map((j) => j.attempts)).toEqual([1, 1, 1]);
    const calls = world.emulator.calls();
    expect(calls.filter((x) => x.operation === 'StartSnapshot')).toHaveLength(3);
    expect(calls.filter((x) => x.operation === 'RegisterImage')).toHaveLength(6);
    recordScenario({
      test: `${FILE} > PostgreSQL unreachable longer than the job lease`,
      fault: 'PostgreSQL unreachable for 8 s (connections reset and refused; job lease 5 s) mid-job',
      injected: 1,
      outcome: `2 messages kept by the broker until it was back; every job ran once; ${r.images} AMIs`,
      lost: r.lost,
      duplicates: r.duplicates,
      resent: r.resent,
      durationMs: Date.now() - t0,
    });
  });

  it('unreachable, joystick killed and restarted meanwhile: it waits for the database, then completes', async () => {
    const t0 = Date.now();
    const pgx = await viaProxy();
    const s = await scenario(pgx.url);
    const first = await s.start();
    const [a, b, c] = composes as [Compose, Compose, Compose];
    const rule = world.emulator.addFault({ operation: 'CopyImage', kind: 'latency', latencyMs: 2000 });
    const pub = await openPungiPublisher(s.prefix);
    await pub.publish(finished(a));
    await waitForFault(rule, s);
    pgx.proxy.refuse(true);
    pgx.proxy.cut();
    await pub.publish(finished(b));
    await pub.publish(finished(c));
    await first.waitLog(/cannot record the compose; the broker will redeliver it/, 60_000);
    await first.kill9();
    // Nothing unrecorded was acked: the two messages are the broker's again.
    expect(await queueReady(s.queue)).toBe(2);
    expect(await pgx.composeIds()).toEqual([a.composeId]);
    world.emulator.clearFaults();

    const second = await s.start({ wait: false });
    await second.waitLog(/database unavailable; retrying/, 60_000);
    await sleep(2000);
    expect(second.running).toBe(true);
    expect(await queueReady(s.queue)).toBe(2);
    pgx.proxy.refuse(false);
    await second.ready();

    const r = await finish(s, composes);
    // A was interrupted by the kill and resumed; B and C ran once.
    expect(r.jobs.map((j) => j.attempts)).toEqual([2, 1, 1]);
    recordScenario({
      test: `${FILE} > PostgreSQL unreachable, joystick restarted meanwhile`,
      fault: 'PostgreSQL unreachable mid-job, joystick kill -9 and restarted while it is down',
      injected: 1,
      outcome: `2 messages kept by the broker; the restarted joystick waited for the database; ${r.images} AMIs`,
      lost: r.lost,
      duplicates: r.duplicates,
      resent: r.resent,
      durationMs: Date.now() - t0,
    });
  });

  it('backends terminated (pg_terminate_backend) during a job: it goes on; nothing lost or run twice', async () => {
    const t0 = Date.now();
    const pgx = await viaProxy();
    const s = await scenario(pgx.url);
    await s.start();
    const [a] = composes as [Compose];
    const rule = world.emulator.addFault({ operation: 'CopyImage', kind: 'latency', latencyMs: 1000 });
    const pub = await openPungiPublisher(s.prefix);
    await pub.publish(finished(a));
    await waitForFault(rule, s);
    let terminated = 0;
    for (let i = 0; i < 3; i++) {
      const rows = await pgx.query<{ ok: boolean }>(
        `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND application_name = 'joystick'`,
        [pgx.name],
      );
      terminated += rows.filter((r) => r.ok).length;
      await sleep(700);
    }
    world.emulator.clearFaults();
    expect(terminated).toBeGreaterThan(0);

    const r = await finish(s, [a]);
    expect(r.jobs[0]!.attempts).toBe(1);
    expect(world.emulator.calls().filter((x) => x.operation === 'StartSnapshot')).toHaveLength(1);
    recordScenario({
      test: `${FILE} > PostgreSQL backends terminated`,
      fault: 'PostgreSQL backends terminated (pg_terminate_backend) 3 times during a job',
      injected: terminated,
      outcome: `the pool reconnected; the job ran once; ${r.images} AMIs`,
      lost: r.lost,
      duplicates: r.duplicates,
      resent: r.resent,
      durationMs: Date.now() - t0,
    });
  });
});
