import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallLog } from '../calls.js';
import { serveFaulted } from '../faulted.js';
import type { FaultEngine } from '../faults.js';
import { FrontServer } from '../http-server.js';
import { faultErrorFrom } from '../replies.js';
import type { HttpUpstream } from '../upstream.js';
import { blobOperation } from './blob-classify.js';
import { AZURE_FAULT_ERRORS, blobErrorReply } from './errors.js';
import { putPage } from './page-md5.js';

export interface BlobProxyOptions {
  engine: FaultEngine;
  log: CallLog;
  /** Azurite. */
  upstream: HttpUpstream;
  /** The storage account's region, what fault rules select blob calls by. */
  location: string;
  /** Requests under /__emulator/: the emulator's control API. */
  control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

/**
 * The blob endpoint clients use: every request is named after its Blob REST operation, may meet a fault,
 * and is otherwise passed to Azurite untouched, body streamed both ways (Put Page with a Content-MD5 is
 * checked first: page-md5.ts). Shared Key signatures cover the
 * method, headers and path, never the host, so a request signed for this port is valid at Azurite's.
 */
export class BlobProxy {
  private readonly server: FrontServer;

  constructor(private readonly opts: BlobProxyOptions) {
    this.server = new FrontServer('azure-blob', (req, res) => this.onRequest(req, res));
  }

  listen(port = 0): Promise<number> {
    return this.server.listen(port);
  }

  async close(): Promise<void> {
    await this.server.close();
    this.opts.upstream.close();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname.startsWith('/__emulator/')) return this.opts.control(req, res, url);

    const operation = blobOperation(method, url, req.headers);
    await serveFaulted({
      engine: this.opts.engine,
      log: this.opts.log,
      key: { service: 'blob', operation, region: this.opts.location },
      req,
      res,
      at,
      faultReply: (rule) => blobErrorReply(faultErrorFrom(AZURE_FAULT_ERRORS, 'blob', rule), method),
      dispatch: () =>
        operation === 'PutPage'
          ? putPage(req, this.opts.upstream)
          : this.opts.upstream.stream({ method, path: req.url ?? '/', headers: req.headers, body: req }),
      internalError: (e) => {
        console.error(`[azure-blob] ${operation} failed:`, e);
        return blobErrorReply(
          {
            code: 'InternalError',
            message: `emulator: ${e instanceof Error ? e.message : String(e)}`,
            status: 500,
          },
          method,
        );
      },
    });
  }
}
