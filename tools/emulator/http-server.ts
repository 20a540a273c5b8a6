import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

/** A certificate and its key, PEM, for a front that speaks HTTPS. */
export interface ServerTls {
  key: string;
  cert: string;
}

/**
 * The listening socket of an emulator front, on 127.0.0.1 only: HTTP, or HTTPS when given a certificate.
 * A handler that throws answers 500 (or cuts a reply already started) instead of taking the process down.
 */
export class FrontServer {
  private readonly server: Server;

  constructor(
    readonly name: string,
    handler: Handler,
    tls?: ServerTls,
  ) {
    const listener = (req: IncomingMessage, res: ServerResponse) => {
      handler(req, res).catch((e: unknown) => {
        // A client that hung up mid-request (an SDK timeout, a test ending) is not the emulator's problem.
        if (!req.destroyed && !req.socket.destroyed) console.error(`[${name}] request failed:`, e);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    };
    this.server = tls
      ? createHttpsServer({ key: tls.key, cert: tls.cert }, listener)
      : createHttpServer(listener);
    // SDKs keep connections alive; a server closing an idle one just as the client reuses it would show up
    // as a spurious ECONNRESET retry, so idle connections are kept far longer than a test pause.
    this.server.keepAliveTimeout = 120_000;
    this.server.headersTimeout = 125_000;
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
  }
}
