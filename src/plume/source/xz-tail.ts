import { Readable } from 'node:stream';
import { crc32 } from 'node:zlib';
import { PlumeError } from '../../shared/errors.js';
import { decompress } from './decompress.js';
import type { ReadAt } from './xz-index.js';

/**
 * The last bytes of what an .xz file decompresses to, read without decompressing the rest: the last blocks
 * of the last stream (as few as hold the bytes) are fetched with a Range read and wrapped in a stream of
 * their own (the file's stream header, the blocks, an index of them, a stream footer), which `xz` decodes
 * alone. Possible only when the file has several blocks (`xz -T`, which multi-threaded builds write); for
 * one block, that block is the whole file. Format: https://tukaani.org/xz/xz-file-format.txt (2.1 streams, 3 blocks, 4 index).
 */

const HEADER = 12;
const FOOTER = 12;

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

function vli(n: number): number[] {
  const out: number[] = [];
  do {
    const low = n % 128;
    n = Math.floor(n / 128);
    out.push(n > 0 ? low | 0x80 : low);
  } while (n > 0);
  return out;
}

const pad4 = (n: number) => Math.ceil(n / 4) * 4;

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n >>> 0);
  return b;
}

/**
 * The file's last blocks, as few as hold `bytes` uncompressed bytes, as a stream of their own; undefined
 * when that would take every block of the last stream (as well decompress the file).
 */
export async function lastBlocksStream(
  fileSize: number,
  readAt: ReadAt,
  bytes: number,
): Promise<Buffer | undefined> {
  let end = fileSize;
  // Stream padding: zero bytes in multiples of four after the last stream.
  for (;;) {
    const tail = await readAt(Math.max(0, end - 4096), Math.min(4096, end));
    let zeros = 0;
    while (zeros + 4 <= tail.length && tail.readUInt32LE(tail.length - zeros - 4) === 0) zeros += 4;
    end -= zeros;
    if (zeros < tail.length) break;
    if (end <= 0) throw new Error('only padding');
  }
  const footer = await readAt(end - FOOTER, FOOTER);
  if (footer.subarray(10, 12).toString('latin1') !== 'YZ') throw new Error('no xz stream footer');
  const indexSize = (footer.readUInt32LE(4) + 1) * 4;
  const indexStart = end - FOOTER - indexSize;
  const index = await readAt(indexStart, indexSize);
  if (index[0] !== 0x00) throw new Error('no index indicator');
  let [records, pos] = readVli(index, 1);
  const blocks: { unpadded: number; uncompressed: number }[] = [];
  let blocksSize = 0;
  for (; records > 0; records--) {
    let unpadded: number;
    let uncompressed: number;
    [unpadded, pos] = readVli(index, pos);
    [uncompressed, pos] = readVli(index, pos);
    blocks.push({ unpadded, uncompressed });
    blocksSize += pad4(unpadded);
  }
  let first = blocks.length;
  for (let have = 0; first > 0 && have < bytes;) have += blocks[--first]!.uncompressed;
  if (first === 0) return undefined;
  const last = blocks.slice(first);
  const lastSize = last.reduce((n, b) => n + pad4(b.unpadded), 0);
  const header = await readAt(indexStart - blocksSize - HEADER, HEADER);
  if (header.subarray(0, 6).toString('latin1') !== '\xfd7zXZ\0') throw new Error('no xz stream header');
  const block = await readAt(indexStart - lastSize, lastSize);
  const body = Buffer.from([
    0x00,
    ...vli(last.length),
    ...last.flatMap((b) => [...vli(b.unpadded), ...vli(b.uncompressed)]),
  ]);
  const indexBody = Buffer.concat([body, Buffer.alloc(pad4(body.length) - body.length)]);
  const newIndex = Buffer.concat([indexBody, u32(crc32(indexBody))]);
  const flags = header.subarray(6, 8);
  const backward = Buffer.concat([u32(newIndex.length / 4 - 1), flags]);
  const newFooter = Buffer.concat([u32(crc32(backward)), backward, Buffer.from('YZ')]);
  return Buffer.concat([header, block, newIndex, newFooter]);
}

/** The last `bytes` bytes the file decompresses to, or undefined when they cannot be had this way. */
export async function xzTail(fileSize: number, readAt: ReadAt, bytes: number): Promise<Buffer | undefined> {
  let stream: Buffer | undefined;
  try {
    stream = await lastBlocksStream(fileSize, readAt, bytes);
  } catch (err) {
    throw new PlumeError(
      'input',
      `the image is not a complete xz file (${(err as Error).message})`,
      'check that the file is fully written and really xz-compressed',
    );
  }
  if (!stream) return undefined;
  const chunks: Buffer[] = [];
  let kept = 0;
  for await (const chunk of decompress(Readable.from([stream]), 'xz')) {
    chunks.push(chunk);
    kept += chunk.length;
    // Only the end matters: drop what cannot be part of it.
    while (chunks.length > 1 && kept - chunks[0]!.length >= bytes) kept -= chunks.shift()!.length;
  }
  const all = Buffer.concat(chunks);
  return all.length >= bytes ? all.subarray(all.length - bytes) : undefined;
}
