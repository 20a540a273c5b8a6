import { createHash } from 'node:crypto';

/**
 * Names as Google Compute Engine takes them (images and families): lowercase letters, digits and hyphens,
 * a letter first, no hyphen last, at most 63 characters. Systems name their images from build names that
 * follow none of that (`Fedora-Cloud-41_Beta-1.2.x86_64`); this is the one mapping, so a name is the same
 * on every run (it is what a rerun finds the image by).
 */
export const GCE_NAME_MAX = 63;

/** `max` is lower when the caller appends a suffix of its own (Container Linux's `-v{date}`). */
export function gceName(text: string, max = GCE_NAME_MAX): string {
  let name = text
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '');
  if (!/^[a-z]/.test(name)) name = `i-${name}`;
  if (name.length > max) {
    // Shortened names stay distinct: what was cut off is kept as a short digest of the whole.
    const digest = createHash('sha256').update(text).digest('hex').slice(0, 8);
    name = `${name.slice(0, max - digest.length - 1).replace(/-+$/, '')}-${digest}`;
  }
  return name.replace(/-+$/, '');
}
