import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { isTransientDbError, openPostgres, openSqlite } from '../../src/joystick/store/db.js';
import { JobStore, type NewJob } from '../../src/joystick/store/job-store.js';
import { SCHEMA_VERSION } from '../../src/joystick/store/schema.js';
import type { ComposeFacts } from '../../src/plume/systems/types.js';
import { scratchDatabase } from '../support/postgres.js';

const compose = (id: string): ComposeFacts => ({
  id,
  location: `https://kojipkgs.fedoraproject.org/compose/${id}/compose`,
  status: 'FINISHED',
});
const job = (composeId: string, arch: string): NewJob => ({
  id: `${composeId}/cloud/Cloud-Base/${arch}/aws`,
  request: { system: 'fedora', channel: 'cloud', arch, compose: compose(composeId).location },
  channel: 'cloud',
  arch,
  imageType: 'Cloud-Base',
  command: 'plume release ...',
});

let pgDb: Awaited<ReturnType<typeof scratchDatabase>>;
beforeAll(async () => {
  pgDb = await scratchDatabase();
});
afterAll(async () => pgDb?.drop());

describe.each([
  ['SQLite', () => openSqlite(join(mkdtempSync(join(tmpdir(), 'joystick-store-')), 'j.db'))],
  ['PostgreSQL', () => openPostgres(pgDb.url)],
])('the job store on %s', (_name, open) => {
  let store: JobStore;
  beforeAll(async () => {
    store = await JobStore.open(open());
  });
  afterAll(async () => store?.close());

  it('records a compose once, however many times it is heard', async () => {
    expect(await store.recordCompose(compose('Fedora-Cloud-30-20190611.0'), 'm1')).toBe('new');
    expect(await store.recordCompose(compose('Fedora-Cloud-30-20190611.0'), 'm2')).toBe('known');
    expect((await store.getCompose('Fedora-Cloud-30-20190611.0'))?.messageId).toBe('m1');
  });

  it('plans a claimed compose into jobs and announcements, atomically and once', async () => {
    const c = await store.claimCompose('a', 60_000);
    expect(c?.composeId).toBe('Fedora-Cloud-30-20190611.0');
    expect(await store.claimCompose('b', 60_000)).toBeUndefined();
    expect(await store.planCompose(c!.composeId, 'b', 'cloud', [job(c!.composeId, 'x86_64')], [])).toBe(
      false,
    );
    expect(
      await store.planCompose(
        c!.composeId,
        'a',
        'cloud',
        [job(c!.composeId, 'x86_64'), job(c!.composeId, 'aarch64')],
        [],
      ),
    ).toBe(true);
    expect((await store.jobs({ composeId: c!.composeId })).map((j) => j.state)).toEqual(['queued', 'queued']);
  });

  it('gives each job to one owner, and takes it back when the lease expires', async () => {
    const now = Date.now();
    const first = await store.claimJob('a', 1000, now);
    const second = await store.claimJob('b', 1000, now);
    expect(first && second && first.id !== second.id).toBe(true);
    expect(await store.claimJob('c', 1000, now)).toBeUndefined();
    // a dies; after its lease, c takes its job over and a can no longer finish it.
    const later = now + 5000;
    expect(await store.renewJobLease(second!.id, 'b', 60_000, later)).toBe(true);
    const taken = await store.claimJob('c', 60_000, later);
    expect(taken?.id).toBe(first!.id);
    expect(taken?.attempts).toBe(2);
    expect(await store.finishJob(first!.id, 'a', { state: 'complete' }, [])).toBe(false);
    expect(await store.renewJobLease(first!.id, 'a', 1000)).toBe(false);
    const item = {
      key: `${first!.id}:publish:us-east-1:gp3`,
      topic: 'fedimg.image.publish',
      body: { a: 1 },
      severity: 20,
      schema: 'base.message',
    };
    expect(await store.finishJob(first!.id, 'c', { state: 'complete' }, [item, item])).toBe(true);
    expect(
      await store.finishJob(second!.id, 'b', { state: 'partial', error: 'eu-west-1 failed' }, [item]),
    ).toBe(true);
    expect((await store.outbox()).filter((o) => o.key === item.key)).toHaveLength(1);
  });

  it('sends each announcement once: claimed under a lease, marked sent', async () => {
    const batch = await store.claimOutbox('a', 60_000, 10);
    expect(batch).toHaveLength(1);
    expect(batch[0]!.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(await store.claimOutbox('b', 60_000, 10)).toEqual([]);
    await store.markSent(batch[0]!.key);
    expect(await store.outbox({ unsent: true })).toEqual([]);
  });

  it('retry queues partial and failed jobs again', async () => {
    const r = await store.retryCompose('Fedora-Cloud-30-20190611.0');
    expect(r.jobs).toBe(1);
    const jobs = await store.jobs({ composeId: 'Fedora-Cloud-30-20190611.0' });
    expect(jobs.map((j) => j.state).sort()).toEqual(['complete', 'queued']);
    // A new retry round for what was queued again (its announcements are new ones), none for the rest.
    expect(jobs.map((j) => `${j.state}:${j.round}`).sort()).toEqual(['complete:0', 'queued:1']);
    expect(await store.counts()).toMatchObject({ jobs: { complete: 1, queued: 1 }, unsent: 0 });
  });

  it('never hands a caller a job it is running itself, even after its lease lapsed', async () => {
    const now = Date.now();
    const j = await store.claimJob('a', 1000, now);
    expect(j?.state).toBe('running');
    // The database was unavailable for longer than the lease: a's renewals failed, but a still runs it.
    const later = now + 5000;
    expect(await store.claimJob('a', 1000, later, [j!.id])).toBeUndefined();
    // Another replica takes it over as before (a then finds its lease lost when it renews).
    const taken = await store.claimJob('b', 60_000, later);
    expect(taken?.id).toBe(j!.id);
    expect(await store.renewJobLease(j!.id, 'a', 1000, later)).toBe(false);
    const items = ['us-east-1', 'eu-west-1'].map((r) => ({
      key: `${j!.id}:publish:${r}:gp3`,
      topic: 'fedimg.image.publish',
      body: { r },
      severity: 20,
      schema: 'base.message',
    }));
    expect(await store.finishJob(j!.id, 'b', { state: 'complete' }, items)).toBe(true);
  });

  it('gives back claimed announcements it will not send, for anyone to claim at once', async () => {
    const batch = await store.claimOutbox('a', 60_000, 10);
    expect(batch).toHaveLength(2);
    expect(await store.claimOutbox('b', 60_000, 10)).toEqual([]);
    await store.releaseOutbox('a');
    const again = await store.claimOutbox('b', 60_000, 10);
    expect(again.map((r) => r.messageId)).toEqual(batch.map((r) => r.messageId));
    for (const r of again) await store.markSent(r.key);
    await store.releaseOutbox('b');
    expect(await store.outbox({ unsent: true })).toEqual([]);
  });
});

describe('what the alerts watch', () => {
  let watchDb: Awaited<ReturnType<typeof scratchDatabase>>;
  beforeAll(async () => {
    watchDb = await scratchDatabase();
  });
  afterAll(async () => watchDb?.drop());

  it.each([
    ['SQLite', () => openSqlite(join(mkdtempSync(join(tmpdir(), 'joystick-store-')), 'w.db'))],
    ['PostgreSQL', () => openPostgres(watchDb.url)],
  ])(
    'on %s: the last publish per channel, the oldest running job and the oldest due one, from the database',
    async (_name, open) => {
      const store = await JobStore.open(open());
      try {
        const id = 'Fedora-Rawhide-20241001.n.0';
        const t0 = 1_700_000_000_000;
        expect(await store.watch(t0)).toEqual({ lastPublish: {} });
        expect(await store.recordCompose(compose(id), 'm', t0)).toBe('new');
        expect((await store.claimCompose('a', 60_000, t0))?.composeId).toBe(id);
        const rawhide = (arch: string): NewJob => ({ ...job(id, arch), channel: 'rawhide' });
        expect(
          await store.planCompose(id, 'a', 'rawhide', [rawhide('x86_64'), rawhide('aarch64')], [], t0),
        ).toBe(true);
        expect(await store.watch(t0 + 500)).toEqual({ lastPublish: {}, oldestDue: t0 });
        const claimed = await store.claimJob('a', 60_000, t0 + 1000);
        expect(await store.watch(t0 + 2000)).toEqual({
          lastPublish: {},
          oldestRunning: t0 + 1000,
          oldestDue: t0,
        });
        expect(await store.finishJob(claimed!.id, 'a', { state: 'complete' }, [], t0 + 5000)).toBe(true);
        expect(await store.watch(t0 + 6000)).toEqual({
          lastPublish: { rawhide: { aws: t0 + 5000 } },
          oldestDue: t0,
        });
      } finally {
        await store.close();
      }
    },
  );
});

describe('SQLite held by another process', () => {
  it('waits for the write lock asleep (the process stays responsive), then gives up with SQLITE_BUSY', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'joystick-store-')), 'j.db');
    const store = await JobStore.open(openSqlite(path, { busyWaitMs: 3000 }));
    const other = new Database(path);
    try {
      other.exec('BEGIN EXCLUSIVE');
      const t0 = Date.now();
      let ticks = 0;
      const ticker = setInterval(() => ticks++, 50);
      const recording = store.recordCompose(compose('Fedora-41-20241001.0'), 'm');
      setTimeout(() => other.exec('COMMIT'), 1000);
      expect(await recording).toBe('new');
      clearInterval(ticker);
      expect(Date.now() - t0).toBeGreaterThanOrEqual(900);
      // The event loop ran while waiting: timers fired every 50 ms or so, not once at the end.
      expect(ticks).toBeGreaterThan(10);

      other.exec('BEGIN EXCLUSIVE');
      const t1 = Date.now();
      const err = await store.recordCompose(compose('Fedora-41-20241002.0'), 'm').catch((e: unknown) => e);
      expect((err as { code?: string }).code).toMatch(/^SQLITE_BUSY/);
      expect(isTransientDbError(err)).toBe(true);
      expect(Date.now() - t1).toBeGreaterThanOrEqual(2900);
      other.exec('ROLLBACK');
    } finally {
      other.close();
      await store.close();
    }
  });
});

describe('several replicas on PostgreSQL', () => {
  it('start together on a fresh database and claim every job exactly once (FOR UPDATE SKIP LOCKED)', async () => {
    const fresh = await scratchDatabase();
    // Three replicas migrating one empty database at the same moment.
    const stores = await Promise.all([1, 2, 3].map(async () => JobStore.open(openPostgres(fresh.url))));
    try {
      await stores[0]!.recordCompose(compose('Fedora-40-20240414.0'), 'm');
      const c = await stores[0]!.claimCompose('x', 60_000);
      const jobs = Array.from({ length: 30 }, (_, i) => ({
        ...job(c!.composeId, `a${i}`),
        id: `${c!.composeId}/${i}`,
      }));
      await stores[0]!.planCompose(c!.composeId, 'x', 'cloud', jobs, []);
      const claimed: string[] = [];
      await Promise.all(
        stores.map(async (s, i) => {
          for (;;) {
            const j = await s.claimJob(`replica-${i}`, 60_000);
            if (!j) return;
            claimed.push(j.id);
          }
        }),
      );
      expect(claimed.sort()).toEqual(jobs.map((j) => j.id).sort());
    } finally {
      await Promise.all(stores.map((s) => s.close()));
      await fresh.drop();
    }
  });
});

describe('a database written by joystick before retry rounds (schema 1)', () => {
  it('is upgraded in place: every compose and job in round 0, retries counted from there', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'joystick-store-v1-')), 'j.db');
    const old = new Database(path);
    old.exec(`CREATE TABLE joystick_schema (version INTEGER NOT NULL);
      INSERT INTO joystick_schema (version) VALUES (1);
      CREATE TABLE composes (compose_id TEXT PRIMARY KEY, status TEXT NOT NULL, event TEXT NOT NULL,
        message_id TEXT, channel TEXT, received_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_try_at BIGINT NOT NULL DEFAULT 0, lease_owner TEXT,
        lease_until BIGINT, error TEXT);
      CREATE TABLE jobs (id TEXT PRIMARY KEY, compose_id TEXT NOT NULL REFERENCES composes (compose_id),
        request TEXT NOT NULL, channel TEXT NOT NULL, arch TEXT NOT NULL, image_type TEXT, state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, lease_owner TEXT, lease_until BIGINT,
        next_try_at BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
        started_at BIGINT, finished_at BIGINT, progress TEXT, record TEXT, error TEXT, command TEXT);`);
    old
      .prepare(
        `INSERT INTO composes (compose_id, status, event, received_at, updated_at) VALUES (?, 'failed', ?, 1, 1)`,
      )
      .run('Fedora-Cloud-30-20190611.0', JSON.stringify(compose('Fedora-Cloud-30-20190611.0')));
    old.close();
    const store = await JobStore.open(openSqlite(path));
    try {
      expect((await store.getCompose('Fedora-Cloud-30-20190611.0'))?.round).toBe(0);
      expect(await store.retryCompose('Fedora-Cloud-30-20190611.0')).toEqual({ jobs: 0, compose: true });
      expect((await store.getCompose('Fedora-Cloud-30-20190611.0'))?.round).toBe(1);
      const [v] = await store.db.query<{ version: number }>('SELECT version FROM joystick_schema');
      expect(Number(v!.version)).toBe(SCHEMA_VERSION);
    } finally {
      await store.close();
    }
  });
});
