import { PlumeError } from '../../shared/errors.js';

/** A stream that goes on past its volume (a declared size that lies, or a bomb). */
export function largerThanVolume(maxBytes: number): PlumeError {
  return new PlumeError(
    'input',
    `the image is larger than its ${Math.round(maxBytes / 2 ** 30)} GiB volume`,
    'the declared size is wrong or the file is not the image it claims to be',
  );
}

export interface Block {
  index: number;
  data: Buffer;
  /**
   * Hand the buffer back to the reader for a later block, once done with it (the data must not be
   * touched after). Optional to call: an unreleased buffer is garbage-collected, only later.
   */
  release?(): void;
}

export interface BlockStats {
  /** Bytes of raw image read so far. */
  bytes: number;
  blocks: number;
  zeroBlocks: number;
  /** Reads of the decompressor's pipe that found it empty (a paced reader's naps); absent elsewhere. */
  emptyReads?: number;
}

/**
 * Cut a raw disk stream into fixed-size blocks and drop the all-zero ones: a snapshot block never written
 * reads as zeros, so skipping them sends only the data a sparse image really holds. Every non-zero block
 * gets its own buffer because the uploader holds it while the next one fills. Bytes are copied into a block
 * only once it is known to hold data: most of a sparse image is zeros, which are compared, never copied.
 */
export async function* splitBlocks(
  input: AsyncIterable<Buffer>,
  blockSize: number,
  maxBytes: number,
  stats: BlockStats,
  /** The error for a stream past `maxBytes` (default: larger than its volume). */
  tooLarge?: () => Error,
): AsyncGenerator<Block> {
  const zero = Buffer.alloc(blockSize);
  let block = Buffer.allocUnsafe(blockSize);
  let fill = 0;
  // Whether the block holds data; while it does not, its first `fill` bytes are zeros not yet written.
  let dirty = false;
  let index = 0;
  const emit = (): Block | undefined => {
    stats.blocks++;
    const i = index++;
    fill = 0;
    if (!dirty) {
      stats.zeroBlocks++;
      return undefined;
    }
    dirty = false;
    const full = block;
    block = Buffer.allocUnsafe(blockSize);
    return { index: i, data: full };
  };
  for await (const chunk of input) {
    if (stats.bytes + chunk.length > maxBytes) throw tooLarge?.() ?? largerThanVolume(maxBytes);
    stats.bytes += chunk.length;
    let pos = 0;
    while (pos < chunk.length) {
      const n = Math.min(blockSize - fill, chunk.length - pos);
      if (dirty) chunk.copy(block, fill, pos, pos + n);
      else if (chunk.compare(zero, 0, n, pos, pos + n) !== 0) {
        block.fill(0, 0, fill);
        chunk.copy(block, fill, pos, pos + n);
        dirty = true;
      }
      fill += n;
      pos += n;
      if (fill === blockSize) {
        const out = emit();
        if (out) yield out;
      }
    }
  }
  if (fill > 0) {
    if (dirty) block.fill(0, fill);
    const out = emit();
    if (out) yield out;
  }
}
