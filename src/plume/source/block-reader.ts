import { MessageChannel, Worker } from 'node:worker_threads';
import { largerThanVolume, type Block, type BlockStats } from './blocks.js';

/** Slots of the shared flow-control array. */
const QUEUED = 0;
const STOP = 1;
/** Reads that found the pipe empty, counted by the worker (for tests and the benchmark). */
const EMPTY = 2;

/**
 * Reading the decompressor's pipe. It writes 8 KiB at a time into a 64 KiB pipe, and each write that finds
 * a reader waiting in read() wakes it, which on a virtual machine costs the writer more than the write
 * (measured here: xz spent 0.6 s of system time per GiB waking a blocked reader, 0.3 s with a paced one).
 *
 * When the writer is also the only decoder (single-block xz, bzip2, gzip), that cost is on the critical
 * path, so the reader is *paced*: its end of the pipe is non-blocking, and when the pipe is empty or was
 * just drained it naps for about the time the writer needs to half-fill it, at the rate it has been
 * writing, then takes what is there in one read. Naps are short because a full pipe stalls the decoder:
 * 0.02-0.05 ms asked, about 0.1 ms slept (timer slack), while all-zero output (~550 MB/s from xz) fills
 * the pipe in 0.12 ms.
 *
 * When xz decodes blocks on several threads its writer is not the bottleneck, but a full pipe stalls every
 * decoder behind it and naps are CPU the decoders need: plain blocking reads measured better there.
 */
const PIPE_TARGET = 32 * 1024;
const MIN_NAP_MS = 0.02;
const MAX_NAP_MS = 0.05;
/**
 * When the writer has nothing (the download is slow, so the decompressor waits for input), sub-millisecond
 * naps become a busy-wait: 23 % of a core at 1 byte/s. After IDLE_AFTER empty reads in a row (a few
 * milliseconds of nothing, far longer than any gap while the decoder is working) the nap doubles up to
 * IDLE_NAP_MS, and the first read that finds data goes back to pacing. A download that resumes waits at
 * most that long to be noticed.
 */
const IDLE_AFTER = 64;
const IDLE_NAP_MS = 25;

/**
 * The worker's code, as plain JavaScript so it runs the same from dist/, under tsx and under vitest
 * (none of which would load a .ts worker file alike). It reads the decompressor's output straight into
 * block buffers with synchronous reads: no per-chunk event, promise or copy, which on the main thread cost
 * more than the decompression of the zeros in them (1 GiB arrives as ~120,000 reads). Zero checks happen
 * here too, so the main thread only ever sees the blocks that carry data. A block buffer is handed over
 * (transferred, not copied) and the worker waits while `ahead` blocks are still untaken: that is the
 * memory bound and the backpressure (a waiting worker stops reading, the decompressor blocks on its full
 * pipe, the download pauses).
 */
const WORKER_SOURCE = String.raw`(function main() {
const { readSync } = require('node:fs');
const { parentPort, receiveMessageOnPort, workerData } = require('node:worker_threads');
const { fd, blockSize, maxBytes, ahead, pace, control, freed } = workerData;
// Buffers the consumer released come back on 'freed'; reusing them keeps memory to the buffers in flight
// instead of leaving it to the garbage collector, which lets dead ones pile up on a long image.
const nextBuffer = () => {
  const back = receiveMessageOnPort(freed);
  return back ? Buffer.from(back.message.buffer, back.message.byteOffset, blockSize) : Buffer.allocUnsafeSlow(blockSize);
};
// A paced reader meets an empty pipe (EAGAIN) thousands of times per GiB, and an error's stack trace is
// most of what throwing one costs. The errors this worker reports carry their message and code.
Error.stackTraceLimit = 0;
const flow = new Int32Array(control);
const zero = Buffer.alloc(blockSize);
let block = Buffer.allocUnsafeSlow(blockSize);
let fill = 0;
let dirty = false;
let index = 0;
let bytes = 0;
let blocks = 0;
let zeroBlocks = 0;
let sinceReport = 0;
// Bytes per millisecond the writer has been producing, smoothed.
let rate = 0;
let last = performance.now();
const observe = (n) => {
  const now = performance.now();
  if (now > last) rate = rate === 0 ? n / (now - last) : rate * 0.7 + (n / (now - last)) * 0.3;
  last = now;
};
let empty = 0;
const nap = () => {
  if (empty > ${IDLE_AFTER}) {
    Atomics.wait(flow, ${STOP}, 0, Math.min(${IDLE_NAP_MS}, ${MAX_NAP_MS} * 2 ** Math.min(20, empty - ${IDLE_AFTER})));
    return;
  }
  const ms = rate > 0 ? ${PIPE_TARGET} / rate : ${MAX_NAP_MS};
  Atomics.wait(flow, ${STOP}, 0, Math.min(${MAX_NAP_MS}, Math.max(${MIN_NAP_MS}, ms)));
};
for (;;) {
  if (Atomics.load(flow, ${STOP})) return;
  const want = blockSize - fill;
  let n;
  try {
    n = readSync(fd, block, fill, want, null);
  } catch (err) {
    if (err.code === 'EAGAIN') {
      observe(0);
      empty++;
      Atomics.add(flow, ${EMPTY}, 1);
      nap();
      continue;
    }
    if (err.code === 'EINTR') continue;
    throw err;
  }
  if (n === 0) break;
  empty = 0;
  if (pace) observe(n);
  if (bytes + n > maxBytes) {
    parentPort.postMessage({ t: 'too-large' });
    return;
  }
  bytes += n;
  // Once a block holds data it is sent whatever follows; only a still-clean block needs looking at.
  if (!dirty && block.compare(zero, 0, n, fill, fill + n) !== 0) dirty = true;
  fill += n;
  if (fill === blockSize) {
    blocks++;
    if (dirty) {
      for (let q = Atomics.load(flow, ${QUEUED}); q >= ahead; q = Atomics.load(flow, ${QUEUED})) {
        if (Atomics.load(flow, ${STOP})) return;
        Atomics.wait(flow, ${QUEUED}, q, 1000);
      }
      Atomics.add(flow, ${QUEUED}, 1);
      parentPort.postMessage({ t: 'block', index, data: block, bytes, blocks, zeroBlocks }, [block.buffer]);
      block = nextBuffer();
      sinceReport = 0;
    } else {
      zeroBlocks++;
      if (++sinceReport === 64) {
        parentPort.postMessage({ t: 'progress', bytes, blocks, zeroBlocks });
        sinceReport = 0;
      }
    }
    index++;
    fill = 0;
    dirty = false;
  }
  // A short read drained the pipe: let it fill before the next one.
  if (pace && n < want) nap();
}
let tail = null;
if (fill > 0) {
  blocks++;
  if (dirty) {
    block.fill(0, fill);
    tail = block;
  } else zeroBlocks++;
}
parentPort.postMessage({ t: 'end', index, data: tail, bytes, blocks, zeroBlocks }, tail ? [tail.buffer] : []);
})();
`;

type Message =
  | {
      t: 'block' | 'end';
      index: number;
      data: Uint8Array | null;
      bytes: number;
      blocks: number;
      zeroBlocks: number;
    }
  | { t: 'progress'; bytes: number; blocks: number; zeroBlocks: number }
  | { t: 'too-large' }
  | { t: 'error'; error: Error };

/** The writer of the pipe being read: a decompressor (see decompressToFd). */
export interface PipeSource {
  fd: number;
  /** The fd is non-blocking and reads are paced (see above); otherwise reads block. */
  paced: boolean;
  /** Resolves when the writer exited cleanly; throws why it did not. */
  finished(): Promise<void>;
  kill(): void;
  close(): Promise<void>;
}

/**
 * Read a raw disk from a pipe as fixed-size blocks, dropping the all-zero ones, like `splitBlocks`. The
 * writer's `finished` is awaited once the pipe ends and before the padded last block is given out, so a
 * decompressor that failed is reported before anything made from its partial output. If the consumer
 * stops early the writer is killed, which is also what unblocks the worker's read.
 */
export async function* readBlocks(
  source: PipeSource,
  blockSize: number,
  maxBytes: number,
  stats: BlockStats,
  ahead = 8,
  /** The error for a stream past `maxBytes` (default: larger than its volume). */
  tooLarge?: () => Error,
): AsyncGenerator<Block> {
  const { fd } = source;
  const control = new SharedArrayBuffer(12);
  const flow = new Int32Array(control);
  const { port1: recycle, port2: freed } = new MessageChannel();
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { fd, blockSize, maxBytes, ahead, pace: source.paced, control, freed },
    transferList: [freed],
  });
  const block = (index: number, data: Uint8Array): Block => {
    const buf = Buffer.from(data.buffer, data.byteOffset, data.length);
    let released = false;
    return {
      index,
      data: buf,
      release() {
        if (released) return;
        released = true;
        recycle.postMessage(buf, [buf.buffer as ArrayBuffer]);
      },
    };
  };
  const inbox: Message[] = [];
  let wake: (() => void) | undefined;
  const deliver = (m: Message) => {
    inbox.push(m);
    wake?.();
  };
  worker.on('message', deliver);
  // @types/node 24 types a worker's error as any: it is whatever the worker threw.
  worker.on('error', (error: unknown) =>
    deliver({ t: 'error', error: error instanceof Error ? error : new Error(String(error)) }),
  );
  let ended = false;
  const exited = new Promise<void>((resolve) =>
    worker.on('exit', () => {
      if (!ended) deliver({ t: 'error', error: new Error('the block reader stopped early') });
      resolve();
    }),
  );
  try {
    for (;;) {
      while (inbox.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      wake = undefined;
      const m = inbox.shift()!;
      if (m.t === 'error') throw m.error;
      if (m.t === 'too-large') throw tooLarge?.() ?? largerThanVolume(maxBytes);
      stats.bytes = m.bytes;
      stats.blocks = m.blocks;
      stats.zeroBlocks = m.zeroBlocks;
      stats.emptyReads = Atomics.load(flow, EMPTY);
      if (m.t === 'progress') continue;
      if (m.t === 'end') {
        ended = true;
        await source.finished();
        if (m.data) yield block(m.index, m.data);
        return;
      }
      // The block is the consumer's now: make room for the next one before handing it over.
      Atomics.sub(flow, QUEUED, 1);
      Atomics.notify(flow, QUEUED);
      yield block(m.index, m.data!);
    }
  } finally {
    // After the end of the pipe the writer has exited; before it, it may be blocked on a full pipe.
    if (!ended) source.kill();
    ended = true;
    Atomics.store(flow, STOP, 1);
    Atomics.notify(flow, QUEUED);
    Atomics.notify(flow, STOP);
    await worker.terminate();
    await exited;
    stats.emptyReads = Atomics.load(flow, EMPTY);
    recycle.close();
    await source.close();
    await source.finished().catch(() => undefined);
  }
}
