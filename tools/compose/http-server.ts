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
  /** Send the body at this many bytes per second (a slow or hostile host); headers go at once. */
  bytesPerSecond?: number;
  /** Answer 302 with this Location (a redirect to another host or scheme). */
  redirectTo?: string;
  /**
   * Only for requests read to the end of the file (no Range, or an open `bytes=N-` resuming one): an image's
   * body, not the bounded reads of its xz index.
   */
  streamOnly?: boolean;
  /** How many times it fires (default once; Infinity for every request). */
  times?: number;
}

export interface FileServer {
  url: string;
  server: Server;
  faults: FileFault[];
  /** Requests seen: method, path, Range header and when it arrived (epoch milliseconds). */
  requests: { method: string; path: string; range?: string; at: number }[];
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
      requests.push({ method: req.method ?? 'GET', path, range: req.headers.range, at: Date.now() });
      const fault = faults.find(
        (f) =>
          path.endsWith(f.pathSuffix) &&
          (f.times ?? 1) > 0 &&
          !(f.streamOnly && req.headers.range && !/^bytes=\d+-$/.test(req.headers.range)),
      );
      if (fault?.status) {
        fault.times = (fault.times ?? 1) - 1;
        res.writeHead(fault.status).end();
        return;
      }
      if (fault?.redirectTo) {
        fault.times = (fault.times ?? 1) - 1;
        res.writeHead(302, { location: fault.redirectTo }).end();
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
      if (fault?.bytesPerSecond !== undefined) {
        fault.times = (fault.times ?? 1) - 1;
        const { readFile } = await import('node:fs/promises');
        const body = (await readFile(file)).subarray(start, end + 1);
        // Ten drips a second, at least a byte each: the client sees a live but crawling connection.
        const step = Math.max(1, Math.round(fault.bytesPerSecond / 10));
        const everyMs = (1000 * step) / fault.bytesPerSecond;
        let sent = 0;
        const drip = setInterval(() => {
          if (res.destroyed || sent >= body.length) {
            clearInterval(drip);
            if (!res.destroyed) res.end();
            return;
          }
          res.write(body.subarray(sent, sent + step));
          sent += step;
        }, everyMs);
        res.on('close', () => clearInterval(drip));
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
