import PQueue from 'p-queue';

/**
 * Map over items with at most `limit` running at once, keeping every outcome: one region failing must not
 * stop the others, so failures come back as values and the caller decides what is fatal.
 */
export async function mapSettled<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<PromiseSettledResult<R>[]> {
  const queue = new PQueue({ concurrency: Math.max(1, limit) });
  return Promise.allSettled(items.map((item, i) => queue.add(() => fn(item, i))));
}

/** Map with a bound, failing on the first error (the rest are still awaited so nothing runs on unseen). */
export async function mapBounded<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T, index: number) => Promise<R>,
): Promise<R[]> {
  const settled = await mapSettled(items, limit, fn);
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((s) => (s as PromiseFulfilledResult<R>).value);
}
