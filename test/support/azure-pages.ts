import { expect } from 'vitest';

/** A page range as `getPageRanges` reports it (Azure's inclusive [Start, End] as offset and End − Start). */
export interface PageRange {
  offset: number;
  count?: number;
}

const PAGE = 512;
const ZERO = Buffer.alloc(PAGE);

/**
 * What a sparse page-blob upload must leave: every page of the image holding data lies in a written range,
 * and no written range holds 64 KiB of zero pages in a row (the zeros between data were not sent). Returns
 * the pages holding data and the bytes written, for a test's own bounds on them.
 */
export function expectSparsePages(
  image: Buffer,
  ranges: PageRange[],
): { dataPages: number; written: number } {
  const inRange = (at: number) =>
    ranges.some((r) => r.offset <= at && at + PAGE - 1 <= r.offset + (r.count ?? 0));
  let dataPages = 0;
  for (let at = 0; at < image.length; at += PAGE)
    if (!image.subarray(at, at + PAGE).equals(ZERO)) {
      dataPages++;
      expect(inRange(at), `data page at ${at}`).toBe(true);
    }
  for (const r of ranges) {
    let zeros = 0;
    for (let at = r.offset; at < r.offset + (r.count ?? 0); at += PAGE) {
      zeros = image.subarray(at, at + PAGE).equals(ZERO) ? zeros + 1 : 0;
      expect(zeros, `zero pages in a row at ${at}`).toBeLessThan(128);
    }
  }
  return { dataPages, written: ranges.reduce((n, r) => n + (r.count ?? 0) + 1, 0) };
}
