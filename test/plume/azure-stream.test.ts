import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ComputeManagementClient } from '@azure/arm-compute';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { compressFile, sha256File, writeRawImage } from '../../tools/compose/sample-compose.js';
import { DISK_TYPE, fixedVhdFooter } from '../../tools/emulator/azure/vhd.js';
import { startAzureEmulator, type AzureEmulator } from '../../tools/emulator/azure/index.js';
import { writeAzureAccess } from '../../tools/emulator/plume-config.js';
import type { ChildSpec } from '../support/azure-release-child.js';
import { expectSparsePages } from '../support/azure-pages.js';
import { worldAzureSection } from '../support/world.js';

/**
 * Azure from a VHD whose size is not known before it is read (bzip2 records none: Container Linux's
 * `.vhd.bz2`), through plume's runner, journal, provider and Microsoft's clients against Azurite and the
 * gallery fake, in a child process as `plume release` runs: the page blob is created at the policy's bound
 * and cut to the VHD's length when the stream ends, its footer checked there. A stream past the bound, a
 * bad footer, an image without data are refused with nothing registered; kill -9 mid-upload resumes.
 */

const MiB = 2 ** 20;
const PAGE = 512 * 1024;
const CHILD = new URL('../support/azure-release-child.ts', import.meta.url).pathname;
const DEFINITION = 'Fedora-Cloud-41-x64';
let emu: AzureEmulator;
let dir: string;
let env: Record<string, string>;
let configPath: string;
let blobs: BlobServiceClient;
let compute: ComputeManagementClient;

beforeAll(async () => {
  emu = await startAzureEmulator({ retryAfterSeconds: 0, replicationMs: 0 });
  dir = mkdtempSync(join(tmpdir(), 'plume-azure-stream-'));
  const { profilePath, caPath } = await writeAzureAccess(emu, dir);
  configPath = join(dir, 'plume.toml');
  writeFileSync(
    configPath,
    worldAzureSection({ emulator: emu, profilePath, regions: [emu.arm.location] }, 'page_kib = 512'),
  );
  env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NODE_EXTRA_CA_CERTS: caPath };
  blobs = new BlobServiceClient(
    emu.blob.endpoint,
    new StorageSharedKeyCredential(emu.blob.accountName, emu.blob.accountKey),
  );
  compute = new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, emu.armClientOptions());
});
afterAll(async () => {
  await emu?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await emu.reset();
});

const calls = (operation: string) => emu.calls().filter((c) => c.operation === operation);

async function stagedBlobs(): Promise<string[]> {
  const container = blobs.getContainerClient('plume-images');
  if (!(await container.exists())) return [];
  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  return names;
}

async function versions(): Promise<{ name?: string; provisioningState?: string }[]> {
  const out = [];
  try {
    for await (const v of compute.galleryImageVersions.listByGalleryImage(
      emu.arm.resourceGroup,
      emu.arm.gallery,
      DEFINITION,
    ))
      out.push(v);
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode === 404) return [];
    throw err;
  }
  return out.sort((a, b) => (a.name ?? '').localeCompare(b.name ?? ''));
}

interface Vhd {
  /** The fixed VHD as it should end up in the blob: disk, then footer. */
  vhd: Buffer;
  /** The bzip2 file plume is given, and its sha256. */
  file: string;
  sha256: string;
}

/**
 * A fixed VHD of `virtualMiB` MiB (data over `dataFraction` of it, the rest zeros), compressed with bzip2;
 * `footer` replaces the real footer, `tail` is appended after it.
 */
async function bzip2Vhd(
  name: string,
  virtualMiB: number,
  opts: { dataFraction?: number; footer?: Buffer; tail?: Buffer } = {},
): Promise<Vhd> {
  const raw = join(dir, `${name}.vhd`);
  await writeRawImage(raw, { size: virtualMiB * MiB, dataFraction: opts.dataFraction ?? 0.3, seed: 3 });
  const vhd = Buffer.concat([
    readFileSync(raw),
    opts.footer ?? fixedVhdFooter(virtualMiB * MiB),
    opts.tail ?? Buffer.alloc(0),
  ]);
  writeFileSync(raw, vhd);
  const file = await compressFile(raw, 'bzip2');
  return { vhd, file, sha256: await sha256File(file) };
}

function start(image: Vhd, date: string, policy: Partial<ChildSpec> = {}) {
  const spec: ChildSpec = {
    config: configPath,
    state: join(dir, 'state.db'),
    image: pathToFileURL(image.file).href,
    compression: 'bzip2',
    sha256: image.sha256,
    date,
    maxVolumeGiB: 64,
    minDataMiB: 1,
    // What Container Linux gives its bzip2 images.
    fallbackVolumeGiB: 8,
    ...policy,
  };
  const specPath = join(dir, `spec-${date}-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(specPath, JSON.stringify(spec));
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, specPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  const done = new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
  return { child, done };
}

const run = (image: Vhd, date: string, policy: Partial<ChildSpec> = {}) => start(image, date, policy).done;
const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('plume: error:'));

/** The blob's content compared block for block with the VHD, and its pages: data written, zeros not sent. */
async function expectBlobIsVhd(name: string, vhd: Buffer) {
  const blob = blobs.getContainerClient('plume-images').getPageBlobClient(name);
  const props = await blob.getProperties();
  expect(props.contentLength).toBe(vhd.length);
  expect(props.metadata?.plume_complete).toBe('true');
  const held = await blob.downloadToBuffer();
  expect(held.length).toBe(vhd.length);
  for (let off = 0; off < vhd.length; off += PAGE)
    expect(held.subarray(off, off + PAGE).equals(vhd.subarray(off, off + PAGE)), `block at ${off}`).toBe(
      true,
    );
  const ranges = (await blob.getPageRanges()).pageRange ?? [];
  const { dataPages, written } = expectSparsePages(vhd, ranges);
  expect(written).toBeLessThan(vhd.length - 2 * MiB);
  expect(written).toBeGreaterThanOrEqual(dataPages * 512);
}

/** The next image version fails once, so the blob it was made from stays for inspection. */
function failVersionOnce(): void {
  emu.addFault({
    service: 'arm',
    operation: 'GalleryImageVersions_CreateOrUpdate',
    kind: 'image-failed',
    code: 'InternalOperationError',
    message: 'injected',
    times: 1,
  });
}

describe('a bzip2 VHD, whose size is known only once it is read', () => {
  it('is staged in a blob of the bound, cut to the VHD exactly, block for block, zero pages never sent', async () => {
    const image = await bzip2Vhd('plain', 24);
    // The version fails once, so the blob it was made from stays for inspection.
    failVersionOnce();
    const failed = await run(image, '20250101');
    expect(failed.code, failed.stderr).toBe(1);
    expect(failed.stderr).toContain('the VHD size is unknown until it is read');
    expect(failed.stderr).toContain(`"boundBytes":${64 * 2 ** 30 + 512}`);
    const [name] = await stagedBlobs();
    expect(name).toMatch(/\/Fedora-Cloud-Base-Azure-41-20250101\.0\.x86_64\.vhd$/);
    // Created once at the bound, resized once to the VHD's length.
    expect(calls('PutBlob')).toHaveLength(1);
    expect(calls('SetBlobProperties').map((c) => c.status)).toEqual([200]);
    await expectBlobIsVhd(name!, image.vhd);

    // Run again: the failed version is replaced from the same blob (nothing uploaded again), the blob goes.
    emu.clearCalls();
    const again = await run(image, '20250101');
    expect(again.code, again.stderr).toBe(0);
    const record = JSON.parse(again.stdout);
    expect(record.targets.azure.status).toBe('complete');
    expect(calls('PutPage')).toEqual([]);
    expect(calls('PutBlob')).toEqual([]);
    expect((await versions()).map((v) => [v.name, v.provisioningState])).toEqual([
      ['41.20250101.0', 'Succeeded'],
    ]);
    expect(await stagedBlobs()).toEqual([]);
  });

  it('a stream past the bound is refused as a decompression bomb, with no version and no blob', async () => {
    // A 16 MiB bound (the policy's largest disk) and a 32 MiB VHD.
    const image = await bzip2Vhd('bomb', 32, { dataFraction: 0.1 });
    const res = await run(image, '20250102', { maxVolumeGiB: 1 / 64, fallbackVolumeGiB: 1 / 64 });
    expect(res.code).toBe(1);
    expect(errorLines(res.stderr)).toEqual([
      expect.stringMatching(
        /decompresses to more than 16\.0 MiB plus its 512-byte trailer, the largest disk \[images\] max_volume_gib allows; nothing was registered/,
      ),
    ]);
    expect(calls('PutBlob')).toHaveLength(1);
    expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
    expect(await versions()).toEqual([]);
    expect(await stagedBlobs()).toEqual([]);
  });

  it('a bound larger than a page blob holds is refused before anything is created', async () => {
    const image = await bzip2Vhd('huge', 8);
    const res = await run(image, '20250108', { maxVolumeGiB: 9000 });
    expect(res.code).toBe(1);
    expect(errorLines(res.stderr)).toEqual([
      expect.stringMatching(
        /the bound it would be staged at \(9000 GiB, .*\) is more than a page blob holds \(8 TiB\)/,
      ),
    ]);
    expect(calls('PutBlob')).toEqual([]);
    expect(await versions()).toEqual([]);
  });

  it.each([
    [
      'a footer without the cookie',
      { footer: fixedVhdFooter(8 * MiB, DISK_TYPE.fixed, 'notavhd') },
      /its footer lacks the "conectix" cookie/,
    ],
    [
      'a footer giving another size',
      { footer: fixedVhdFooter(4 * MiB) },
      /its footer gives a size of 4194304 bytes, but 8388608 precede it/,
    ],
    [
      'a dynamic VHD footer',
      { footer: fixedVhdFooter(8 * MiB, DISK_TYPE.dynamic) },
      /its disk type is 3, not 2 \(fixed\)/,
    ],
    ['zeros after the footer', { tail: Buffer.alloc(MiB) }, /it ends in zeros where its footer should be/],
    [
      'a length that is not whole MiB plus a footer',
      { tail: Buffer.alloc(512, 1) },
      /not a fixed VHD of whole MiB/,
    ],
  ])(
    '%s, found at the end: the blob is deleted, nothing registered, one line',
    async (_what, opts, message) => {
      const image = await bzip2Vhd('bad', 8, opts);
      const res = await run(image, '20250103');
      expect(res.code).toBe(1);
      expect(errorLines(res.stderr)).toEqual([expect.stringMatching(message)]);
      // Pages went out before the end was known; the blob is gone, no version was asked for.
      expect(calls('PutPage').length).toBeGreaterThan(0);
      expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
      expect(await versions()).toEqual([]);
      expect(await stagedBlobs()).toEqual([]);
    },
  );

  it('an image of zeros is refused by the least-data policy, nothing registered', async () => {
    // Zeros but the footer: 512 bytes of data in one 512 KiB block, less than the 1 MiB an image must have.
    const image = await bzip2Vhd('zeros', 8, { dataFraction: 0 });
    const res = await run(image, '20250104');
    expect(res.code).toBe(1);
    expect(errorLines(res.stderr)).toEqual([
      expect.stringMatching(/holds only 524288 bytes of data \(all zeros or empty\), less than the 1\.0 MiB/),
    ]);
    expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
    expect(await stagedBlobs()).toEqual([]);
  });
});

describe('killed mid-upload and run again', () => {
  /** Start a release, hold its 6th Put Page and kill -9 the process in it; the blob it left. */
  async function killMidUpload(image: Vhd, date: string, policy: Partial<ChildSpec> = {}) {
    const id = emu.addFault({
      service: 'blob',
      operation: 'PutPage',
      kind: 'latency',
      latencyMs: 60_000,
      skip: 5,
    });
    const running = start(image, date, policy);
    const deadline = Date.now() + 60_000;
    while (!emu.faultStats().find((f) => f.id === id)?.matched && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 50));
    running.child.kill('SIGKILL');
    await running.done;
    emu.removeFault(id);
    const [name] = await stagedBlobs();
    const blob = blobs.getContainerClient('plume-images').getPageBlobClient(name!);
    return {
      name: name!,
      props: await blob.getProperties(),
      ranges: (await blob.getPageRanges()).pageRange ?? [],
    };
  }

  it('resumes in the blob of the bound: the pages in are not sent again, the blob is the VHD, one version', async () => {
    const image = await bzip2Vhd('killed', 16, { dataFraction: 0.5 });
    const left = await killMidUpload(image, '20250105');
    // The killed run left an unfinished blob of the bound, with some pages and no footer.
    expect(left.props.contentLength).toBe(64 * 2 ** 30 + 512);
    expect(left.props.metadata?.plume_complete).toBeUndefined();
    expect(left.ranges.length).toBeGreaterThan(0);
    const putBefore = calls('PutPage').filter((c) => c.status === 201).length;
    expect(putBefore).toBeGreaterThan(0);

    // The rerun's version fails once so the blob it resumed can be compared with the VHD.
    emu.clearCalls();
    failVersionOnce();
    const resumed = await run(image, '20250105');
    expect(resumed.code, resumed.stderr).toBe(1);
    expect(resumed.stderr).toContain('resuming an interrupted upload');
    expect(calls('PutBlob')).toEqual([]);
    const all = calls('PutPage');
    await expectBlobIsVhd(left.name, image.vhd);

    // A clean upload of the same file (another release) sends more pages than the resumed one did.
    emu.clearCalls();
    const fresh = await run(image, '20250106');
    expect(fresh.code, fresh.stderr).toBe(0);
    expect(all.length).toBeLessThan(calls('PutPage').length);

    emu.clearCalls();
    const again = await run(image, '20250105');
    expect(again.code, again.stderr).toBe(0);
    expect(calls('PutPage')).toEqual([]);
    expect(calls('GalleryImageVersions_CreateOrUpdate').filter((c) => c.status === 201)).toHaveLength(1);
    expect((await versions()).map((v) => [v.name, v.provisioningState])).toEqual([
      ['41.20250105.0', 'Succeeded'],
      ['41.20250106.0', 'Succeeded'],
    ]);
    expect(await stagedBlobs()).toEqual([]);
  });

  it('restarts cleanly when the bound changed since: the old blob is replaced, the VHD is whole', async () => {
    const image = await bzip2Vhd('rebound', 16, { dataFraction: 0.5 });
    const left = await killMidUpload(image, '20250107');
    expect(left.props.contentLength).toBe(64 * 2 ** 30 + 512);
    emu.clearCalls();
    const res = await run(image, '20250107', { maxVolumeGiB: 32 });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain('restarting an interrupted upload');
    expect(calls('DeleteBlob').length).toBeGreaterThanOrEqual(1);
    expect(calls('PutBlob')).toHaveLength(1);
    expect((await versions()).map((v) => [v.name, v.provisioningState])).toEqual([
      ['41.20250107.0', 'Succeeded'],
    ]);
    expect(await stagedBlobs()).toEqual([]);
  });
});
