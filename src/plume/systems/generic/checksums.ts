import { PlumeError } from '../../../shared/errors.js';

/**
 * The sha256 of one file from a checksum document: a SHA256SUMS list in the GNU form (`hex  name`,
 * `hex *name`) or the BSD form (`SHA256 (name) = hex`, as distributions' CHECKSUM files are), with `#`
 * comments and PGP armour lines ignored, or a `.sha256` file holding just the digest. Pure.
 */
export function sha256For(document: string, fileName: string, where: string): string {
  const entries: { name?: string; hex: string }[] = [];
  for (const raw of document.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const bsd = /^SHA256 \((.+)\) = ([0-9a-fA-F]{64})$/.exec(line);
    if (bsd) {
      entries.push({ name: bsd[1]!, hex: bsd[2]! });
      continue;
    }
    const gnu = /^([0-9a-fA-F]{64})(?:\s+\*?(.+))?$/.exec(line);
    if (gnu) entries.push({ hex: gnu[1]!, ...(gnu[2] ? { name: gnu[2].trim() } : {}) });
  }
  const named = entries.filter((e) => e.name !== undefined && e.name.split('/').pop() === fileName);
  if (named.length === 1) return named[0]!.hex.toLowerCase();
  if (named.length > 1 && new Set(named.map((e) => e.hex.toLowerCase())).size === 1)
    return named[0]!.hex.toLowerCase();
  if (named.length > 1)
    throw new PlumeError('input', `${where} lists ${fileName} ${named.length} times with different sha256`);
  const bare = entries.filter((e) => e.name === undefined);
  if (entries.length === 1 && bare.length === 1) return bare[0]!.hex.toLowerCase();
  throw new PlumeError(
    'input',
    `${where} has no sha256 for ${fileName}`,
    entries.length > 0
      ? `it lists: ${entries
          .map((e) => e.name ?? '(a bare digest)')
          .slice(0, 5)
          .join(', ')}`
      : 'it holds no sha256 digest at all',
  );
}
