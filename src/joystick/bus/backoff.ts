import { setTimeout as sleepTimer } from 'node:timers/promises';

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

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialDelayMs: 500,
  maxDelayMs: 30_000,
  factor: 2,
  jitter: 0.5,
};

/** The delay before retry number `attempt` (1-based): exponential, capped, the top `jitter` share random. */
export function backoffDelay(
  attempt: number,
  opts: BackoffOptions,
  random: () => number = Math.random,
): number {
  const factor = opts.factor ?? 2;
  const jitter = Math.min(1, Math.max(0, opts.jitter ?? 0.5));
  const base = Math.min(opts.maxDelayMs, opts.initialDelayMs * factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - jitter) + base * jitter * random());
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
