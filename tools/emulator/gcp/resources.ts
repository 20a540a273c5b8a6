import { randomBytes } from 'node:crypto';

/** Links in resources are Google's, as Compute Engine writes them: nothing follows them to the fake. */
export const COMPUTE_BASE = 'https://www.googleapis.com/compute/v1/';

export function selfLink(path: string): string {
  return `${COMPUTE_BASE}${path}`;
}

/** A resource id: Compute Engine's are unsigned 64-bit numbers, written as decimal strings. */
export function resourceId(): string {
  return BigInt.asUintN(64, BigInt(`0x${randomBytes(8).toString('hex')}`)).toString();
}

let last = 0;

/**
 * Now, as Compute Engine writes timestamps (RFC 3339 with milliseconds in US Pacific time; the fake uses a
 * fixed -07:00), strictly increasing so that resources made within a millisecond still order by creation.
 */
export function timestamp(): string {
  const now = Math.max(Date.now(), last + 1);
  last = now;
  const local = new Date(now - 7 * 3600_000).toISOString().replace(/Z$/, '');
  return `${local}-07:00`;
}

/** RFC 1035 names, what Compute Engine requires of images and families. */
export const RFC1035 = /^[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
export const RFC1035_TEXT = '(?:[a-z](?:[-a-z0-9]{0,61}[a-z0-9])?)';
