import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PlumeError } from '../shared/errors.js';
import type { ReleasePlan } from './plan.js';
import type { Problem } from './providers/types.js';

export const RECORD_SCHEMA = 'plume.release/v1';

export interface RecordedImage {
  location: string;
  variant: string;
  name: string;
  id: string;
}

/** The machine-readable account of a release: what was asked, what exists where, how long it took. */
export interface ReleaseRecord {
  schema: typeof RECORD_SCHEMA;
  key: string;
  status: 'complete' | 'partial' | 'failed';
  /** `release` made images public (or shared); `pre-release` left them private. */
  mode: 'release' | 'pre-release';
  system: string;
  channel: string;
  arch: string;
  imageType?: string;
  version: string;
  compose?: string;
  respin?: number;
  label?: string;
  build: string;
  provider: string;
  account?: string;
  primaryLocation: string;
  visibility: ReleasePlan['visibility'];
  source: {
    url: string;
    sha256?: string;
    compressedBytes?: number;
    rawBytes?: number;
    volumeGiB?: number;
  };
  upload?: {
    disk: string;
    reused: boolean;
    bytesSent?: number;
    blocksSent?: number;
    zeroBlocks?: number;
    seconds?: number;
  };
  images: RecordedImage[];
  problems: { location: string; variant: string; kind: Problem['kind']; detail: string }[];
  timings: Record<string, number>;
  startedAt: string;
  finishedAt: string;
  /** The plan executed, so `plume verify --record` can check the release without its sources. */
  plan: ReleasePlan;
}

/** `{ region: { gp3: ami, gp2: ami } }`, the shape most consumers want. */
export function imagesByLocation(
  record: Pick<ReleaseRecord, 'images'>,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const image of [...record.images].sort(
    (a, b) => a.location.localeCompare(b.location) || a.variant.localeCompare(b.variant),
  ))
    (out[image.location] ??= {})[image.variant] = image.id;
  return out;
}

/** A plain-text table: one row per location, one column per variant. */
export function formatTable(record: ReleaseRecord): string {
  const byLocation = imagesByLocation(record);
  const variants = [...new Set(record.images.map((i) => i.variant))].sort();
  const problemAt = new Map(record.problems.map((p) => [`${p.location}/${p.variant}`, p.kind]));
  const allLocations = [
    ...new Set([...Object.keys(byLocation), ...record.problems.map((p) => p.location)]),
  ].sort();
  const rows = [['REGION', ...variants.map((v) => v.toUpperCase())]];
  for (const loc of allLocations)
    rows.push([
      loc,
      ...variants.map((v) => byLocation[loc]?.[v] ?? `(${problemAt.get(`${loc}/${v}`) ?? 'missing'})`),
    ]);
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  const lines = rows.map((r) =>
    r
      .map((cell, c) => cell.padEnd(widths[c]!))
      .join('  ')
      .trimEnd(),
  );
  const head = `${record.build} (${record.system} ${record.channel}, ${record.arch}): ${record.status}, ${record.images.length} images${record.visibility.public && record.mode === 'release' ? ', public' : ''}`;
  return [head, ...lines].join('\n');
}

/**
 * The JSON the distribution websites' AMI pages are built from: `{ version: { arch: { region: { gp3: ami } } } }`.
 * Arch is the release's own name for it (x86_64, aarch64), as the distribution websites' AMI script files
 * them; never AWS's name for aarch64.
 */
export function formatWebsites(
  records: ReleaseRecord[],
): Record<string, Record<string, Record<string, Record<string, string>>>> {
  const out: Record<string, Record<string, Record<string, Record<string, string>>>> = {};
  for (const r of records) {
    const arch = r.arch;
    const byVersion = (out[r.version] ??= {});
    const byArch = (byVersion[arch] ??= {});
    for (const [loc, variants] of Object.entries(imagesByLocation(r)))
      Object.assign((byArch[loc] ??= {}), variants);
  }
  return out;
}

/** Write a file so readers see the old or the new contents, never half of one (write, fsync, rename). */
export async function writeFileAtomic(path: string, contents: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  const fh = await open(tmp, 'w', mode);
  try {
    await fh.writeFile(contents);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  // The rename itself is durable only once the directory entry is.
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

export async function readRecord(path: string): Promise<ReleaseRecord> {
  const { readFile } = await import('node:fs/promises');
  let data: unknown;
  try {
    data = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new PlumeError('usage', `cannot read release record ${path}: ${(err as Error).message}`);
  }
  if ((data as { schema?: string })?.schema !== RECORD_SCHEMA)
    throw new PlumeError('usage', `${path} is not a plume release record (schema ${RECORD_SCHEMA})`);
  return data as ReleaseRecord;
}

/** File name for a record: the key made safe for a path. */
export function recordFileName(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`;
}
