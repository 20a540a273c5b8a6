import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGcpEmulator, type GcpEmulator } from '../../tools/emulator/gcp/index.js';
import { storageClient } from '../emulator/gcp-helpers.js';
import { uploadObject, type UploadOptions } from '../../src/plume/providers/gcp/upload.js';
import {
  MemoryUploadSessions,
  SqliteUploadSessions,
  type UploadSessionKey,
} from '../../src/plume/state/upload-sessions.js';
import { silentLogger } from '../../src/shared/log.js';

/**
 * uploadObject resuming across runs, against the Google Cloud emulator's Cloud Storage (resumable sessions
 * as GCS documents them) with Google's own client: a run that died mid-upload leaves its session in the
 * store, and the next run sends only what the session lacks, or starts afresh when the session is gone or
 * for another source. (The CLI's kill -9 of a whole release is in gcp-e2e.test.ts.)
 */

const MiB = 2 ** 20;
const BUCKET = 'plume-resume-test';
let emu: GcpEmulator;
let storage: Storage;
beforeAll(async () => {
  emu = await startGcpEmulator();
  emu.createBucket(BUCKET);
  storage = storageClient(emu);
});
afterAll(async () => {
  await emu?.stop();
});

/** The source as the provider reads it, in 100 kB pieces (not aligned to the 1 MiB requests); `dieAt` ends it. */
async function* chunks(data: Buffer, dieAt = Infinity): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += 100_000) {
    if (i >= dieAt) throw new Error('the run died');
    yield data.subarray(i, i + 100_000);
  }
}

/**
 * Wait until the dead run's last request (already on its way when its source failed) has landed: a killed
 * process sends nothing more, this one's library may.
 */
async function settled(sessions: () => { received: unknown[] }[]): Promise<void> {
  let last = -1;
  for (;;) {
    const n = sessions().reduce((k, s) => k + s.received.length, 0);
    if (n === last) return;
    last = n;
    await new Promise((r) => setTimeout(r, 250));
  }
}

function setup(name: string, sourceSha256 = 'sha-a') {
  const store = new MemoryUploadSessions();
  const key: UploadSessionKey = { release: 'r', target: 't', object: `gs://${BUCKET}/${name}` };
  const opts = (sha = sourceSha256): UploadOptions => ({
    chunkBytes: MiB,
    metadata: {},
    emit: () => undefined,
    log: silentLogger(),
    requestTimeoutMs: 10_000,
    retrying: (_action, fn) => fn(),
    resume: { store, key, sourceSha256: sha },
  });
  const file = storage.bucket(BUCKET).file(name);
  const sessions = () => emu.uploads().filter((u) => u.name === name);
  return { store, key, opts, file, sessions };
}

describe('a resumable upload a run left', () => {
  it('is resumed by the next run, which sends only what the session lacks', async () => {
    const data = randomBytes(5 * MiB + 12_345);
    const { store, key, opts, file, sessions } = setup('resume.tar.gz');
    await expect(uploadObject(file, chunks(data, 2.5 * MiB), opts())).rejects.toThrow('the run died');
    await settled(sessions);
    const first = sessions()[0]!;
    const held = first.persisted;
    expect(held).toBeGreaterThanOrEqual(MiB);
    expect((await store.get(key))?.uri).toContain('upload_id=');

    const r = await uploadObject(file, chunks(data), opts());
    expect(r).toMatchObject({ bytes: data.length, resumedFrom: held, sent: data.length - held });
    expect(sessions()).toHaveLength(1);
    const [session] = sessions();
    expect(session!.complete).toBe(true);
    // The second run sent from where the session stood, and nothing before.
    const second = session!.received.slice(first.received.length);
    expect(second[0]!.start).toBe(held);
    expect(second.reduce((n, q) => n + q.bytes, 0)).toBe(data.length - held);
    const [stored] = await file.download();
    expect(stored.equals(data)).toBe(true);
    expect(await store.get(key)).toBeUndefined();
    await file.delete();
  });

  it('for another source: cancelled, and the upload starts afresh', async () => {
    const data = randomBytes(3 * MiB);
    const { store, key, opts, file, sessions } = setup('other-source.tar.gz');
    await expect(uploadObject(file, chunks(data, 1.5 * MiB), opts('sha-a'))).rejects.toThrow();
    await settled(sessions);
    const r = await uploadObject(file, chunks(data), opts('sha-b'));
    expect(r).toMatchObject({ resumedFrom: 0, sent: data.length });
    const [old, fresh] = sessions();
    expect(old!.cancelled).toBe(true);
    expect(fresh!.complete).toBe(true);
    expect(await store.get(key)).toBeUndefined();
    await file.delete();
  });

  it('that Cloud Storage no longer knows: the upload starts afresh', async () => {
    const data = randomBytes(2 * MiB + 7);
    const { store, key, opts, file, sessions } = setup('gone.tar.gz');
    await expect(uploadObject(file, chunks(data, 1.5 * MiB), opts())).rejects.toThrow();
    await settled(sessions);
    // Cancelled by someone else (or expired): the status query answers 404.
    expect((await fetch((await store.get(key))!.uri, { method: 'DELETE' })).status).toBe(499);
    const r = await uploadObject(file, chunks(data), opts());
    expect(r).toMatchObject({ resumedFrom: 0, sent: data.length });
    expect(sessions().map((s) => s.complete)).toEqual([false, true]);
    await file.delete();
  });

  it('whose bytes are not the source read again: the object is deleted, and the next run starts afresh', async () => {
    const data = randomBytes(3 * MiB);
    const { store, key, opts, file, sessions } = setup('changed.tar.gz');
    await expect(uploadObject(file, chunks(data, 2.5 * MiB), opts())).rejects.toThrow();
    await settled(sessions);
    // The same sha256 claimed, other bytes where the session already holds some: caught by the checksums.
    const changed = Buffer.from(data);
    changed[10] = changed[10]! ^ 0xff;
    await expect(uploadObject(file, chunks(changed), opts())).rejects.toThrow(/did not match|damaged/);
    expect((await file.exists())[0]).toBe(false);
    expect(await store.get(key)).toBeUndefined();
    const r = await uploadObject(file, chunks(changed), opts());
    expect(r).toMatchObject({ resumedFrom: 0, sent: changed.length });
    await file.delete();
  });
});

describe('the state database that keeps sessions', () => {
  it('keeps one per release, target and object, and is readable by its owner only (its -wal too)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plume-sessions-'));
    try {
      const path = join(dir, 'state.db');
      // A database made before sessions were kept in it, readable by others.
      writeFileSync(path, '', { mode: 0o644 });
      const store = new SqliteUploadSessions(path);
      const key = { release: 'r', target: 'gcp', object: 'gs://b/o' };
      await store.put(key, { uri: 'https://example.invalid/?upload_id=x', sourceSha256: 's', createdAt: 1 });
      expect(await store.get(key)).toEqual({
        uri: 'https://example.invalid/?upload_id=x',
        sourceSha256: 's',
        createdAt: 1,
      });
      expect(await store.get({ ...key, target: 'other' })).toBeUndefined();
      for (const f of [path, `${path}-wal`]) expect(statSync(f).mode & 0o777).toBe(0o600);
      await store.delete(key);
      expect(await store.get(key)).toBeUndefined();
      store.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
