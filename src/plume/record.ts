import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PlumeError } from '../shared/errors.js';
import type { ReleasePlan, TargetPlan, Visibility } from './plan.js';
import type { Problem } from './providers/types.js';

export const RECORD_SCHEMA = 'plume.release/v2';
/** Records written before releases had several targets: read, and brought to the current shape. */
const RECORD_SCHEMA_V1 = 'plume.release/v1';

export interface RecordedImage {
  location: string;
  variant: string;
  name: string;
  id: string;
}

export type RecordStatus = 'complete' | 'partial' | 'failed';

/** One target's account: what exists where, what is wrong, how long it took. */
export interface TargetRecord {
  provider: string;
  name: string;
  key: string;
  status: RecordStatus;
  mode: ReleaseRecord['mode'];
  account?: string;
  primaryLocation: string;
  visibility: Visibility;
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
  /** Why the target stopped before verification could say what exists (no credentials, a bad image...). */
  error?: string;
  timings: Record<string, number>;
  startedAt: string;
  finishedAt: string;
  /** The plan executed, so `plume verify --record` can check the target without its sources. */
  plan: TargetPlan;
}

/** The machine-readable account of a release: what was asked, and one section per target. */
export interface ReleaseRecord {
  schema: typeof RECORD_SCHEMA;
  key: string;
  status: RecordStatus;
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
  startedAt: string;
  finishedAt: string;
  /** By target name (`aws`, `aws-govcloud`, `gcp`, ...). */
  targets: Record<string, TargetRecord>;
  /** Providers the release left out, and why. */
  skipped: ReleasePlan['skipped'];
}

/** The record of a release from its plan and its targets' sections. */
export function assembleRecord(
  plan: ReleasePlan,
  mode: ReleaseRecord['mode'],
  targets: Record<string, TargetRecord>,
  startedAt: string,
  finishedAt: string,
): ReleaseRecord {
  return {
    schema: RECORD_SCHEMA,
    key: plan.key,
    status: overallStatus(Object.values(targets)),
    mode,
    system: plan.system,
    channel: plan.channel,
    arch: plan.arch,
    ...(plan.imageType ? { imageType: plan.imageType } : {}),
    version: plan.version,
    ...(plan.compose ? { compose: plan.compose } : {}),
    ...(plan.respin !== undefined ? { respin: plan.respin } : {}),
    ...(plan.label ? { label: plan.label } : {}),
    build: plan.build,
    startedAt,
    finishedAt,
    targets,
    skipped: plan.skipped,
  };
}

/** A release is complete when every target is, failed when no target has an image, partial otherwise. */
export function overallStatus(targets: readonly Pick<TargetRecord, 'status' | 'images'>[]): RecordStatus {
  if (targets.length > 0 && targets.every((t) => t.status === 'complete')) return 'complete';
  return targets.some((t) => t.images.length > 0) ? 'partial' : 'failed';
}

/** The targets of a record carried out by one provider (AWS's commercial and GovCloud, say). */
export function targetsOf(record: ReleaseRecord, provider: string): TargetRecord[] {
  return Object.values(record.targets).filter((t) => t.provider === provider);
}

/** `{ region: { gp3: ami, gp2: ami } }`, the shape most consumers want. */
export function imagesByLocation(
  record: Pick<TargetRecord, 'images'>,
): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const image of [...record.images].sort(
    (a, b) => a.location.localeCompare(b.location) || a.variant.localeCompare(b.variant),
  ))
    (out[image.location] ??= {})[image.variant] = image.id;
  return out;
}

/** A plain-text table per target: one row per location, one column per variant. */
export function formatTable(record: ReleaseRecord): string {
  const tables = Object.values(record.targets).map((target) => {
    const byLocation = imagesByLocation(target);
    const variants = [...new Set(target.plan.images.map((i) => i.variant))].sort();
    const problemAt = new Map(target.problems.map((p) => [`${p.location}/${p.variant}`, p.kind]));
    const allLocations = [
      ...new Set([...Object.keys(byLocation), ...target.problems.map((p) => p.location)]),
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
    const head = `${record.build} (${record.system} ${record.channel}, ${record.arch}) on ${target.name}: ${target.status}, ${target.images.length} image${target.images.length === 1 ? '' : 's'}${target.visibility.public && record.mode === 'release' ? ', public' : ''}`;
    return [head, ...(target.error ? [`  ${target.error}`] : []), ...lines].join('\n');
  });
  const skipped = record.skipped.map((s) => `${record.build} on ${s.provider}: skipped (${s.reason})`);
  return [...tables, ...skipped].join('\n\n');
}

/**
 * The JSON the distribution websites' AMI pages are built from: `{ version: { arch: { region: { gp3: ami } } } }`,
 * from the AWS targets of the records. Arch is the release's own name for it (x86_64, aarch64), as the
 * distribution websites' AMI script files them; never AWS's name for aarch64.
 */
export function formatWebsites(
  records: ReleaseRecord[],
): Record<string, Record<string, Record<string, Record<string, string>>>> {
  const out: Record<string, Record<string, Record<string, Record<string, string>>>> = {};
  for (const r of records) {
    for (const target of targetsOf(r, 'aws')) {
      const byArch = ((out[r.version] ??= {})[r.arch] ??= {});
      for (const [loc, variants] of Object.entries(imagesByLocation(target)))
        Object.assign((byArch[loc] ??= {}), variants);
    }
  }
  return out;
}

/** Write a file so readers see the old or the new contents, never half of one (write, fsync, rename). */
export async function writeFileAtomic(path: string, contents: string, mode = 0o644): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = join(dirname(path), `.${Date.now()}-${process.pid}-${randomBytes(6).toString('hex')}.tmp`);
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
  const record = asRecord(data);
  if (!record)
    throw new PlumeError('usage', `${path} is not a plume release record (schema ${RECORD_SCHEMA})`);
  return record;
}

/** A stored record in the current shape (older ones are brought to it); undefined if it is not one. */
export function asRecord(data: unknown): ReleaseRecord | undefined {
  const schema = (data as { schema?: string } | null)?.schema;
  if (schema === RECORD_SCHEMA_V1) return fromV1(data as RecordV1);
  return schema === RECORD_SCHEMA ? (data as ReleaseRecord) : undefined;
}

/** The first record shape: one AWS target, its plan with an `aws` block and `targets` for images. */
interface RecordV1 extends Omit<TargetRecord, 'name' | 'key' | 'plan'> {
  key: string;
  mode: ReleaseRecord['mode'];
  system: string;
  channel: string;
  arch: string;
  imageType?: string;
  version: string;
  compose?: string;
  respin?: number;
  label?: string;
  build: string;
  plan: Omit<TargetPlan, 'images' | 'settings' | 'name' | 'architecture'> & {
    targets: TargetPlan['images'];
    aws: Record<string, unknown>;
    provider: string;
  };
}

function fromV1(r: RecordV1): ReleaseRecord {
  const { targets: images, aws, provider, ...plan } = r.plan;
  const { architecture, ...settings } = aws as { architecture?: string };
  const target: TargetRecord = {
    provider,
    name: provider,
    key: r.key,
    status: r.status,
    mode: r.mode,
    account: r.account,
    primaryLocation: r.primaryLocation,
    visibility: r.visibility,
    source: r.source,
    ...(r.upload ? { upload: r.upload } : {}),
    images: r.images,
    problems: r.problems,
    timings: r.timings,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    plan: {
      ...plan,
      provider,
      name: provider,
      // The first records named the architecture as AWS does; only x86_64 is spelled alike.
      architecture: architecture === 'x86_64' ? 'x86_64' : 'aarch64',
      images,
      settings,
    },
  };
  return {
    schema: RECORD_SCHEMA,
    key: r.key,
    status: r.status,
    mode: r.mode,
    system: r.system,
    channel: r.channel,
    arch: r.arch,
    ...(r.imageType ? { imageType: r.imageType } : {}),
    version: r.version,
    ...(r.compose ? { compose: r.compose } : {}),
    ...(r.respin !== undefined ? { respin: r.respin } : {}),
    ...(r.label ? { label: r.label } : {}),
    build: r.build,
    startedAt: r.startedAt,
    finishedAt: r.finishedAt,
    targets: { [provider]: target },
    skipped: [],
  };
}

/** File name for a record: the key made safe for a path. */
export function recordFileName(key: string): string {
  return `${key.replace(/[^A-Za-z0-9._-]+/g, '_')}.json`;
}
