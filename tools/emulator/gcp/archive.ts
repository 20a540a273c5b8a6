import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** What GCE found in an image archive: the raw disk's size, or why it cannot be an image. */
export type ArchiveCheck = { ok: true; diskBytes: number } | { ok: false; code: string; message: string };

const BLOCK = 512;

/** A tar header's numeric field: octal, or GNU's base-256 for large values. */
function numeric(field: Buffer): number {
  if (field[0]! & 0x80) {
    let n = 0;
    for (let i = 1; i < field.length; i++) n = n * 256 + field[i]!;
    return n;
  }
  const text = field.toString('latin1').replace(/\0.*$/s, '').trim();
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumHolds(h: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i]!;
  return sum === numeric(h.subarray(148, 156));
}

/** pax extended header records (`len key=value\n`). */
function paxRecords(data: Buffer): Map<string, string> {
  const out = new Map<string, string>();
  let at = 0;
  while (at < data.length) {
    const space = data.indexOf(0x20, at);
    if (space < 0) break;
    const len = parseInt(data.subarray(at, space).toString('latin1'), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.subarray(space + 1, at + len - 1).toString('utf8');
    const eq = record.indexOf('=');
    if (eq > 0) out.set(record.slice(0, eq), record.slice(eq + 1));
    at += len;
  }
  return out;
}

/**
 * Read an image archive as GCE reads `rawDisk.source`: gzip-compressed tar (containerType TAR) that holds a
 * file named `disk.raw`, the disk's bytes. The tar is walked header by header (ustar, GNU long names, old
 * GNU sparse members as `tar -S --format=oldgnu` writes them, pax size and sparse records), member data
 * skipped; the disk's size is the member's real size (a sparse member's expanded one).
 */
export async function checkArchive(stream: Readable): Promise<ArchiveCheck> {
  const gunzip = createGunzip();
  stream.on('error', (e) => gunzip.destroy(e));
  stream.pipe(gunzip);

  let pending: Buffer = Buffer.alloc(0);
  /** Bytes of member data (and padding) still to skip before the next header. */
  let skip = 0;
  /** Headers that modify the next member: a GNU long name, pax records. */
  let collecting: { kind: 'L' | 'x'; size: number; data: Buffer[] } | undefined;
  let longName: string | undefined;
  let pax = new Map<string, string>();
  let extendedSparse = false;
  let members = 0;
  let found: number | undefined;
  const padded = (n: number) => Math.ceil(n / BLOCK) * BLOCK;

  try {
    for await (const chunk of gunzip) {
      pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
      for (;;) {
        if (skip > 0) {
          const n = Math.min(skip, pending.length);
          if (collecting) collecting.data.push(pending.subarray(0, n));
          pending = pending.subarray(n);
          skip -= n;
          if (skip > 0) break;
          if (collecting) {
            const data = Buffer.concat(collecting.data).subarray(0, collecting.size);
            if (collecting.kind === 'L') longName = data.toString('utf8').replace(/\0.*$/s, '');
            else pax = paxRecords(data);
            collecting = undefined;
          }
        }
        if (pending.length < BLOCK) break;
        const h = pending.subarray(0, BLOCK);
        pending = pending.subarray(BLOCK);
        if (extendedSparse) {
          // Old GNU sparse extension blocks: 21 more entries, then the "is extended" flag at 504.
          extendedSparse = h[504] !== 0;
          continue;
        }
        if (h.every((b) => b === 0)) return done();
        if (!checksumHolds(h))
          return {
            ok: false,
            code: 'INVALID_IMAGE_FILE',
            message: 'The image archive is not a valid tar file (bad header checksum).',
          };
        const type = String.fromCharCode(h[156]!);
        const size = numeric(h.subarray(124, 136));
        if (type === 'L' || type === 'x' || type === 'g') {
          if (type !== 'g') collecting = { kind: type === 'L' ? 'L' : 'x', size, data: [] };
          skip = padded(size);
          continue;
        }
        const prefix = h.subarray(345, 500).toString('utf8').replace(/\0.*$/s, '');
        const rawName = h.subarray(0, 100).toString('utf8').replace(/\0.*$/s, '');
        const ustar = h.subarray(257, 262).toString('latin1') === 'ustar';
        let name =
          longName ?? pax.get('path') ?? (ustar && type !== 'S' && prefix ? `${prefix}/${rawName}` : rawName);
        name = name.replace(/^\.\//, '');
        let real = type === 'S' ? numeric(h.subarray(483, 495)) : Number(pax.get('size') ?? size);
        const paxReal = pax.get('GNU.sparse.realsize') ?? pax.get('GNU.sparse.size');
        if (paxReal !== undefined) real = Number(paxReal);
        if (pax.get('GNU.sparse.name')) name = pax.get('GNU.sparse.name')!.replace(/^\.\//, '');
        members++;
        if ((type === '0' || type === '\0' || type === 'S') && name === 'disk.raw' && found === undefined)
          found = real;
        if (type === 'S' && h[482] !== 0) extendedSparse = true;
        longName = undefined;
        const stored = Number(pax.get('size') ?? size);
        pax = new Map();
        skip = type === '5' || type === '1' || type === '2' ? 0 : padded(stored);
      }
    }
  } catch (e) {
    return {
      ok: false,
      code: 'INVALID_IMAGE_FILE',
      message: `The image archive is not gzip-compressed tar data (${e instanceof Error ? e.message : String(e)}).`,
    };
  }
  return done();

  function done(): ArchiveCheck {
    stream.destroy();
    if (found === undefined)
      return {
        ok: false,
        code: 'INVALID_IMAGE_FILE',
        message: members
          ? 'The image archive does not contain a file named disk.raw.'
          : 'The image archive is empty.',
      };
    if (found === 0) return { ok: false, code: 'INVALID_IMAGE_FILE', message: 'disk.raw is empty.' };
    return { ok: true, diskBytes: found };
  }
}
