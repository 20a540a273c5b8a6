import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzureEmulator, type AzureEmulator } from '../../tools/emulator/azure/index.js';
import { blobService, data, md5, MIB, rejection } from './azure-helpers.js';

let emu: AzureEmulator;

beforeAll(async () => {
  emu = await startAzureEmulator({ retryAfterSeconds: 0 });
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
});

describe('page blobs in Azurite, through the blob proxy', () => {
  it('creates a page blob and takes pages with their Content-MD5', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('disk.vhd');
    await blob.create(8 * MIB);
    const page = data(4 * MIB, 1);
    const put = await blob.uploadPages(page, 0, page.length, { transactionalContentMD5: md5(page) });
    expect(Buffer.from(put.contentMD5!)).toEqual(Buffer.from(md5(page)));
    const props = await blob.getProperties();
    expect([props.blobType, props.contentLength]).toEqual(['PageBlob', 8 * MIB]);
    expect(emu.calls().map((c) => [c.service, c.operation, c.status])).toEqual([
      ['blob', 'CreateContainer', 201],
      ['blob', 'PutBlob', 201],
      ['blob', 'PutPage', 201],
      ['blob', 'GetBlobProperties', 200],
    ]);
  });

  it('refuses a page whose Content-MD5 does not match its bytes, and keeps nothing of it', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('disk.vhd');
    await blob.create(MIB);
    const page = data(MIB, 2);
    const err = await rejection(
      blob.uploadPages(page, 0, page.length, { transactionalContentMD5: md5(data(MIB, 3)) }),
    );
    expect([err.statusCode, err.code]).toEqual([400, 'Md5Mismatch']);
    expect(err.message).toMatch(/did not match with the MD5 value calculated by the server/);
    expect((await blob.getPageRanges()).pageRange ?? []).toEqual([]);
  });

  it('is sparse: page ranges list only what was written, unwritten pages read back as zeros', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('sparse.vhd');
    await blob.create(16 * MIB + 512);
    const a = data(MIB, 4);
    const b = data(512, 5);
    await blob.uploadPages(a, 2 * MIB, a.length, { transactionalContentMD5: md5(a) });
    await blob.uploadPages(b, 16 * MIB, b.length, { transactionalContentMD5: md5(b) });
    const ranges = await blob.getPageRanges();
    // The SDK gives each range as offset and count = End - Start of the inclusive range Azure returns.
    expect(ranges.pageRange).toEqual([
      { offset: 2 * MIB, count: MIB - 1 },
      { offset: 16 * MIB, count: 511 },
    ]);
    const whole = await blob.downloadToBuffer();
    const expected = Buffer.alloc(16 * MIB + 512);
    a.copy(expected, 2 * MIB);
    b.copy(expected, 16 * MIB);
    expect(whole.equals(expected)).toBe(true);
  });

  it('lets a broken upload resume: the ranges already there are skipped, the rest written', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('resume.vhd');
    const chunks = [0, 1, 2, 3].map((i) => data(MIB, 10 + i));
    await blob.create(4 * MIB);
    // The first attempt dies after two chunks.
    for (const i of [0, 1])
      await blob.uploadPages(chunks[i]!, i * MIB, MIB, { transactionalContentMD5: md5(chunks[i]!) });
    // A new run asks what is there and writes only what is missing.
    const have = (await blob.getPageRanges()).pageRange ?? [];
    const covered = (i: number) =>
      have.some((r) => r.offset <= i * MIB && r.offset + (r.count ?? 0) >= (i + 1) * MIB - 1);
    const missing = [0, 1, 2, 3].filter((i) => !covered(i));
    expect(missing).toEqual([2, 3]);
    for (const i of missing)
      await blob.uploadPages(chunks[i]!, i * MIB, MIB, { transactionalContentMD5: md5(chunks[i]!) });
    expect((await blob.downloadToBuffer()).equals(Buffer.concat(chunks))).toBe(true);
    expect(emu.calls().filter((c) => c.operation === 'PutPage')).toHaveLength(4);
  });

  it('resizes a page blob (Set Blob Properties, x-ms-blob-content-length): pages past a smaller size are gone', async () => {
    // What an upload of unknown size relies on: a blob created at a bound far beyond the data is cut to the
    // VHD's length at the end, and nothing written past that length survives.
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('bound.vhd');
    await blob.create(64 * 2 ** 30 + 512);
    const a = data(MIB, 8);
    const beyond = data(512, 9);
    await blob.uploadPages(a, 0, a.length, { transactionalContentMD5: md5(a) });
    await blob.uploadPages(beyond, 3 * MIB, 512, { transactionalContentMD5: md5(beyond) });
    await blob.resize(2 * MIB + 512);
    expect((await blob.getProperties()).contentLength).toBe(2 * MIB + 512);
    expect((await blob.getPageRanges()).pageRange).toEqual([{ offset: 0, count: MIB - 1 }]);
    const footer = data(512, 10);
    await blob.uploadPages(footer, 2 * MIB, 512, { transactionalContentMD5: md5(footer) });
    const expected = Buffer.alloc(2 * MIB + 512);
    a.copy(expected, 0);
    footer.copy(expected, 2 * MIB);
    expect((await blob.downloadToBuffer()).equals(expected)).toBe(true);
    // Grown again, the page once written past the end reads as zeros: the resize cleared it.
    await blob.resize(4 * MIB);
    expect((await blob.downloadToBuffer(3 * MIB, 512)).equals(Buffer.alloc(512))).toBe(true);
    expect(
      emu
        .calls()
        .filter((c) => c.operation === 'SetBlobProperties')
        .map((c) => c.status),
    ).toEqual([200, 200]);
  });

  it('refuses a page of more than 4 MiB', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('big.vhd');
    await blob.create(8 * MIB);
    const err = await rejection(blob.uploadPages(data(4 * MIB + 512, 6), 0, 4 * MIB + 512));
    expect([err.statusCode, err.code]).toEqual([413, 'RequestBodyTooLarge']);
  });

  it('deletes a blob', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    const blob = container.getPageBlobClient('gone.vhd');
    await blob.create(MIB);
    await blob.delete();
    expect(await blob.exists()).toBe(false);
    expect(
      emu
        .calls()
        .map((c) => [c.operation, c.status])
        .slice(-2),
    ).toEqual([
      ['DeleteBlob', 202],
      ['GetBlobProperties', 404],
    ]);
  });

  it('empties the account on reset', async () => {
    const container = blobService(emu).getContainerClient('vhds');
    await container.create();
    await emu.reset();
    expect(await container.exists()).toBe(false);
  });
});
