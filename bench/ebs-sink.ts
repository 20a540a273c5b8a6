/**
 * A local endpoint that speaks the EBS direct API (StartSnapshot, PutSnapshotBlock, CompleteSnapshot) and
 * answers at once, so an upload into it measures plume's client, not a server. It checks what is cheap to
 * check (each block's declared length, the changed-block count at completion) and keeps counts; it does not
 * hash blocks, which would take the CPU the client is being measured with. The emulator checks checksums.
 *
 * Run on its own: `node --import tsx bench/ebs-sink.ts` prints `{"endpoint": ...}` and serves until killed.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SinkSnapshot {
  id: string;
  volumeGiB: number;
  blocks: number;
  bytes: number;
  completed: boolean;
  startedAt: number;
  completedAt?: number;
}

const BLOCK_SIZE = 512 * 1024;

export async function startEbsSink(port = 0): Promise<{ endpoint: string; server: Server }> {
  const snapshots = new Map<string, SinkSnapshot>();
  const json = (res: ServerResponse, status: number, body: unknown) => {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  };
  const fail = (res: ServerResponse, status: number, message: string) =>
    json(res, status, { __type: 'ValidationException', message });

  const handle = (req: IncomingMessage, res: ServerResponse, seg: string[], body: Buffer[], size: number) => {
    if (seg[0] === '__stats') return json(res, 200, [...snapshots.values()]);
    if (seg[0] !== 'snapshots') return fail(res, 404, `no route ${req.method} ${req.url}`);
    if (req.method === 'POST' && seg.length === 1) {
      const input = JSON.parse(Buffer.concat(body).toString('utf8') || '{}') as { VolumeSize?: number };
      const id = `snap-${randomUUID().replace(/-/g, '').slice(0, 17)}`;
      const snap = { id, volumeGiB: input.VolumeSize ?? 1, blocks: 0, bytes: 0, completed: false };
      snapshots.set(id, { ...snap, startedAt: Date.now() });
      return json(res, 201, {
        SnapshotId: id,
        BlockSize: BLOCK_SIZE,
        VolumeSize: snap.volumeGiB,
        Status: 'pending',
      });
    }
    const completion = seg[1] === 'completion';
    const snap = snapshots.get(seg[completion ? 2 : 1] ?? '');
    if (!snap) return json(res, 404, { __type: 'ResourceNotFoundException', message: 'unknown snapshot' });
    if (req.method === 'PUT' && seg.length === 4 && seg[2] === 'blocks') {
      const declared = Number(req.headers['x-amz-data-length']);
      if (declared !== size || size !== BLOCK_SIZE)
        return fail(res, 400, `block of ${size} bytes, declared ${declared}`);
      if (Number(seg[3]) >= (snap.volumeGiB * 2 ** 30) / BLOCK_SIZE)
        return fail(res, 400, 'index past the volume');
      snap.blocks++;
      snap.bytes += size;
      res.writeHead(201, {
        'x-amz-Checksum': String(req.headers['x-amz-checksum'] ?? ''),
        'x-amz-Checksum-Algorithm': 'SHA256',
        'content-length': 0,
      });
      return res.end();
    }
    if (req.method === 'POST' && completion) {
      const changed = Number(req.headers['x-amz-changedblockscount']);
      if (changed !== snap.blocks)
        return fail(res, 400, `${changed} changed blocks declared, ${snap.blocks} put`);
      snap.completed = true;
      snap.completedAt = Date.now();
      return json(res, 202, { Status: 'completed' });
    }
    fail(res, 404, `no route ${req.method} ${req.url}`);
  };

  const server = createServer((req, res) => {
    const seg = new URL(req.url ?? '/', 'http://sink').pathname
      .split('/')
      .filter(Boolean)
      .map(decodeURIComponent);
    // Block bodies are counted and dropped; only the small JSON bodies are kept.
    const keep = req.method !== 'PUT';
    const body: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (keep) body.push(chunk);
    });
    req.on('end', () => handle(req, res, seg, body, size));
  });
  // Many blocks in flight on kept-alive sockets: never let the server be the one that waits.
  server.keepAliveTimeout = 60_000;
  server.maxRequestsPerSocket = 0;
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: actual } = server.address() as AddressInfo;
  return { endpoint: `http://127.0.0.1:${actual}`, server };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { endpoint } = await startEbsSink();
  console.log(JSON.stringify({ endpoint }));
}
