import type { IncomingMessage, ServerResponse } from 'node:http';
import type { EmulatorProxy } from './proxy.js';
import { readAll } from './upstream.js';

/**
 * The emulator's HTTP control API, under /__emulator/ on the proxy itself, so any process that knows the
 * endpoint can drive faults and read the call log (see client.ts).
 *
 *   GET    /__emulator/health
 *   POST   /__emulator/faults           body: FaultRule           -> { id }
 *   GET    /__emulator/faults                                     -> FaultStat[]
 *   DELETE /__emulator/faults
 *   DELETE /__emulator/faults/{id}
 *   GET    /__emulator/calls                                      -> CallRecord[]
 *   DELETE /__emulator/calls
 *   POST   /__emulator/reset
 *   GET    /__emulator/snapshots/{id}                             -> SnapshotStats (404 if unknown)
 *   POST   /__emulator/pending          body: { ms, region? }
 */
export async function handleControl(
  proxy: EmulatorProxy,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
): Promise<void> {
  const reply = (status: number, value: unknown) => {
    const body = JSON.stringify(value ?? null);
    res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
    res.end(body);
  };
  const path = url.pathname.slice('/__emulator/'.length).replace(/\/+$/, '');
  const [resource, id] = path.split('/').map(decodeURIComponent);
  const method = req.method ?? 'GET';
  try {
    const raw = await readAll(req);
    const input: unknown = raw.length ? JSON.parse(raw.toString('utf8')) : undefined;
    switch (`${method} ${resource}${id !== undefined ? '/:id' : ''}`) {
      case 'GET health':
        return reply(200, { ok: true });
      case 'POST faults':
        return reply(200, { id: proxy.faults.add(input) });
      case 'GET faults':
        return reply(200, proxy.faults.stats());
      case 'DELETE faults':
        proxy.faults.clear();
        return reply(200, { ok: true });
      case 'DELETE faults/:id':
        return reply(200, { removed: proxy.faults.remove(id!) });
      case 'GET calls':
        return reply(200, proxy.calls());
      case 'DELETE calls':
        proxy.clearCalls();
        return reply(200, { ok: true });
      case 'POST reset':
        await proxy.reset();
        return reply(200, { ok: true });
      case 'GET snapshots/:id': {
        const stats = proxy.ebs.stats(id!);
        return stats ? reply(200, stats) : reply(404, { error: `unknown snapshot ${id}` });
      }
      case 'POST pending': {
        const { ms, region } = (input ?? {}) as { ms?: unknown; region?: unknown };
        if (typeof ms !== 'number')
          return reply(400, { error: 'pending needs { ms: number, region?: string }' });
        proxy.timing.set(ms, typeof region === 'string' ? region : undefined);
        return reply(200, { ok: true });
      }
      default:
        return reply(404, { error: `no control route ${method} ${url.pathname}` });
    }
  } catch (e) {
    return reply(400, { error: e instanceof Error ? e.message : String(e) });
  }
}
