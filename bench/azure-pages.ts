/**
 * Page-blob upload throughput: plume's Azure upload (fetch, sha256, `xz -dc`, blocks, zero-skip, parallel Put
 * Page with MD5) into a local sink, as a ratio to the raw read rate of the same pipeline without the upload,
 * each measured right after the other in this run (the machine may be shared: a baseline taken apart would
 * compare different loads). Also the pages sent and the all-zero pages skipped.
 *
 * `--compression bzip2` measures a VHD whose size is unknown until it is read (Container Linux's `.vhd.bz2`):
 * the blob created at the policy's bound (64 GiB plus the footer), resized to the VHD at the end.
 *
 * `node --import tsx bench/azure-pages.ts [--mib N] [--data 0.3] [--rounds 3] [--page KiB] [--compression
 * xz|bzip2]`: prints one line and writes .bench/azure-pages.json (azure-pages-bzip2.json for bzip2).
 */
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createInterface } from 'node:readline';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { serveDirectory } from '../tools/compose/http-server.js';
import { compressFile, sha256File, writeFixedVhd, writeRawImage } from '../tools/compose/sample-compose.js';
import { uploadPages } from '../src/plume/providers/azure/page-upload.js';
import { DEFAULT_SOURCE_POLICY } from '../src/plume/source/policy.js';
import { openImage } from '../src/plume/source/image.js';
import { silentLogger } from '../src/shared/log.js';

const MiB = 2 ** 20;
const ROOT = new URL('..', import.meta.url).pathname;
const DIR = join(ROOT, '.bench', 'azure');

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    data: { type: 'string', default: '0.3' },
    rounds: { type: 'string', default: '3' },
    page: { type: 'string', default: '4096' },
    sink: { type: 'boolean', default: false },
    compression: { type: 'string', default: 'xz' },
  },
});
const bzip2 = values.compression === 'bzip2';
if (!bzip2 && values.compression !== 'xz') throw new Error('--compression is xz or bzip2');
const mib = Number(values.mib);
const pageBytes = Number(values.page) * 1024;

/**
 * A local endpoint that speaks the little of the Blob API the upload uses and answers at once: it checks
 * each Put Page's size and that it carries an MD5 (hashing here would take the CPU the client is measured
 * with; the emulator checks MD5s), and counts pages and bytes.
 */
async function startSink() {
  const stats = { pages: 0, bytes: 0 };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let size = 0;
    req.on('data', (d: Buffer) => (size += d.length));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://sink');
      const headers = {
        'x-ms-request-id': '1',
        'x-ms-version': '2025-01-05',
        etag: '"1"',
        'last-modified': new Date().toUTCString(),
      };
      const comp = url.searchParams.get('comp');
      if (url.pathname === '/__stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify(stats));
      }
      if (req.method === 'HEAD') {
        res.writeHead(404, { ...headers, 'x-ms-error-code': 'BlobNotFound' });
        return res.end();
      }
      if (req.method === 'PUT' && comp === 'page') {
        if (size > 4 * MiB || !req.headers['content-md5']) {
          res.writeHead(400, { ...headers, 'x-ms-error-code': 'InvalidHeaderValue' });
          return res.end();
        }
        stats.pages++;
        stats.bytes += size;
      }
      // Set Metadata and Set Blob Properties (the resize) answer 200, the rest of the PUTs 201.
      res.writeHead(
        req.method === 'PUT' && comp !== 'metadata' && comp !== 'properties' ? 201 : 200,
        headers,
      );
      res.end();
    });
  });
  server.listen(0, '127.0.0.1');
  await new Promise((r) => server.once('listening', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/devstoreaccount1`,
    stats,
    server,
  };
}

async function main() {
  await mkdir(DIR, { recursive: true });
  const raw = join(DIR, `disk-${mib}m.raw`);
  const vhd = join(DIR, `disk-${mib}m.vhdfixed`);
  const file = `${vhd}.${bzip2 ? 'bz2' : 'xz'}`;
  if (!(await stat(file).catch(() => undefined))) {
    process.stderr.write(`making a ${mib} MiB fixed VHD (${values.data} data) ...\n`);
    await writeRawImage(raw, { size: mib * MiB, dataFraction: Number(values.data), seed: 1 });
    await writeFixedVhd(raw, vhd, mib * MiB);
    await compressFile(vhd, bzip2 ? 'bzip2' : 'xz', { threads: 0 });
    await rm(raw);
    await rm(vhd);
  }
  const sha256 = await sha256File(file);
  const files = await serveDirectory(DIR);
  // The sink runs in its own process, as the EBS sink does: its work must not take the client's CPU.
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--sink'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const sink = JSON.parse(line) as { url: string };
  const ctx = { log: silentLogger(), emit: () => undefined };
  const open = () =>
    openImage(
      {
        url: new URL(`${files.url}/disk-${mib}m.vhdfixed.${bzip2 ? 'bz2' : 'xz'}`),
        compression: bzip2 ? 'bzip2' : 'xz',
        sha256,
        // What Container Linux gives a bzip2 image, and the default policy's largest volume.
        ...(bzip2 ? { fallbackVolumeGiB: 8, maxVolumeGiB: 64 } : {}),
      },
      DEFAULT_SOURCE_POLICY,
    );
  const blobs = new BlobServiceClient(
    sink.url,
    new StorageSharedKeyCredential('devstoreaccount1', Buffer.alloc(32).toString('base64')),
  );
  const results: { readSeconds: number; uploadSeconds: number; ratio: number }[] = [];
  let last = { pagesSent: 0, zeroPages: 0, pages: 0, bytesSent: 0 };
  for (let round = 0; round < Number(values.rounds); round++) {
    // The baseline: the same fetch, checksum, decompression and blocks, nothing sent.
    let t0 = performance.now();
    const image = await open();
    const reader = image.read(pageBytes);
    for await (const block of reader.blocks) block.release?.();
    reader.finish();
    const readSeconds = (performance.now() - t0) / 1000;

    t0 = performance.now();
    const blob = blobs.getContainerClient('bench').getPageBlobClient(`r${round}.vhd`);
    const up = await uploadPages(
      blob,
      await open(),
      {
        // Of bzip2, the bound the provider creates the blob at; the resize to the VHD comes at the end.
        bytes: bzip2 ? 64 * 2 ** 30 + 512 : mib * MiB + 512,
        sizeUnknown: bzip2,
        pageBytes,
        concurrency: 8,
        metadata: {},
      },
      ctx,
    );
    if (up.bytes !== mib * MiB + 512) throw new Error(`uploaded ${up.bytes} bytes, not ${mib * MiB + 512}`);
    const uploadSeconds = (performance.now() - t0) / 1000;
    results.push({ readSeconds, uploadSeconds, ratio: readSeconds / uploadSeconds });
    last = {
      pagesSent: up.pagesSent,
      zeroPages: up.summary.zeroBlocks,
      pages: up.summary.blocks,
      bytesSent: up.bytesSent,
    };
  }
  await files.close();
  const sinkStats = await (await fetch(`${new URL(sink.url).origin}/__stats`)).json();
  child.kill();
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const summary = {
    imageMiB: mib,
    dataFraction: Number(values.data),
    pageKiB: pageBytes / 1024,
    rawMiBps: Math.round(mib / median(results.map((r) => r.readSeconds))),
    uploadMiBps: Math.round(mib / median(results.map((r) => r.uploadSeconds))),
    ratio: Number(median(results.map((r) => r.ratio)).toFixed(2)),
    putPageCalls: last.pagesSent,
    sentMiB: Math.round(last.bytesSent / MiB),
    zeroPagesSkipped: last.zeroPages,
    pages: last.pages,
    sink: sinkStats,
    rounds: results,
  };
  await writeFile(
    join(ROOT, '.bench', bzip2 ? 'azure-pages-bzip2.json' : 'azure-pages.json'),
    JSON.stringify({ compression: values.compression, ...summary }, null, 2),
  );
  console.log(
    `page-blob upload${bzip2 ? ' (bzip2, size unknown until read)' : ''}: ${summary.uploadMiBps} MiB/s against a raw read of ${summary.rawMiBps} MiB/s: ratio ${summary.ratio} (median of ${results.length}); ` +
      `${summary.sentMiB} of ${mib} MiB sent in ${summary.putPageCalls} Put Page calls; ${summary.zeroPagesSkipped} of ${summary.pages} blocks of ${summary.pageKiB} KiB all zeros, never sent`,
  );
}

if (values.sink) {
  const sink = await startSink();
  console.log(JSON.stringify({ url: sink.url }));
} else await main();
