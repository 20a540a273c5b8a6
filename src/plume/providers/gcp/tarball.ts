import { constants, gunzipSync } from 'node:zlib';
import { PlumeError } from '../../../shared/errors.js';

/** What GCE reads from an image archive: a gzip'd tar whose first member is `disk.raw`. */
export interface TarballDisk {
  member: string;
  /** Size of the raw disk (a sparse member's real size). */
  bytes: number;
}

const BLOCK = 512;

/** A tar header's numeric field: octal digits, or GNU's base-256 for sizes past 8 GiB. */
function numeric(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

/** The first member of a tar archive, from its first 512-byte header (ustar, GNU and old GNU sparse). */
export function parseTarHeader(header: Buffer): TarballDisk {
  if (header.length < BLOCK)
    throw new PlumeError('input', 'the image archive ends inside its first tar header');
  const sum = numeric(header.subarray(148, 156));
  let check = 0;
  for (let i = 0; i < BLOCK; i++) check += i >= 148 && i < 156 ? 0x20 : header[i]!;
  if (sum !== check)
    throw new PlumeError('input', 'the image archive is not a tar file (its first header does not check)');
  const member = header.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
  const type = String.fromCharCode(header[156]!);
  // Old GNU sparse members keep the real size at 483; the size field counts only the stored data.
  const bytes = type === 'S' ? numeric(header.subarray(483, 495)) : numeric(header.subarray(124, 136));
  return { member: member.replace(/^\.\//, ''), bytes };
}

/** How much of the archive may pass before its first header must have been read. */
const HEADER_WITHIN = 1024 * 1024;

/**
 * Pass an archive's compressed chunks through while reading its first tar header, so a tarball that is not
 * what GCE needs (no disk.raw first, a disk over the size bound) is refused before the upload is complete:
 * the caller's upload is abandoned and no object is made. The header is read by inflating the start of
 * the stream (zlib accepts a truncated stream with a sync flush); `disk()` is it, once the stream is read.
 */
export function inspectTarball(
  input: AsyncIterable<Buffer>,
  check: (disk: TarballDisk) => void,
): { chunks: AsyncGenerator<Buffer>; disk(): TarballDisk } {
  let found: TarballDisk | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    const head: Buffer[] = [];
    let have = 0;
    for await (const chunk of input) {
      if (!found) {
        head.push(chunk);
        have += chunk.length;
        let inflated: Buffer;
        try {
          inflated = gunzipSync(Buffer.concat(head), { finishFlush: constants.Z_SYNC_FLUSH });
        } catch (err) {
          throw new PlumeError('input', `the image archive is not gzip data (${(err as Error).message})`);
        }
        if (inflated.length >= BLOCK) {
          found = parseTarHeader(inflated.subarray(0, BLOCK));
          check(found);
          head.length = 0;
        } else if (have > HEADER_WITHIN)
          throw new PlumeError('input', 'the image archive holds no tar header in its first MiB');
      }
      yield chunk;
    }
    if (!found) throw new PlumeError('input', 'the image archive holds no tar header');
  }
  return {
    chunks: chunks(),
    disk: () => {
      if (!found) throw new PlumeError('internal', 'the archive was not read');
      return found;
    },
  };
}
