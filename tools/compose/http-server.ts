import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize } from 'node:path';

/** Faults a test can ask the file server for, per path suffix. */
export interface FileFault {
  /** Applies to request paths ending with this. */
  pathSuffix: string;
  /** Close the connection after sending this many body bytes (the client must resume). */
  cutAfterBytes?: number;
  /** Answer this HTTP status instead. */
  status?: number;
  /** How many times it fires (default once). */
  times?: number;
}

export interface FileServer {
  url: string;
  server: Server;
  faults: FileFault[];
  /** Requests seen: method, path and Range header. */
  requests: { method: string; path: string; range?: string }[];
  close(): Promise<void>;
}

/**
 * A static file server with HEAD, byte ranges, ETag and If-Range, like the compose hosts plume reads from
 * (python's http.server has no ranges). Used by tests, the demo and the benchmarks.
 */
export async function serveDirectory(root: string, port = 0): Promise<FileServer> {
  const faults: FileFault[] = [];
  const requests: FileServer['requests'] = [];
  const server = createServer((req, res) => {
    void (async () => {
      const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
      requests.push({ method: req.method ?? 'GET', path, range: req.headers.range });
      const fault = faults.find((f) => path.endsWith(f.pathSuffix) && (f.times ?? 1) > 0);
      if (fault?.status) {
        fault.times = (fault.times ?? 1) - 1;
        res.writeHead(fault.status).end();
        return;
      }
      const file = normalize(join(root, path));
      if (!file.startsWith(normalize(root))) {
        res.writeHead(403).end();
        return;
      }
      let info;
      try {
        info = await stat(file);
        if (!info.isFile()) throw new Error('not a file');
      } catch {
        res.writeHead(404).end();
        return;
      }
      const etag = `"${info.size.toString(16)}-${Math.floor(info.mtimeMs).toString(16)}"`;
      let start = 0;
      let end = info.size - 1;
      let status = 200;
      const range = req.headers.range;
      const ifRange = req.headers['if-range'];
      const m = range ? /^bytes=(\d*)-(\d*)$/.exec(range) : null;
      if (m && (!ifRange || ifRange === etag)) {
        if (m[1] === '') {
          start = Math.max(0, info.size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
        }
        if (start > end || start >= info.size) {
          res.writeHead(416, { 'content-range': `bytes */${info.size}` }).end();
          return;
        }
        status = 206;
      }
      const headers: Record<string, string | number> = {
        'content-length': end - start + 1,
        'accept-ranges': 'bytes',
        etag,
        'last-modified': new Date(info.mtimeMs).toUTCString(),
        'content-type': file.endsWith('.json') ? 'application/json' : 'application/octet-stream',
      };
      if (status === 206) headers['content-range'] = `bytes ${start}-${end}/${info.size}`;
      res.writeHead(status, headers);
      if (req.method === 'HEAD') {
        res.end();
        return;
      }
      const stream = createReadStream(file, { start, end, highWaterMark: 256 * 1024 });
      if (fault?.cutAfterBytes !== undefined) {
        fault.times = (fault.times ?? 1) - 1;
        let sent = 0;
        stream.on('data', (chunk) => {
          const c = chunk as Buffer;
          if (sent + c.length > fault.cutAfterBytes!) {
            res.write(c.subarray(0, fault.cutAfterBytes! - sent));
            stream.destroy();
            res.socket?.destroy();
            return;
          }
          sent += c.length;
          if (!res.write(c)) {
            stream.pause();
            res.once('drain', () => stream.resume());
          }
        });
        stream.on('end', () => res.end());
        return;
      }
      stream.pipe(res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const { port: actual } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${actual}`,
    server,
    faults,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
