import { setTimeout as sleepTimer } from 'node:timers/promises';

/*
 * The bus's delays come from the project's one retry policy (shared/retry.ts: `POLICIES.busReconnect`,
 * `POLICIES.busPublish`, `delayFor`, `retry`); this file keeps only the wait that shutdown cuts short.
 */

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
