import { createHash } from 'node:crypto';
import type { PageBlobClient } from '@azure/storage-blob';
import PQueue from 'p-queue';
import { PlumeError } from '../../../shared/errors.js';
import type { Block } from '../../source/blocks.js';
import type { DiskImage, ReadSummary } from '../../source/image.js';
import type { ProviderContext } from '../types.js';
import { call, describeAzureError, isNotFound } from './clients.js';
import { checkVhdFooter, checkVhdSize, FOOTER_SIZE } from './vhd.js';

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
  /**
   * Blob size: the whole VHD, footer included; with `sizeUnknown`, the most the stream may be (the
   * policy's largest disk plus the footer), which the blob is created at and cut down from at the end.
   */
  bytes: number;
  /**
   * The VHD's size is only known once it has been read (bzip2 records none): the blob is created at
   * `bytes`, which a page blob costs nothing for (it is sparse), and resized to the stream's length once
   * the footer at its end has been checked.
   */
  sizeUnknown?: boolean;
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
  /** The VHD's size, footer included: the blob's size once complete. */
  bytes: number;
  bytesSent: number;
  pagesSent: number;
  /** Blocks a previous run had written, not sent again. */
  pagesResumed: number;
}

const notAVhd = (what: string) =>
  new PlumeError('input', `not a fixed VHD Azure takes: ${what}`, 'check that this is the Azure image');

/**
 * Stream a fixed VHD into a page blob: the blob is created at the VHD's size (a page blob is sparse:
 * unwritten pages read as zeros, so all-zero blocks are never sent, nor long runs of zero pages within a
 * block: see dataRuns), the rest goes out in parallel Put Page calls of at most 4 MiB, each with its MD5 for
 * Azure to check, and a bounded pool keeps memory flat. The
 * block holding the VHD footer is held back until the source's checksum has matched and the footer has been
 * checked; only then is it written and the blob marked complete. A run that stopped leaves a blob without
 * that mark, which the next one resumes from the page ranges Azure reports.
 *
 * When the size is unknown (`sizeUnknown`), which block holds the footer is only known when the stream
 * ends: the latest block holding data is the one held back (each is sent when the next one arrives). At
 * the end the stream's length must make a fixed VHD of whole MiB and its last 512 bytes, which lie in the
 * held block, must be its footer; then the blob is resized to that length (Azure drops any page past the
 * new end), the held block is written, and the blob is marked complete. The footer is so written last, at
 * the blob's end, and a blob not marked complete never has one.
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
  const reader = image.read(
    opts.pageBytes,
    signal,
    opts.sizeUnknown ? { trailerBytes: FOOTER_SIZE } : undefined,
  );
  const queue = new PQueue({ concurrency: opts.concurrency });
  const ranges = opts.written ?? [];
  let next = 0;
  const alreadyWritten = (start: number, end: number) => {
    while (next < ranges.length && ranges[next]!.end < start) next++;
    const r = ranges[next];
    return r !== undefined && r.start <= start && r.end >= end;
  };
  const footerStart = opts.bytes - FOOTER_SIZE;
  // An estimate while the size is unknown (the volume the system gives such images), as AWS shows it.
  const totalEstimate = opts.sizeUnknown ? image.volumeGiB * 2 ** 30 : opts.bytes;
  const minGap = opts.minZeroGap ?? 64 * 1024;
  let failure: Error | undefined;
  let bytesSent = 0;
  let pagesSent = 0;
  let pagesResumed = 0;
  let lastReport = 0;
  let held: { data: Buffer; offset: number; block?: Block } | undefined;
  const put = (data: Buffer, offset: number) =>
    call('Blob.PutPage', () =>
      blob.uploadPages(data, offset, data.length, {
        transactionalContentMD5: createHash('md5').update(data).digest(),
        abortSignal: signal,
      }),
    );
  /** Queue a block's data runs (those a stopped run did not write); its buffer goes back once all are in. */
  const send = async (data: Buffer, offset: number, block?: Block) => {
    const release = () => block?.release?.();
    const runs = dataRuns(data, minGap).filter((r) => {
      const done = alreadyWritten(offset + r.start, offset + r.end - 1);
      if (done) pagesResumed++;
      return !done;
    });
    let pending = runs.length;
    if (pending === 0) release();
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
          if (--pending === 0) release();
        }
      });
    }
  };

  try {
    for await (const block of reader.blocks) {
      if (failure) break;
      const offset = block.index * opts.pageBytes;
      // The last block is cut to the blob's end (the reader pads it to a whole block). Of a stream of
      // unknown size, the end is not known yet: its block is cut once it is.
      const data = block.data.subarray(0, Math.min(opts.pageBytes, opts.bytes - offset));
      if (opts.sizeUnknown) {
        const before = held;
        held = { data, offset, block };
        if (before) await send(before.data, before.offset, before.block);
      } else if (offset + data.length > footerStart) {
        held = { data, offset };
        continue;
      } else await send(data, offset, block);
      if (reader.stats.bytes - lastReport >= 16 * 2 ** 20) {
        lastReport = reader.stats.bytes;
        ctx.emit({
          type: 'upload-progress',
          rawBytes: reader.stats.bytes,
          totalBytes: totalEstimate,
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
  // The VHD's length: known, or what the stream turned out to be (checked as the known one was up front).
  const bytes = opts.sizeUnknown ? summary.bytes : opts.bytes;
  if (opts.sizeUnknown) checkVhdSize(bytes);
  const footerAt = bytes - FOOTER_SIZE;
  if (!held || held.offset > footerAt || held.offset + held.data.length < bytes)
    throw notAVhd('it ends in zeros where its footer should be');
  const last = { data: held.data.subarray(0, bytes - held.offset), offset: held.offset };
  checkVhdFooter(last.data.subarray(footerAt - last.offset), bytes);
  // Cut to the VHD's length before its last block goes in: the footer lands at the blob's very end.
  if (opts.sizeUnknown && bytes !== opts.bytes) await call('Blob.Resize', () => blob.resize(bytes));
  for (const r of dataRuns(last.data, minGap)) {
    await put(last.data.subarray(r.start, r.end), last.offset + r.start);
    bytesSent += r.end - r.start;
    pagesSent++;
  }
  await call('Blob.SetMetadata', () => blob.setMetadata({ ...opts.metadata, [META.complete]: 'true' }));
  ctx.emit({
    type: 'upload-progress',
    rawBytes: summary.bytes,
    totalBytes: bytes,
    blocksSent: pagesSent,
    zeroBlocks: summary.zeroBlocks,
    bytesSent,
  });
  return { summary, bytes, bytesSent, pagesSent, pagesResumed };
}
