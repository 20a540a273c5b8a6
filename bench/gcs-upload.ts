/**
 * Cloud Storage upload throughput: plume's GCE upload (fetch, sha256, one resumable session of chunked
 * PUTs through @google-cloud/storage, MD5 and CRC32C checked against what the object says) into a local
 * sink, as a ratio to the raw read rate of the same fetch and checksum without the upload, each measured
 * right after the other in this run (the machine may be shared: a baseline taken apart would compare
 * different loads). The archive is uploaded as it is, still compressed, as GCE wants it.
 *
 * `node --import tsx bench/gcs-upload.ts [--mib N] [--data 0.3] [--rounds 3] [--chunk MiB]`: prints one
 * line and writes .bench/gcs-upload.json.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { CRC32C, Storage } from '@google-cloud/storage';
import { serveDirectory } from '../tools/compose/http-server.js';
import { sha256File, writeGceArchive, writeRawImage } from '../tools/compose/sample-compose.js';
import { uploadObject } from '../src/plume/providers/gcp/upload.js';
import { openImage } from '../src/plume/source/image.js';
import { silentLogger } from '../src/shared/log.js';
import { DEFAULT_SOURCE_POLICY } from '../src/plume/source/policy.js';

const MiB = 2 ** 20;
const ROOT = new URL('..', import.meta.url).pathname;
const DIR = join(ROOT, '.bench', 'gcs');

const { values } = parseArgs({
  options: {
    mib: { type: 'string', default: '1024' },
    data: { type: 'string', default: '0.3' },
    rounds: { type: 'string', default: '3' },
    chunk: { type: 'string', default: '32' },
    sink: { type: 'boolean', default: false },
  },
});
const mib = Number(values.mib);

interface Session {
  name: string;
  bytes: number;
  md5: ReturnType<typeof createHash>;
  crc: CRC32C;
  done?: Record<string, unknown>;
}

/**
 * A local endpoint that speaks the little of the JSON API a resumable upload uses (start a session; PUT
 * chunks with Content-Range, 308 with the Range held until the last; the object's metadata), keeping
 * nothing but the MD5 and CRC32C the client checks afterwards.
 */
async function startSink() {
  const sessions = new Map<string, Session>();
  const objects = new Map<string, Record<string, unknown>>();
  let next = 0;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://sink');
    const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    const session = sessions.get(url.searchParams.get('upload_id') ?? '');
    if (req.method === 'PUT' && session) {
      req.on('data', (d: Buffer) => {
        session.md5.update(d);
        session.crc.update(d);
        session.bytes += d.length;
      });
      req.on('end', () => {
        const total = /\/(\d+)$/.exec(req.headers['content-range'] ?? '')?.[1];
        if (total === undefined || Number(total) !== session.bytes) {
          res.writeHead(308, session.bytes ? { range: `bytes=0-${session.bytes - 1}` } : {});
          return res.end();
        }
        const object = {
          kind: 'storage#object',
          bucket: 'bench',
          name: session.name,
          generation: '1',
          size: String(session.bytes),
          md5Hash: session.md5.digest('base64'),
          crc32c: session.crc.toString(),
        };
        objects.set(session.name, object);
        json(200, object);
      });
      return;
    }
    req.resume();
    req.on('end', () => {
      if (req.method === 'POST' && url.searchParams.get('uploadType') === 'resumable') {
        const id = String(++next);
        const name = url.searchParams.get('name') ?? `object-${id}`;
        sessions.set(id, { name, bytes: 0, md5: createHash('md5'), crc: new CRC32C() });
        const location = `http://${req.headers.host}/upload/storage/v1/b/bench/o?uploadType=resumable&upload_id=${id}`;
        return json(200, {}, { location });
      }
      const name = decodeURIComponent(/\/o\/([^/?]+)$/.exec(url.pathname)?.[1] ?? '');
      const object = objects.get(name);
      if (req.method === 'GET' && object) return json(200, object);
      json(404, { error: { code: 404, message: 'No such object', errors: [{ reason: 'notFound' }] } });
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

async function main() {
  await mkdir(DIR, { recursive: true });
  const raw = join(DIR, `disk-${mib}m.raw`);
  const archive = join(DIR, `disk-${mib}m.tar.gz`);
  if (!(await stat(archive).catch(() => undefined))) {
    process.stderr.write(`making a GCE archive of a ${mib} MiB disk (${values.data} data) ...\n`);
    await writeRawImage(raw, { size: mib * MiB, dataFraction: Number(values.data), seed: 2 });
    await writeGceArchive(raw, archive);
    await rm(raw);
  }
  const sha256 = await sha256File(archive);
  const archiveBytes = (await stat(archive)).size;
  const files = await serveDirectory(DIR);
  // The sink runs in its own process, as the EBS and page-blob sinks do: its hashing must not take the
  // client's CPU.
  const child = spawn(process.execPath, ['--import', 'tsx', new URL(import.meta.url).pathname, '--sink'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const [line] = (await once(createInterface({ input: child.stdout }), 'line')) as [string];
  const sink = JSON.parse(line) as { url: string };
  const storage = new Storage({ apiEndpoint: sink.url, projectId: 'plume-bench' });
  const open = () =>
    openImage(
      { url: new URL(`${files.url}/disk-${mib}m.tar.gz`), compression: 'none', sha256 },
      DEFAULT_SOURCE_POLICY,
    );
  const results: { readSeconds: number; uploadSeconds: number; ratio: number }[] = [];
  try {
    for (let round = 0; round < Number(values.rounds); round++) {
      // The baseline: the same fetch and checksum, nothing sent.
      let t0 = performance.now();
      const read = (await open()).file();
      for await (const chunk of read.chunks) void chunk;
      read.finish();
      const readSeconds = (performance.now() - t0) / 1000;

      t0 = performance.now();
      const source = (await open()).file();
      await uploadObject(storage.bucket('bench').file(`r${round}.tar.gz`), source.chunks, {
        chunkBytes: Number(values.chunk) * MiB,
        metadata: {},
        emit: () => undefined,
        log: silentLogger(),
        requestTimeoutMs: 60_000,
        retrying: (_action, fn) => fn(),
      });
      source.finish();
      const uploadSeconds = (performance.now() - t0) / 1000;
      results.push({ readSeconds, uploadSeconds, ratio: readSeconds / uploadSeconds });
    }
  } finally {
    await files.close();
    child.kill();
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const archiveMiB = archiveBytes / MiB;
  const summary = {
    imageMiB: mib,
    archiveMiB: Math.round(archiveMiB),
    chunkMiB: Number(values.chunk),
    readMiBps: Math.round(archiveMiB / median(results.map((r) => r.readSeconds))),
    uploadMiBps: Math.round(archiveMiB / median(results.map((r) => r.uploadSeconds))),
    ratio: Number(median(results.map((r) => r.ratio)).toFixed(2)),
    rounds: results,
  };
  await writeFile(join(ROOT, '.bench', 'gcs-upload.json'), JSON.stringify(summary, null, 2));
  console.log(
    `Cloud Storage upload: ${summary.uploadMiBps} MiB/s of a ${summary.archiveMiB} MiB archive against a raw read of ` +
      `${summary.readMiBps} MiB/s: ratio ${summary.ratio} (median of ${results.length}), ${summary.chunkMiB} MiB chunks`,
  );
}

if (values.sink) {
  const sink = await startSink();
  console.log(JSON.stringify({ url: sink.url }));
} else await main();
