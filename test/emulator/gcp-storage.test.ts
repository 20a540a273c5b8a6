import { createHash, randomBytes } from 'node:crypto';
import { CRC32C, type Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGcpEmulator, type GcpEmulator } from '../../tools/emulator/gcp/index.js';
import { rejection, storageClient } from './gcp-helpers.js';

/**
 * Cloud Storage as the GCE provider uses it, through @google-cloud/storage: Google's Firebase Storage
 * emulator behind the proxy that adds buckets, chunked resumable uploads, preconditions and tokens.
 */

const KiB = 1024;
let emu: GcpEmulator;
let storage: Storage;

beforeAll(async () => {
  emu = await startGcpEmulator();
  storage = storageClient(emu);
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
  emu.createBucket('plume-test');
});

const md5 = (b: Buffer) => createHash('md5').update(b).digest('base64');
const crc32c = (b: Buffer) => {
  const c = new CRC32C();
  c.update(b);
  return c.toString();
};
const ops = (operation: string) => emu.calls().filter((c) => c.operation === operation);

describe('resumable uploads', () => {
  it('takes an object in 256 KiB chunks, each answered 308 with what is persisted, the last with the object', async () => {
    const data = randomBytes(1100 * KiB);
    const file = storage.bucket('plume-test').file('plume/a/disk.tar.gz');
    // As the provider does: the session is started on its own call (with the token), the chunks go to its
    // URI (@google-cloud/storage sends them without one to a custom endpoint: the URI authorizes them).
    const [uri] = await file.createResumableUpload({
      metadata: { contentType: 'application/gzip', metadata: { 'plume-release': 'k' } },
    });
    await file.save(data, { uri, resumable: true, chunkSize: 256 * KiB });
    expect(ops('objects.insert').map((c) => c.status)).toEqual([200]);
    // Given a session URI, the client first asks how much it holds (nothing: 308 without Range); then
    // 1100 KiB go as four whole chunks and the rest.
    expect(ops('objects.insert.chunk').map((c) => c.status)).toEqual([308, 308, 308, 308, 308, 200]);
    const [meta] = await file.getMetadata();
    expect(meta).toMatchObject({
      size: String(data.length),
      md5Hash: md5(data),
      crc32c: crc32c(data),
      contentType: 'application/gzip',
      metadata: { 'plume-release': 'k' },
    });
    const [back] = await file.download();
    expect(back.equals(data)).toBe(true);
  });

  it('resumes a chunk whose connection broke: the client asks what is persisted and goes on from there', async () => {
    const data = randomBytes(800 * KiB);
    emu.addFault({ service: 'storage', operation: 'objects.insert.chunk', kind: 'drop', skip: 2, times: 1 });
    // A client of its own: File#save without a precondition turns retries off for its whole Storage object
    // (an SDK quirk), and earlier tests made such calls.
    const file = storageClient(emu).bucket('plume-test').file('resumed.bin');
    // The client retries an upload only when it cannot make a second object: ifGenerationMatch 0, as the
    // provider sends.
    const preconditionOpts = { ifGenerationMatch: 0 };
    const [uri] = await file.createResumableUpload({ preconditionOpts });
    await file.save(data, { uri, resumable: true, chunkSize: 256 * KiB, preconditionOpts });
    const statuses = ops('objects.insert.chunk').map((c) => c.status);
    expect(statuses.slice(0, 3)).toEqual([308, 308, 0]); // status query, first chunk, the dropped one
    expect(statuses).toContain(308);
    expect(statuses.at(-1)).toBe(200);
    const [back] = await file.download();
    expect(back.equals(data)).toBe(true);
  });

  it('persists a short chunk only up to a multiple of 256 KiB, and says so in Range', async () => {
    const [uri] = await storage.bucket('plume-test').file('short.bin').createResumableUpload();
    const put = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 0-299999/*' },
      body: randomBytes(300_000),
    });
    expect([put.status, put.headers.get('range')]).toEqual([308, 'bytes=0-262143']);
    const query = await fetch(uri, { method: 'PUT', headers: { 'content-range': 'bytes */*' } });
    expect([query.status, query.headers.get('range')]).toEqual([308, 'bytes=0-262143']);
    const early = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 300000-300009/300010' },
      body: randomBytes(10),
    });
    expect(early.status).toBe(400);
  });

  it("refuses the last chunk when its X-Goog-Hash is not the object's, and makes no object", async () => {
    const file = storage.bucket('plume-test').file('bad-hash.bin');
    const [uri] = await file.createResumableUpload();
    const res = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 0-2/3', 'x-goog-hash': `crc32c=${crc32c(Buffer.from('abd'))}` },
      body: 'abc',
    });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { message: string } };
    expect(body.error.message).toMatch(/CRC32C hash .* doesn't match calculated/);
    expect((await file.exists())[0]).toBe(false);
  });

  it('keeps ifGenerationMatch: 0 (no such object yet) at the start of a session and at its end', async () => {
    const file = storage.bucket('plume-test').file('once.bin');
    const [uri] = await file.createResumableUpload({ preconditionOpts: { ifGenerationMatch: 0 } });
    // Someone else makes the object meanwhile.
    await file.save(Buffer.from('first'), { resumable: false });
    const res = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': 'bytes 0-5/6' },
      body: 'second',
    });
    expect(res.status).toBe(412);
    const err = await rejection(file.createResumableUpload({ preconditionOpts: { ifGenerationMatch: 0 } }));
    expect(err.code).toBe(412);
    expect((await file.download())[0].toString()).toBe('first');
  });
});

describe('buckets, objects and tokens', () => {
  it("answers for the project's buckets, and 404 for objects of a bucket that does not exist", async () => {
    const [meta] = await storage.bucket('plume-test').getMetadata();
    expect(meta).toMatchObject({ kind: 'storage#bucket', name: 'plume-test', location: 'US' });
    const err = await rejection(storage.bucket('no-such-bucket').file('x').getMetadata());
    expect([err.code, err.message]).toEqual([404, 'The specified bucket does not exist.']);
  });

  it('merges custom metadata on patch, lists with a prefix, and deletes', async () => {
    const file = storage.bucket('plume-test').file('plume/k/a.tar.gz');
    await file.save(Buffer.from('x'), { resumable: false, metadata: { metadata: { a: '1' } } });
    await storage.bucket('plume-test').file('other').save(Buffer.from('y'), { resumable: false });
    await file.setMetadata({ metadata: { b: '2' } });
    expect((await file.getMetadata())[0].metadata).toEqual({ a: '1', b: '2' });
    const [listed] = await storage.bucket('plume-test').getFiles({ prefix: 'plume/' });
    expect(listed.map((f) => f.name)).toEqual(['plume/k/a.tar.gz']);
    await file.delete();
    const err = await rejection(file.getMetadata());
    expect(err.code).toBe(404);
  });

  it('refuses a request without a token, or with one it did not issue (401)', async () => {
    const url = `${emu.endpoints.storage}/storage/v1/b/plume-test/o`;
    const none = await fetch(url);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { errors: { reason: string }[] } }).error.errors[0]!.reason).toBe(
      'required',
    );
    const forged = await fetch(url, { headers: { authorization: 'Bearer ya29.forged' } });
    expect(forged.status).toBe(401);
    const good = await fetch(url, { headers: { authorization: `Bearer ${emu.accessToken()}` } });
    expect(good.status).toBe(200);
  });

  it('answers an access-denied fault as Cloud Storage does, naming the permission', async () => {
    emu.addFault({ service: 'storage', operation: 'objects.get', kind: 'access-denied' });
    const err = await rejection(storage.bucket('plume-test').file('x').getMetadata());
    expect(err.code).toBe(403);
    expect(err.message).toContain("Permission 'storage.objects.get' denied");
  });
});
