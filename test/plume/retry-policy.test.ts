import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { POLICIES, delayFor, retry, waitToRetry } from '../../src/shared/retry.js';
import { REPO } from '../support/world.js';

/** Issue 13, item 12: one backoff for the project, its numbers in one table, one retry function. */
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
    // pika's pacing (the bus's first connection): the same delay every time.
    expect([1, 2, 5].map((a) => delayFor(a, { baseMs: 200, maxMs: 200, factor: 1, jitter: 0 }))).toEqual([
      200, 200, 200,
    ]);
  });
});

const fast = { baseMs: 1, maxMs: 4 };
class Transient extends Error {}

describe('retry()', () => {
  it('tries up to its attempts, reporting each retry with its attempt and delay, then throws the last error', async () => {
    const events: [string, number, number][] = [];
    let calls = 0;
    const err = await retry(
      async (attempt) => {
        calls++;
        throw new Transient(`failure ${attempt}`);
      },
      {
        attempts: 3,
        policy: fast,
        random: () => 0.999999,
        onRetry: (e, attempt, delay) => events.push([(e as Error).message, attempt, delay]),
      },
    ).catch((e: unknown) => e);
    expect(calls).toBe(3);
    expect((err as Error).message).toBe('failure 3');
    expect(events).toEqual([
      ['failure 1', 1, 0],
      ['failure 2', 2, 1],
    ]);
  });

  it('returns the first success', async () => {
    let calls = 0;
    const value = await retry(
      async () => {
        if (++calls < 3) throw new Transient('not yet');
        return 'done';
      },
      { attempts: 5, policy: fast },
    );
    expect([value, calls]).toEqual(['done', 3]);
  });

  it('a failure that is not retryable is thrown at once', async () => {
    let calls = 0;
    const retried: number[] = [];
    const err = await retry(
      async () => {
        calls++;
        throw calls === 1 ? new Transient('blip') : new Error('access denied');
      },
      {
        attempts: 10,
        policy: fast,
        retryable: (e) => e instanceof Transient,
        onRetry: (_e, a) => retried.push(a),
      },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('access denied');
    expect(calls).toBe(2);
    expect(retried).toEqual([1]);
  });

  it('an abort ends the wait at once and throws the reason; an aborted signal stops before waiting', async () => {
    const stop = new AbortController();
    const t0 = Date.now();
    let calls = 0;
    setTimeout(() => stop.abort(new Error('stopping')), 50);
    const err = await retry(
      async () => {
        calls++;
        throw new Transient('down');
      },
      { attempts: Infinity, policy: { baseMs: 60_000, maxMs: 60_000, jitter: 0 }, signal: stop.signal },
    ).catch((e: unknown) => e);
    expect((err as Error).message).toBe('stopping');
    expect(calls).toBe(1);
    expect(Date.now() - t0).toBeLessThan(5_000);
    // Already aborted: the failure itself is thrown, no wait.
    const again = await waitToRetry(new Transient('down'), 1, {
      attempts: 5,
      policy: fast,
      signal: stop.signal,
    }).catch((e: unknown) => e);
    expect((again as Error).message).toBe('down');
  });

  it('a deadline cuts the last wait short and makes the failure after it final', async () => {
    const t0 = Date.now();
    let calls = 0;
    const delays: number[] = [];
    await retry(
      async () => {
        calls++;
        throw new Transient('busy');
      },
      {
        attempts: Infinity,
        policy: { baseMs: 150, maxMs: 150, jitter: 0 },
        deadline: t0 + 400,
        onRetry: (_e, _a, d) => delays.push(d),
      },
    ).catch(() => undefined);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(395);
    expect(took).toBeLessThan(1_000);
    // 150, 150, then what was left of the 400 ms.
    expect(calls).toBe(4);
    expect(delays.slice(0, 2)).toEqual([150, 150]);
    expect(delays[2]).toBeLessThanOrEqual(100);
  });
});

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe('hand-written backoff', () => {
  it('appears nowhere in the source but src/shared/retry.ts', () => {
    const patterns: [string, RegExp][] = [
      ['random jitter', /Math\.random\(/],
      ['exponential growth', /\b2 \*\* (?![\d(]|7 \* i)/],
      [
        'growth by attempts',
        /\b(attempt|attempts|failures|retries|tries)\b *\*(?!\*)|[^*/]\* *\b(attempt|failures|retries|tries)\b/,
      ],
      ['growth by a factor', /\b(delay|delayMs|wait|backoff|pause)\b *\* *(1\.\d+|[2-9])\b(?![\d_.])/],
      ['a retry loop', /for \(let (attempt|tries|retry)\b/],
    ];
    // The one exception, with its reason: the image reader's worker runs from a string (it cannot import),
    // and its idle naps double while the decompressor is silent; that is a poll, not a retry.
    const allowed = ['src/shared/retry.ts', 'src/plume/source/block-reader.ts'];
    const found: string[] = [];
    for (const f of files(join(REPO, 'src'))) {
      const path = relative(REPO, f);
      if (allowed.includes(path)) continue;
      readFileSync(f, 'utf8')
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*(\*|\/\/|\/\*)/.test(line)) return;
          for (const [what, re] of patterns)
            if (re.test(line)) found.push(`${path}:${i + 1}: ${what}: ${line.trim()}`);
        });
    }
    expect(found).toEqual([]);
  });

  it('the scan catches what it is meant to catch', () => {
    const samples = [
      'await sleep(Math.min(25 * attempt, 250));',
      'const d = base * 2 ** attempt;',
      'const d = Math.random() * cap;',
      'for (let attempt = 1; ; attempt++) {',
      'delay = Math.min(max, delay * 2);',
    ];
    const re = [
      /Math\.random\(/,
      /\b2 \*\* (?![\d(]|7 \* i)/,
      /\b(attempt|attempts|failures|retries|tries)\b *\*(?!\*)|[^*/]\* *\b(attempt|failures|retries|tries)\b/,
      /\b(delay|delayMs|wait|backoff|pause)\b *\* *(1\.\d+|[2-9])\b(?![\d_.])/,
      /for \(let (attempt|tries|retry)\b/,
    ];
    for (const s of samples)
      expect(
        re.some((r) => r.test(s)),
        s,
      ).toBe(true);
  });
});
