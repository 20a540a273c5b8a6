import { createHash } from 'node:crypto';
import { fail } from './errors.js';

/** The fingerprint of an empty label set, as Compute Engine reports it. */
const EMPTY_FINGERPRINT = '42WmSpB8rSM=';

/** A fingerprint of the labels: what setLabels must be given back, so a stale update is refused. */
export function labelFingerprint(labels: Record<string, string>): string {
  const keys = Object.keys(labels).sort();
  if (!keys.length) return EMPTY_FINGERPRINT;
  const h = createHash('sha256').update(JSON.stringify(keys.map((k) => [k, labels[k]])));
  return h.digest().subarray(0, 8).toString('base64');
}

const KEY = /^[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}$/u;
const VALUE = /^[\p{Ll}\p{Lo}\p{N}_-]{0,63}$/u;

/**
 * Labels as Compute Engine takes them: at most 64, keys 1-63 characters of lowercase letters, digits, `_`
 * and `-` starting with a letter, values 0-63 of the same (international lowercase letters allowed).
 */
export function validLabels(input: unknown, field: string): Record<string, string> {
  if (input === undefined || input === null) return {};
  if (typeof input !== 'object' || Array.isArray(input))
    fail(400, 'invalid', `Invalid value for field '${field}'.`);
  const labels = input as Record<string, unknown>;
  const entries = Object.entries(labels);
  if (entries.length > 64)
    fail(400, 'invalid', `Invalid value for field '${field}': at most 64 labels are allowed.`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (!KEY.test(k))
      fail(
        400,
        'invalid',
        `Invalid value for field '${field}': '${k}'. Label key must start with a lowercase letter and contain only lowercase letters, numeric characters, underscores and dashes, at most 63 characters.`,
      );
    if (typeof v !== 'string' || !VALUE.test(v))
      fail(
        400,
        'invalid',
        `Invalid value for field '${field}.${k}': '${String(v)}'. Label value can only contain lowercase letters, numeric characters, underscores and dashes, at most 63 characters.`,
      );
    out[k] = v;
  }
  return out;
}
