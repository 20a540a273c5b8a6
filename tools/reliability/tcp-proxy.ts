import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

/**
 * A TCP proxy a test or the soak puts between joystick and a server it depends on (PostgreSQL, RabbitMQ),
 * to break the network without touching the server, which other programs on the machine share:
 *  - `cut()` resets every open connection, as a server restart or a failover does;
 *  - `refuse(true)` resets new connections at once (the server is unreachable) until `refuse(false)`;
 *  - `hold(direction)` stops forwarding bytes one way (or both) without closing anything, as a stalled
 *    network or a hung server does; `release()` lets them through again, nothing lost.
 */
export interface TcpProxy {
  readonly port: number;
  readonly host: string;
  /** Connections accepted so far (refused ones included). */
  readonly accepted: number;
  /** Connections open now. */
  readonly open: number;
  cut(): void;
  refuse(on: boolean): void;
  hold(direction: 'upstream' | 'downstream' | 'both'): void;
  release(): void;
  close(): Promise<void>;
}

interface Pair {
  client: Socket;
  server: Socket;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let refusing = false;
  let holdUp = false;
  let holdDown = false;
  let accepted = 0;

  // Forward by hand rather than with pipe(): a held direction keeps its bytes in the socket buffers.
  const forward = (from: Socket, to: Socket, held: () => boolean) => {
    from.on('data', (chunk: Buffer) => {
      if (!to.write(chunk)) from.pause();
      if (held()) from.pause();
    });
    to.on('drain', () => {
      if (!held()) from.resume();
    });
  };

  const server: Server = createServer((client) => {
    accepted++;
    if (refusing) {
      client.resetAndDestroy();
      return;
    }
    const upstream = createConnection(target);
    const pair: Pair = { client, server: upstream };
    pairs.add(pair);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end);
    upstream.on('error', end);
    client.on('close', end);
    upstream.on('close', end);
    forward(client, upstream, () => holdUp);
    forward(upstream, client, () => holdDown);
    if (holdUp) client.pause();
    if (holdDown) upstream.pause();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    port,
    host: '127.0.0.1',
    get accepted() {
      return accepted;
    },
    get open() {
      return pairs.size;
    },
    cut() {
      for (const p of [...pairs]) {
        p.client.resetAndDestroy();
        p.server.destroy();
      }
      pairs.clear();
    },
    refuse(on) {
      refusing = on;
    },
    hold(direction) {
      holdUp = direction === 'upstream' || direction === 'both';
      holdDown = direction === 'downstream' || direction === 'both';
      for (const p of pairs) {
        if (holdUp) p.client.pause();
        if (holdDown) p.server.pause();
      }
    },
    release() {
      holdUp = false;
      holdDown = false;
      for (const p of pairs) {
        p.client.resume();
        p.server.resume();
      }
    },
    close() {
      for (const p of [...pairs]) {
        p.client.destroy();
        p.server.destroy();
      }
      pairs.clear();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
