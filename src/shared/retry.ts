import { setTimeout as sleep } from 'node:timers/promises';

/**
 * The project's one retry policy: exponential backoff, capped, with jitter, and every tuning number of
 * every retry loop in one table (`POLICIES`) so they can be read, compared and changed in one place. AWS
 * calls take theirs from `[aws]` (max_attempts, throttle_attempts, retry_base_ms, throttle_base_ms,
 * retry_max_ms) and downloads their attempts from `[source] attempts`; the delays below are the rest.
 */
export interface Backoff {
  /** The delay ceiling of the first retry; it doubles (`factor`) per attempt up to `maxMs`. */
  baseMs: number;
  maxMs: number;
  factor?: number;
  /**
   * Share of the delay that is random (0..1). 1 is full jitter (AWS's recommendation: spreads the retries
   * of parallel callers the most); 0.5 keeps at least half the delay (a reconnecting replica should not
   * hammer a broker that just came back).
   */
  jitter?: number;
  /** Added to every delay: a floor, so a loop that failed never spins. */
  floorMs?: number;
}

export const POLICIES = {
  /** An image or metadata fetch that failed or stalled (attempts: `[source] attempts`). */
  sourceFetch: { baseMs: 500, maxMs: 10_000 },
  /** A joystick loop step (composes, jobs, outbox) that threw. */
  controllerLoop: { baseMs: 500, maxMs: 30_000, floorMs: 500 },
  /** A compose whose metadata cannot be read yet (until `metadata_retry_minutes`). */
  composeMetadata: { baseMs: 5_000, maxMs: 300_000, floorMs: 1_000 },
  /** A job that failed, before its next attempt (up to `max_job_attempts`). */
  job: { baseMs: 10_000, maxMs: 600_000, floorMs: 5_000 },
  /** Writing a job's outcome while the database is unavailable (for as long as it takes). */
  databaseWrite: { baseMs: 500, maxMs: 15_000, floorMs: 500 },
  /** Reaching the broker or the database when joystick starts (for as long as it takes). */
  brokerStart: { baseMs: 1_000, maxMs: 60_000, floorMs: 1_000 },
  databaseStart: { baseMs: 1_000, maxMs: 30_000, floorMs: 1_000 },
  /** The bus connection and consumer setup after a loss. */
  busReconnect: { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 },
  /** A publish awaiting its confirm, retried within its deadline. */
  busPublish: { baseMs: 200, maxMs: 5_000, factor: 2, jitter: 0.5 },
} as const satisfies Record<string, Backoff>;

/** The delay before retry number `attempt` (1-based) under a policy. Pure given `random`. */
export function delayFor(attempt: number, policy: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * (policy.factor ?? 2) ** Math.max(0, attempt - 1));
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? 1));
  return Math.floor(ceiling * (1 - jitter) + ceiling * jitter * random()) + (policy.floorMs ?? 0);
}

/** Full-jitter backoff from a base and a cap: `delayFor` with those numbers (kept for existing callers). */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random = Math.random): number {
  return delayFor(attempt, { baseMs, maxMs }, random);
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** Whether an error is worth another attempt; anything else fails at once. */
  retryable: (err: unknown) => boolean;
  signal?: AbortSignal;
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Run `fn` until it succeeds, a failure is not retryable, or the attempts run out. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= opts.attempts || !opts.retryable(err) || opts.signal?.aborted) throw err;
      const delay = backoffDelay(attempt, opts.baseDelayMs, opts.maxDelayMs);
      opts.onRetry?.(err, attempt, delay);
      await sleep(delay, undefined, { signal: opts.signal });
    }
  }
}
