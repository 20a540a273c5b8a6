import { mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, openSqlite } from '../../src/joystick/store/db.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { SCHEMA_VERSION } from '../../src/joystick/store/schema.js';
import { JobUploadSessions } from '../../src/joystick/store/upload-sessions.js';
import { scratchDatabase } from '../support/postgres.js';

let pgDb: Awaited<ReturnType<typeof scratchDatabase>>;
beforeAll(async () => {
  pgDb = await scratchDatabase();
});
afterAll(async () => pgDb?.drop());

const sqlitePath = join(mkdtempSync(join(tmpdir(), 'joystick-sessions-')), 'j.db');

describe.each([
  ['SQLite', () => openSqlite(sqlitePath)],
  ['PostgreSQL', () => openPostgres(pgDb.url)],
])('upload sessions in the job store on %s', (_name, open) => {
  // Two replicas: two connections (pools) to the one database, each with its own store.
  let a: JobStore;
  let b: JobStore;
  beforeAll(async () => {
    a = await JobStore.open(open());
    b = await JobStore.open(open());
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
  });

  const key = {
    release: 'Fedora-Cloud-41-20241004.0/x86_64',
    target: 'gcp',
    object: 'gs://bucket/disk.tar.gz',
  };
  const session = {
    uri: 'https://storage.googleapis.com/upload/storage/v1/b/bucket/o?uploadType=resumable&upload_id=secret',
    sourceSha256: 'a'.repeat(64),
    // More than a 32-bit integer holds: a disk image's size, and a time in milliseconds.
    sourceBytes: 5 * 2 ** 30 + 7,
    createdAt: Date.now(),
  };

  it('keeps a session until it is deleted, one per release, target and object', async () => {
    const sessions = new JobUploadSessions(a);
    expect(await sessions.get(key)).toBeUndefined();
    await sessions.put(key, session);
    expect(await sessions.get(key)).toEqual(session);
    expect(await sessions.get({ ...key, target: 'other' })).toBeUndefined();
    expect(await sessions.get({ ...key, object: 'gs://bucket/other' })).toBeUndefined();
    expect(await sessions.get({ ...key, release: 'other' })).toBeUndefined();
    // A new session for the same object replaces the old one; one without a known size has none.
    const next = { uri: `${session.uri}2`, sourceSha256: 'b'.repeat(64), createdAt: session.createdAt + 1 };
    await sessions.put(key, next);
    expect(await sessions.get(key)).toEqual(next);
    await sessions.delete(key);
    expect(await sessions.get(key)).toBeUndefined();
    // Deleting what is not there is no error.
    await sessions.delete(key);
  });

  it('is seen by another replica: the one that takes the job over resumes the session', async () => {
    const mine = new JobUploadSessions(a);
    const theirs = new JobUploadSessions(b);
    await mine.put(key, session);
    expect(await theirs.get(key)).toEqual(session);
    // The replica that finishes the upload forgets the session for all.
    await theirs.delete(key);
    expect(await mine.get(key)).toBeUndefined();
  });
});

describe('a job store made before upload sessions were kept', () => {
  it('gets their table on open, with its schema version unchanged', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'joystick-sessions-old-')), 'j.db');
    const first = await JobStore.open(openSqlite(path));
    await first.close();
    const raw = new Database(path);
    raw.exec('DROP TABLE upload_sessions');
    raw.close();
    const store = await JobStore.open(openSqlite(path));
    try {
      const sessions = new JobUploadSessions(store);
      await sessions.put(
        { release: 'r', target: 't', object: 'o' },
        { uri: 'u', sourceSha256: 's', createdAt: 1 },
      );
      expect(await sessions.get({ release: 'r', target: 't', object: 'o' })).toEqual({
        uri: 'u',
        sourceSha256: 's',
        createdAt: 1,
      });
      const [row] = await store.db.query<{ version: number }>('SELECT version FROM joystick_schema');
      expect(Number(row!.version)).toBe(SCHEMA_VERSION);
    } finally {
      await store.close();
    }
  });
});

describe('a SQLite job store', () => {
  it('is made readable by its owner only, with its -wal file, even when it was created readable by others', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'joystick-mode-')), 'j.db');
    writeFileSync(path, '', { mode: 0o644 });
    const store = await JobStore.open(openSqlite(path));
    try {
      for (const f of [path, `${path}-wal`]) expect(statSync(f).mode & 0o777, f).toBe(0o600);
    } finally {
      await store.close();
    }
  });
});
