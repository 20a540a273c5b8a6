import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { errorMessage } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import type { Metrics } from '../metrics.js';
import type { JobStore } from '../store/job-store.js';
import { LifecycleStore } from '../store/lifecycle-store.js';
import { statusHtml, statusModel } from './status.js';

export interface HttpDeps {
  store: JobStore;
  metrics: Metrics;
  log: Logger;
  /** Whether the broker connection is up (readiness). */
  busConnected: () => boolean;
  /** `compose_stall_seconds`: a compose read for longer shows as stalled on the status page. */
  stallSeconds?: number;
}

export interface HttpServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** `host:port`, `:port` or a port number. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:(.*):)?(\d+)$/.exec(listen.trim());
  if (!m) throw new Error(`http_listen must be host:port, got ${JSON.stringify(listen)}`);
  return { host: m[1] || '0.0.0.0', port: Number(m[2]) };
}

/** Health, readiness, metrics and the status page. Read-only: nothing here changes state. */
export async function startHttp(listen: string, deps: HttpDeps): Promise<HttpServer> {
  const { host, port } = parseListen(listen);
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    const send = (status: number, type: string, body: string) => {
      res.writeHead(status, {
        'content-type': type,
        'cache-control': 'no-store',
        'x-content-type-options': 'nosniff',
      });
      res.end(req.method === 'HEAD' ? undefined : body);
    };
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed\n');
    void (async () => {
      try {
        switch (path) {
          case '/healthz':
            return send(200, 'text/plain', 'ok\n');
          case '/readyz': {
            const problems: string[] = [];
            if (!deps.busConnected()) problems.push('not connected to the message broker');
            await deps.store.ping().catch((err: unknown) => problems.push(`database: ${errorMessage(err)}`));
            return problems.length
              ? send(503, 'text/plain', `${problems.join('\n')}\n`)
              : send(200, 'text/plain', 'ready\n');
          }
          case '/metrics': {
            const counts = await deps.store.counts();
            for (const state of ['queued', 'running', 'complete', 'partial', 'failed'])
              deps.metrics.jobs.set({ state }, counts.jobs[state] ?? 0);
            deps.metrics.unsent.set(counts.unsent);
            // From the database, not this process's memory: a restart must not hide a silent channel.
            const watch = await deps.store.watch();
            for (const [channel, byProvider] of Object.entries(watch.lastPublish))
              for (const [provider, ms] of Object.entries(byProvider))
                deps.metrics.lastPublish.set({ channel, provider }, ms / 1000);
            for (const [state, ms] of [
              ['running', watch.oldestRunning],
              ['due', watch.oldestDue],
            ] as const)
              if (ms === undefined) deps.metrics.jobOldest.remove({ state });
              else deps.metrics.jobOldest.set({ state }, ms / 1000);
            // Summed from every stream's last prune in the database, whichever replica pruned it.
            for (const p of await new LifecycleStore(deps.store).publicImages())
              deps.metrics.publicImages.set(
                { provider: p.provider, channel: p.channel, arch: p.arch },
                p.images,
              );
            deps.metrics.busConnected.set(deps.busConnected() ? 1 : 0);
            return send(200, deps.metrics.registry.contentType, await deps.metrics.registry.metrics());
          }
          case '/':
          case '/status':
            return send(
              200,
              'text/html; charset=utf-8',
              statusHtml(await statusModel(deps.store, 30, { stallSeconds: deps.stallSeconds })),
            );
          case '/status.json':
            return send(
              200,
              'application/json',
              JSON.stringify(await statusModel(deps.store, 30, { stallSeconds: deps.stallSeconds }), null, 2),
            );
          default:
            return send(404, 'text/plain', 'not found\n');
        }
      } catch (err) {
        deps.log.error({ path, err: errorMessage(err) }, 'http request failed');
        send(500, 'text/plain', 'internal error\n');
      }
    })();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address() as AddressInfo;
  return {
    server,
    url: `http://${addr.address.includes(':') ? `[${addr.address}]` : addr.address}:${addr.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
