import { PlumeError } from '../../shared/errors.js';

/**
 * The uncompressed size of an .xz file, read from the index at its end. StartSnapshot needs the volume size
 * before the first block is sent, and the xz format records it there, so two small reads of the file's tail
 * tell us what decompressing the whole file would. Concatenated streams and stream padding are handled.
 * Format: https://tukaani.org/xz/xz-file-format.txt (sections 2.1.2 stream footer, 4 index).
 */
export type ReadAt = (offset: number, length: number) => Promise<Buffer>;

const FOOTER = 12;
const HEADER = 12;
const FOOTER_MAGIC = Buffer.from('YZ');

function readVli(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    const byte = buf[pos + i];
    if (byte === undefined) throw new Error('index ends inside a number');
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [value, pos + i + 1];
  }
  throw new Error('index number longer than 9 bytes');
}

function parseIndex(index: Buffer): { uncompressed: number; blocksSize: number; records: number } {
  if (index[0] !== 0x00) throw new Error('no index indicator');
  let [records, pos] = readVli(index, 1);
  const count = records;
  let uncompressed = 0;
  let blocksSize = 0;
  for (; records > 0; records--) {
    let unpadded: number;
    let size: number;
    [unpadded, pos] = readVli(index, pos);
    [size, pos] = readVli(index, pos);
    blocksSize += Math.ceil(unpadded / 4) * 4;
    uncompressed += size;
  }
  return { uncompressed, blocksSize, records: count };
}

export async function xzUncompressedSize(fileSize: number, readAt: ReadAt): Promise<number> {
  return (await xzIndex(fileSize, readAt)).uncompressed;
}

/**
 * The uncompressed size and the number of blocks, over all streams. More than one block is what lets
 * `xz -T0` decode on several threads, which changes how its output is best read (see block-reader.ts).
 */
export async function xzIndex(
  fileSize: number,
  readAt: ReadAt,
): Promise<{ uncompressed: number; blocks: number }> {
  let end = fileSize;
  let total = 0;
  let blocks = 0;
  try {
    while (end > 0) {
      // Stream padding: zero bytes in multiples of four between or after streams.
      let tail = await readAt(Math.max(0, end - 4096), Math.min(4096, end));
      let zeros = 0;
      while (zeros + 4 <= tail.length && tail.readUInt32LE(tail.length - zeros - 4) === 0) zeros += 4;
      end -= zeros;
      if (zeros === tail.length) continue;
      if (end < HEADER + FOOTER) throw new Error('file too short');
      tail = await readAt(end - FOOTER, FOOTER);
      if (!tail.subarray(10, 12).equals(FOOTER_MAGIC)) throw new Error('no xz stream footer');
      const indexSize = (tail.readUInt32LE(4) + 1) * 4;
      const index = await readAt(end - FOOTER - indexSize, indexSize);
      const { uncompressed, blocksSize, records } = parseIndex(index);
      total += uncompressed;
      blocks += records;
      end -= FOOTER + indexSize + blocksSize + HEADER;
      if (end < 0) throw new Error('index sizes exceed the file');
    }
  } catch (err) {
    throw new PlumeError(
      'input',
      `the image is not a complete xz file (${(err as Error).message})`,
      'check that the file is fully written and really xz-compressed',
    );
  }
  return { uncompressed: total, blocks };
}
