import { PlumeError } from '../../../shared/errors.js';

/**
 * The fixed VHD Azure takes as an image source: the raw disk, then a 512-byte footer (Microsoft's VHD
 * format specification: `conectix` cookie, disk type 2 for fixed, current size, a one's-complement
 * checksum). Azure also wants the virtual size to be a whole number of MiB. Pure checks, no I/O.
 */

export const FOOTER_SIZE = 512;
const MiB = 2 ** 20;
const FIXED = 2;

/**
 * Whether a stream of `bytes` can be a fixed VHD Azure takes: checked before anything is uploaded when the
 * size is known, when the stream ends otherwise.
 */
export function checkVhdSize(bytes: number): number {
  const virtual = bytes - FOOTER_SIZE;
  if (virtual <= 0 || virtual % MiB !== 0)
    throw new PlumeError(
      'input',
      `the image is ${bytes} bytes: not a fixed VHD of whole MiB (a multiple of 1 MiB plus its 512-byte footer)`,
      'Azure takes fixed VHDs whose virtual size is a whole number of MiB; check that this is the Azure image',
    );
  return virtual;
}

/** The footer's checksum: the one's complement of the sum of its bytes, the checksum field counted as zero. */
export function footerChecksum(footer: Buffer): number {
  let sum = 0;
  for (let i = 0; i < FOOTER_SIZE; i++) if (i < 64 || i >= 68) sum += footer[i]!;
  return ~sum >>> 0;
}

/** Check the footer at the end of a VHD of `blobBytes` bytes; an input error says what is wrong. */
export function checkVhdFooter(footer: Buffer, blobBytes: number): void {
  const bad = (what: string) =>
    new PlumeError('input', `not a fixed VHD Azure takes: ${what}`, 'check that this is the Azure image');
  if (footer.length !== FOOTER_SIZE) throw bad(`its footer is ${footer.length} bytes, not 512`);
  if (footer.subarray(0, 8).toString('latin1') !== 'conectix')
    throw bad('its footer lacks the "conectix" cookie');
  const type = footer.readUInt32BE(60);
  if (type !== FIXED) throw bad(`its disk type is ${type}, not 2 (fixed)`);
  const current = Number(footer.readBigUInt64BE(48));
  if (current !== blobBytes - FOOTER_SIZE)
    throw bad(`its footer gives a size of ${current} bytes, but ${blobBytes - FOOTER_SIZE} precede it`);
  const stored = footer.readUInt32BE(64);
  const computed = footerChecksum(footer);
  if (stored !== computed)
    throw bad(`its footer checksum is ${stored.toString(16)}, the footer sums to ${computed.toString(16)}`);
}
