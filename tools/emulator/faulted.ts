import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { CallLog } from './calls.js';
import type { CallKey, FaultDecision, FaultEngine } from './faults.js';
import { isStream, sendReply, type Reply } from './replies.js';
import type { FaultKind, FaultRule } from './types.js';
import { readAll } from './upstream.js';

export type TerminalRule = NonNullable<FaultDecision['terminal']>;

/** One request at an emulator front, classified, about to meet the fault rules. */
export interface FaultedRequest {
  engine: FaultEngine;
  log: CallLog;
  key: CallKey;
  req: IncomingMessage;
  res: ServerResponse;
  /** Epoch milliseconds when the request arrived (before any body was read). */
  at: number;
  /** The reply an error-producing rule (throttle, server-error, access-denied, error) answers with. */
  faultReply(rule: TerminalRule): Reply;
  /** Carry the call out; `imageFailure` is set when an `image-failed` rule fired for it. */
  dispatch(imageFailure?: FaultRule): Promise<Reply>;
  /** The reply when carrying the call out threw: the service's own internal error. */
  internalError(e: unknown): Reply;
}

/**
 * What every emulator front does with a classified call, whatever the cloud: ask the fault engine, wait
 * out any latency, then drop the connection, answer the injected error, or carry the call out (dropping
 * the connection after it for `drop-after`), and log the outcome.
 */
export async function serveFaulted(r: FaultedRequest): Promise<void> {
  const done = (status: number, fault?: FaultKind) =>
    r.log.record({ ...r.key, status, at: r.at, durationMs: Date.now() - r.at, ...(fault ? { fault } : {}) });

  const decision = r.engine.decide(r.key);
  if (decision.delayMs > 0) await sleep(decision.delayMs);
  const fault = decision.terminal;

  if (fault?.kind === 'drop') {
    r.req.socket.destroy();
    return done(0, 'drop');
  }

  let reply: Reply;
  if (fault && fault.kind !== 'drop-after') reply = r.faultReply(fault);
  else reply = await r.dispatch(decision.imageFailure).catch((e: unknown) => r.internalError(e));

  if (fault?.kind === 'drop-after') {
    // The work is done; the client just never hears about it.
    if (isStream(reply)) await readAll(reply.stream);
    r.req.socket.destroy();
    return done(reply.status, 'drop-after');
  }

  await sendReply(r.res, reply).catch(() => undefined);
  done(reply.status, fault?.kind ?? (decision.imageFailure ? 'image-failed' : undefined));
}
