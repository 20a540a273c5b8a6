import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';

function readVli(buf: Buffer, pos: number): [value: number, next: number] {
  let value = 0;
  for (let i = 0; ; i++) {
    const byte = buf[pos + i]!;
    value += (byte & 0x7f) * 2 ** (7 * i);
    if ((byte & 0x80) === 0) return [value, pos + i + 1];
  }
}

function writeVli(value: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i++) {
    out[i] = (value % 128) | (i < length - 1 ? 0x80 : 0);
    value = Math.floor(value / 128);
  }
  if (value !== 0) throw new Error('value does not fit');
  return out;
}

/**
 * Make the index of a single-stream .xz file claim `1 / factor` of each block's uncompressed size, as a
 * hostile or broken compose host could: the stream still decodes to the full size, and xz itself only
 * notices the lie at the very end (the index comes last). The size fields keep their length, so every
 * offset, and the footer, stay valid; only the index CRC is left stale, which plume's index reader does
 * not check (xz does, at the end). Returns the sizes the index now declares.
 */
export function shrinkXzIndex(path: string, factor: number): { declared: number; actual: number } {
  const buf = readFileSync(path);
  const footer = buf.length - 12;
  if (buf.subarray(footer + 10).toString('latin1') !== 'YZ') throw new Error('not a single-stream xz');
  const indexSize = (buf.readUInt32LE(footer + 4) + 1) * 4;
  let pos = footer - indexSize + 1;
  let records: number;
  [records, pos] = readVli(buf, pos);
  let declared = 0;
  let actual = 0;
  for (; records > 0; records--) {
    [, pos] = readVli(buf, pos);
    const start = pos;
    let size: number;
    [size, pos] = readVli(buf, pos);
    actual += size;
    const smaller = Math.floor(size / factor);
    if (vliLength(smaller) !== pos - start) throw new Error('pick a factor that keeps the size field length');
    writeVli(smaller, pos - start).copy(buf, start);
    declared += smaller;
  }
  writeFileSync(path, buf);
  return { declared, actual };
}

function vliLength(value: number): number {
  let n = 1;
  while (value >= 128) {
    value = Math.floor(value / 128);
    n++;
  }
  return n;
}

/** Point a compose's images.json at new content for one image (its sha256 and size), so the checksum passes. */
export function rehashImage(imagesJson: string, oldSha256: string, imagePath: string): void {
  const data = readFileSync(imagePath);
  const sha = createHash('sha256').update(data).digest('hex');
  writeFileSync(imagesJson, readFileSync(imagesJson, 'utf8').replaceAll(oldSha256, sha));
}
