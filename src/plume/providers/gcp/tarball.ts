import { createGunzip } from 'node:zlib';
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

/**
 * Pass an archive's compressed chunks through while reading its first tar header, so a tarball that is not
 * what GCE needs (no disk.raw first, a disk over the size bound) is refused before the upload is complete:
 * the caller's upload is abandoned and no object is made. `disk()` is the header, once the stream is read.
 */
export function inspectTarball(
  input: AsyncIterable<Buffer>,
  check: (disk: TarballDisk) => void,
): { chunks: AsyncGenerator<Buffer>; disk(): TarballDisk } {
  let found: TarballDisk | undefined;
  async function* chunks(): AsyncGenerator<Buffer> {
    const gunzip = createGunzip();
    const head: Buffer[] = [];
    let have = 0;
    let failure: Error | undefined;
    gunzip.on('data', (d: Buffer) => {
      if (found || have >= BLOCK) return;
      head.push(d);
      have += d.length;
    });
    gunzip.on('error', (err) => (failure ??= err));
    try {
      for await (const chunk of input) {
        if (!found) {
          gunzip.write(chunk);
          // Let zlib's output events run before looking.
          await new Promise((resolve) => setImmediate(resolve));
          if (failure)
            throw new PlumeError('input', `the image archive is not gzip data (${failure.message})`);
          if (have >= BLOCK) {
            found = parseTarHeader(Buffer.concat(head).subarray(0, BLOCK));
            check(found);
          }
        }
        yield chunk;
      }
      if (!found) throw new PlumeError('input', 'the image archive holds no tar header');
    } finally {
      gunzip.destroy();
    }
  }
  return {
    chunks: chunks(),
    disk: () => {
      if (!found) throw new PlumeError('internal', 'the archive was not read');
      return found;
    },
  };
}
