import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FaultEngine } from './faults.js';
import type { CallRecord } from './types.js';
import { readAll } from './upstream.js';

/** What every emulator exposes to its control API. */
export interface ControlTarget {
  readonly faults: FaultEngine;
  calls(): CallRecord[];
  clearCalls(): void;
  reset(): Promise<void>;
}

/** A control answer: HTTP status and a JSON value. */
export type ControlAnswer = [status: number, value: unknown];

/**
 * An emulator's own control routes, beside the common ones. `route` is `METHOD resource` or
 * `METHOD resource/:id`; `undefined` means "not mine" (404).
 */
export type ExtraRoutes = (
  route: string,
  id: string | undefined,
  input: unknown,
) => ControlAnswer | undefined | Promise<ControlAnswer | undefined>;

/**
 * An emulator's HTTP control API, under /__emulator/ on one of its own ports, so any process that knows the
 * endpoint can drive faults and read the call log (see client.ts). Common to every emulator:
 *
 *   GET    /__emulator/health
 *   POST   /__emulator/faults           body: FaultRule           -> { id }
 *   GET    /__emulator/faults                                     -> FaultStat[]
 *   DELETE /__emulator/faults
 *   DELETE /__emulator/faults/{id}
 *   GET    /__emulator/calls                                      -> CallRecord[]
 *   DELETE /__emulator/calls
 *   POST   /__emulator/reset
 *
 * plus what `extra` answers (the AWS emulator's snapshots and pending times, Azure's replication).
 */
export async function handleControl(
  target: ControlTarget,
  req: IncomingMessage,
  res: ServerResponse,
  url: URL,
  extra?: ExtraRoutes,
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
    const route = `${method} ${resource}${id !== undefined ? '/:id' : ''}`;
    switch (route) {
      case 'GET health':
        return reply(200, { ok: true });
      case 'POST faults':
        return reply(200, { id: target.faults.add(input) });
      case 'GET faults':
        return reply(200, target.faults.stats());
      case 'DELETE faults':
        target.faults.clear();
        return reply(200, { ok: true });
      case 'DELETE faults/:id':
        return reply(200, { removed: target.faults.remove(id!) });
      case 'GET calls':
        return reply(200, target.calls());
      case 'DELETE calls':
        target.clearCalls();
        return reply(200, { ok: true });
      case 'POST reset':
        await target.reset();
        return reply(200, { ok: true });
    }
    const answer = await extra?.(route, id, input);
    if (answer) return reply(...answer);
    return reply(404, { error: `no control route ${method} ${url.pathname}` });
  } catch (e) {
    return reply(400, { error: e instanceof Error ? e.message : String(e) });
  }
}
