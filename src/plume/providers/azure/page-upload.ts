import { createHash } from 'node:crypto';
import type { PageBlobClient } from '@azure/storage-blob';
import PQueue from 'p-queue';
import { PlumeError } from '../../../shared/errors.js';
import type { DiskImage, ReadSummary } from '../../source/image.js';
import type { ProviderContext } from '../types.js';
import { call, describeAzureError, isNotFound } from './clients.js';
import { checkVhdFooter, FOOTER_SIZE } from './vhd.js';

/** Blob metadata plume keeps on a staged VHD (Azure metadata names are C# identifiers). */
export const META = {
  release: 'plume_release',
  sha256: 'plume_source_sha256',
  /** Set only once every page is in, the source's checksum matched and the footer was checked. */
  complete: 'plume_complete',
} as const;

/** What a previous run left under the blob's name. */
export type Staged =
  | { state: 'absent' }
  | { state: 'complete'; bytes: number }
  /** Started by a run that stopped: the pages it wrote, as inclusive byte ranges in order. */
  | { state: 'partial'; bytes: number; ranges: { start: number; end: number }[] }
  /** Something else (another source, another size): it must go. */
  | { state: 'stale' };

export async function inspectStaged(blob: PageBlobClient, sha256: string): Promise<Staged> {
  let props;
  try {
    props = await blob.getProperties();
  } catch (err) {
    if (isNotFound(err)) return { state: 'absent' };
    throw describeAzureError(err, 'Blob.GetProperties');
  }
  const meta = props.metadata ?? {};
  const bytes = props.contentLength ?? 0;
  if (props.blobType !== 'PageBlob' || meta[META.sha256] !== sha256) return { state: 'stale' };
  if (meta[META.complete] === 'true') return { state: 'complete', bytes };
  const { pageRange = [] } = await call('Blob.GetPageRanges', () => blob.getPageRanges());
  // The SDK reports Azure's inclusive range [Start, End] as {offset: Start, count: End - Start}.
  const ranges = pageRange
    .map((r) => ({ start: r.offset, end: r.offset + (r.count ?? 0) }))
    .sort((a, b) => a.start - b.start);
  return { state: 'partial', bytes, ranges };
}

const PAGE = 512;
const ZERO_PAGE = Buffer.alloc(PAGE);

/**
 * The parts of a block worth a Put Page: runs of 512-byte pages holding data, split where at least `minGap`
 * bytes of all-zero pages lie between them (a smaller gap costs less sent as zeros than as another call).
 * `end` is exclusive; an all-zero block has none.
 */
export function dataRuns(data: Buffer, minGap: number): { start: number; end: number }[] {
  const runs: { start: number; end: number }[] = [];
  let run: { start: number; end: number } | undefined;
  for (let at = 0; at < data.length; at += PAGE) {
    const end = Math.min(at + PAGE, data.length);
    if (data.compare(ZERO_PAGE, 0, end - at, at, end) === 0) continue;
    if (run && at - run.end < minGap) run.end = end;
    else runs.push((run = { start: at, end }));
  }
  return runs;
}

export interface PageUploadOptions {
  /** Blob size: the whole VHD, footer included. */
  bytes: number;
  /** Bytes per Put Page (at most 4 MiB); all-zero blocks of this size are never sent. */
  pageBytes: number;
  concurrency: number;
  metadata: Record<string, string>;
  /** Pages a stopped run already wrote (Put Page is atomic: a range present was written whole). */
  written?: { start: number; end: number }[];
  /** Zero bytes within a block that split it into two Put Page calls (default 64 KiB). */
  minZeroGap?: number;
}

export interface PageUploadResult {
  summary: ReadSummary;
  bytesSent: number;
  pagesSent: number;
  /** Blocks a previous run had written, not sent again. */
  pagesResumed: number;
}

/**
 * Stream a fixed VHD into a page blob: the blob is created at the VHD's size (a page blob is sparse:
 * unwritten pages read as zeros, so all-zero blocks are never sent, nor long runs of zero pages within a
 * block: see dataRuns), the rest goes out in parallel Put Page calls of at most 4 MiB, each with its MD5 for
 * Azure to check, and a bounded pool keeps memory flat. The
 * block holding the VHD footer is held back until the source's checksum has matched and the footer has been
 * checked; only then is it written and the blob marked complete. A run that stopped leaves a blob without
 * that mark, which the next one resumes from the page ranges Azure reports.
 */
export async function uploadPages(
  blob: PageBlobClient,
  image: DiskImage,
  opts: PageUploadOptions,
  ctx: ProviderContext,
): Promise<PageUploadResult> {
  if (!opts.written)
    await call('Blob.PutBlob', () =>
      blob.create(opts.bytes, { metadata: opts.metadata, conditions: { ifNoneMatch: '*' } }),
    );
  const abort = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal;
  const reader = image.read(opts.pageBytes, signal);
  const queue = new PQueue({ concurrency: opts.concurrency });
  const ranges = opts.written ?? [];
  let next = 0;
  const alreadyWritten = (start: number, end: number) => {
    while (next < ranges.length && ranges[next]!.end < start) next++;
    const r = ranges[next];
    return r !== undefined && r.start <= start && r.end >= end;
  };
  const footerStart = opts.bytes - FOOTER_SIZE;
  const minGap = opts.minZeroGap ?? 64 * 1024;
  let failure: Error | undefined;
  let bytesSent = 0;
  let pagesSent = 0;
  let pagesResumed = 0;
  let lastReport = 0;
  let held: { data: Buffer; offset: number } | undefined;
  const put = (data: Buffer, offset: number) =>
    call('Blob.PutPage', () =>
      blob.uploadPages(data, offset, data.length, {
        transactionalContentMD5: createHash('md5').update(data).digest(),
        abortSignal: signal,
      }),
    );

  try {
    for await (const block of reader.blocks) {
      if (failure) break;
      const offset = block.index * opts.pageBytes;
      // The last block is cut to the blob's end (the reader pads it to a whole block).
      const data = block.data.subarray(0, Math.min(opts.pageBytes, opts.bytes - offset));
      if (offset + data.length > footerStart) {
        held = { data, offset };
        continue;
      }
      const runs = dataRuns(data, minGap).filter((r) => {
        const done = alreadyWritten(offset + r.start, offset + r.end - 1);
        if (done) pagesResumed++;
        return !done;
      });
      let pending = runs.length;
      if (pending === 0) block.release?.();
      for (const r of runs) {
        await queue.onSizeLessThan(opts.concurrency);
        void queue.add(async () => {
          try {
            await put(data.subarray(r.start, r.end), offset + r.start);
            bytesSent += r.end - r.start;
            pagesSent++;
          } catch (err) {
            failure ??= err as Error;
            abort.abort();
          } finally {
            if (--pending === 0) block.release?.();
          }
        });
      }
      if (reader.stats.bytes - lastReport >= 16 * 2 ** 20) {
        lastReport = reader.stats.bytes;
        ctx.emit({
          type: 'upload-progress',
          rawBytes: reader.stats.bytes,
          totalBytes: opts.bytes,
          blocksSent: pagesSent,
          zeroBlocks: reader.stats.zeroBlocks,
          bytesSent,
        });
      }
    }
  } catch (err) {
    failure ??= err as Error;
    abort.abort();
  }
  await queue.onIdle();
  if (failure) throw failure;
  const summary = reader.finish();
  if (!held)
    throw new PlumeError(
      'input',
      'not a fixed VHD Azure takes: it ends in zeros where its footer should be',
      'check that this is the Azure image',
    );
  checkVhdFooter(held.data.subarray(footerStart - held.offset), opts.bytes);
  const last = held;
  for (const r of dataRuns(last.data, minGap)) {
    await put(last.data.subarray(r.start, r.end), last.offset + r.start);
    bytesSent += r.end - r.start;
    pagesSent++;
  }
  await call('Blob.SetMetadata', () => blob.setMetadata({ ...opts.metadata, [META.complete]: 'true' }));
  ctx.emit({
    type: 'upload-progress',
    rawBytes: summary.bytes,
    totalBytes: opts.bytes,
    blocksSent: pagesSent,
    zeroBlocks: summary.zeroBlocks,
    bytesSent,
  });
  return { summary, bytesSent, pagesSent, pagesResumed };
}
