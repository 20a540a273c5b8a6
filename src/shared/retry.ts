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
  /** Attempts in all, the first included, where the policy bounds them itself (not set: the caller's). */
  attempts?: number;
  /** The most time all attempts may take together, where the policy bounds it. */
  timeoutMs?: number;
}

export const POLICIES = {
  /** An image or metadata fetch that failed or stalled (attempts: `[source] attempts`). */
  sourceFetch: { baseMs: 500, maxMs: 10_000 },
  /** A joystick loop step (composes, jobs, outbox) that threw. */
  controllerLoop: { baseMs: 500, maxMs: 30_000, floorMs: 500 },
  /** A compose whose metadata cannot be read yet (until `metadata_retry_minutes`). */
  composeMetadata: { baseMs: 5_000, maxMs: 300_000, floorMs: 1_000 },
  /** A compose message the database cannot record: the pause before it is nacked (the broker redelivers). */
  composeRequeue: { baseMs: 2_000, maxMs: 2_000, jitter: 0 },
  /** A job that failed, before its next attempt (up to `max_job_attempts`). */
  job: { baseMs: 10_000, maxMs: 600_000, floorMs: 5_000 },
  /** Writing a job's outcome while the database is unavailable (for as long as it takes). */
  databaseWrite: { baseMs: 500, maxMs: 15_000, floorMs: 500 },
  /**
   * A SQLite statement while another process holds the lock: short sleeps (the process stays responsive),
   * for up to 10 s per statement (`openSqlite`'s `busyWaitMs`).
   */
  sqliteBusy: { baseMs: 25, maxMs: 250, jitter: 0.5 },
  /** Reaching the broker or the database when joystick starts (for as long as it takes). */
  brokerStart: { baseMs: 1_000, maxMs: 60_000, floorMs: 1_000 },
  databaseStart: { baseMs: 1_000, maxMs: 30_000, floorMs: 1_000 },
  /** The bus connection and consumer setup after a loss. */
  busReconnect: { baseMs: 500, maxMs: 30_000, factor: 2, jitter: 0.5 },
  /** A publish awaiting its confirm, retried within its deadline. */
  busPublish: { baseMs: 200, maxMs: 5_000, factor: 2, jitter: 0.5, attempts: 8, timeoutMs: 30_000 },
} as const satisfies Record<string, Backoff>;

/** The delay before retry number `attempt` (1-based) under a policy. Pure given `random`. */
export function delayFor(attempt: number, policy: Backoff, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxMs, policy.baseMs * (policy.factor ?? 2) ** Math.max(0, attempt - 1));
  const jitter = Math.min(1, Math.max(0, policy.jitter ?? 1));
  return Math.floor(ceiling * (1 - jitter) + ceiling * jitter * random()) + (policy.floorMs ?? 0);
}

export interface RetryOptions {
  /** Attempts in all, the first included; `Infinity` retries until success, a non-retryable error or abort. */
  attempts: number;
  /** The delays: one of `POLICIES`, or a config's numbers. */
  policy?: Backoff;
  /** Shorthand for `policy: { baseMs, maxMs }` (full jitter), for delays that come from a config file. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Whether an error is worth another attempt; anything else fails at once. Default: every error. */
  retryable?: (err: unknown) => boolean;
  /** Stops the waiting: the wait ends at once and `signal.reason` (else the last error) is thrown. */
  signal?: AbortSignal;
  /** Epoch ms after which no attempt starts: a wait is cut to end there, and a failure after it is final. */
  deadline?: number;
  /** Before each wait: the failure, the attempt that failed (1-based) and the delay; for a WARN line. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
  /** For tests: the jitter's source. */
  random?: () => number;
}

function policyOf(opts: RetryOptions): Backoff {
  if (opts.policy) return opts.policy;
  if (opts.baseDelayMs === undefined || opts.maxDelayMs === undefined)
    throw new Error('retry() needs a policy or baseDelayMs and maxDelayMs');
  return { baseMs: opts.baseDelayMs, maxMs: opts.maxDelayMs };
}

/**
 * After attempt number `attempt` failed with `err`: throw `err` when that was the last attempt, the error
 * is not retryable, the deadline passed or the signal aborted; otherwise report the retry and wait. For
 * loops that cannot hand their body to `retry()` (a generator that yields between attempts, a resumed
 * download whose count starts again after progress); `retry()` is this in a loop.
 */
export async function waitToRetry(err: unknown, attempt: number, opts: RetryOptions): Promise<void> {
  const now = Date.now();
  if (
    attempt >= opts.attempts ||
    !(opts.retryable?.(err) ?? true) ||
    opts.signal?.aborted ||
    (opts.deadline !== undefined && now >= opts.deadline)
  )
    throw err;
  let delay = delayFor(attempt, policyOf(opts), opts.random);
  if (opts.deadline !== undefined) delay = Math.min(delay, Math.max(0, opts.deadline - now));
  opts.onRetry?.(err, attempt, delay);
  try {
    await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : undefined);
  } catch (aborted) {
    if (!opts.signal?.aborted) throw aborted;
    throw opts.signal.reason instanceof Error ? opts.signal.reason : err;
  }
}

/** Run `fn` until it succeeds, a failure is not retryable, the attempts or the deadline run out, or abort. */
export async function retry<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      await waitToRetry(err, attempt, opts);
    }
  }
}
