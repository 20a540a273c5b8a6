import { describe, expect, it } from 'vitest';
import { backoffDelay as busBackoff, DEFAULT_BACKOFF } from '../../src/joystick/bus/backoff.js';
import { POLICIES, backoffDelay, delayFor } from '../../src/shared/retry.js';

/** Issue 13, item 12: one backoff for the project, its numbers in one table. */
describe('the retry policy', () => {
  it('doubles from the base up to the cap, with full jitter by default', () => {
    const p = { baseMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 9].map((a) => delayFor(a, p, () => 0.999999))).toEqual([
      99, 199, 399, 799, 999, 999,
    ]);
    expect(delayFor(3, p, () => 0)).toBe(0);
  });

  it('a jitter share keeps the rest of the delay, and a floor is added to every delay', () => {
    expect(delayFor(1, { baseMs: 1_000, maxMs: 10_000, jitter: 0.5 }, () => 0)).toBe(500);
    expect(delayFor(1, POLICIES.controllerLoop, () => 0)).toBe(500);
    expect(delayFor(30, POLICIES.job, () => 0.999999)).toBe(600_000 - 1 + 5_000);
  });

  it('the old entry points are the same function', () => {
    expect(backoffDelay(4, 200, 20_000, () => 0.5)).toBe(
      delayFor(4, { baseMs: 200, maxMs: 20_000 }, () => 0.5),
    );
    expect(busBackoff(3, DEFAULT_BACKOFF, () => 0.25)).toBe(delayFor(3, POLICIES.busReconnect, () => 0.25));
  });
});
