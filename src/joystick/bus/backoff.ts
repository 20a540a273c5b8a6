import { setTimeout as sleepTimer } from 'node:timers/promises';
import { POLICIES, delayFor } from '../../shared/retry.js';

export interface BackoffOptions {
  /** The delay before the first retry. */
  initialDelayMs: number;
  /** No delay is ever longer than this. */
  maxDelayMs: number;
  /** Growth per attempt; 2 doubles the delay each time. */
  factor?: number;
  /** Share of the delay that is random (0..1): spreads replicas that lost the broker at the same moment. */
  jitter?: number;
}

/** The bus's reconnection backoff: `POLICIES.busReconnect` in the project's one retry table. */
export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: POLICIES.busReconnect.baseMs,
  maxDelayMs: POLICIES.busReconnect.maxMs,
  factor: POLICIES.busReconnect.factor,
  jitter: POLICIES.busReconnect.jitter,
};

/** The delay before retry number `attempt` (1-based): the project's one backoff (shared/retry.ts). */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  return delayFor(
    attempt,
    {
      baseMs: opts.initialDelayMs,
      maxMs: opts.maxDelayMs,
      factor: opts.factor ?? 2,
      jitter: opts.jitter ?? 0.5,
    },
    random,
  );
}

/**
 * Wait, but give up early (without throwing) when `signal` aborts, so shutdown is never held up by a timer.
 * The timer keeps the process alive on purpose: a consumer waiting to reconnect is still working.
 */
export async function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  try {
    await sleepTimer(ms, undefined, { signal });
  } catch (err) {
    if (!(signal?.aborted ?? false)) throw err;
  }
}
