import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { PlumeError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ReleasePlan } from './plan.js';
import { targetKey } from './plan.js';
import type {
  DiskRef,
  Provider,
  ProviderContext,
  PublishedImage,
  ReleaseEvent,
  TargetOutcome,
  VerifyReport,
} from './providers/types.js';
import { RECORD_SCHEMA, type ReleaseRecord } from './record.js';
import { probeSource, streamSource } from './source/fetch.js';
import { openImage } from './source/image.js';
import type { SourcePolicy } from './source/policy.js';
import type { Journal, StepName } from './state/journal.js';

export interface RunOptions {
  provider: Provider;
  journal: Journal;
  policy: SourcePolicy;
  log: Logger;
  emit?: (event: ReleaseEvent) => void;
  signal?: AbortSignal;
  /** `pre-release` uploads, registers and replicates privately; `release` also publishes. */
  mode?: 'release' | 'pre-release';
  /** Verification rounds that may repair before the release is reported partial. */
  repairRounds?: number;
  /** Write the record (the CLI passes a writer that stores it atomically). */
  writeRecord?: (record: ReleaseRecord) => Promise<void>;
  /**
   * Check a signed source (the system's `verifySource`), given the downloaded, still compressed file.
   * Required for plans with `source.signatureUrl`: a signature is never skipped for want of a checker.
   */
  verifySource?: (plan: ReleasePlan, file: string) => Promise<void>;
}

/** The plan as a given mode executes it: a pre-release keeps everything private. */
export function effectivePlan(plan: ReleasePlan, mode: 'release' | 'pre-release'): ReleasePlan {
  return mode === 'release'
    ? plan
    : { ...plan, visibility: { public: false, accounts: [] }, deprecateAt: undefined };
}

/**
 * Run a release: each step finds what a previous run left and does only what is missing, so running it
 * again after a crash, a kill or a partial failure completes it without duplicates. Failures of single
 * targets do not stop the others: the release ends `partial`, naming what is missing.
 */
export async function runRelease(inputPlan: ReleasePlan, opts: RunOptions): Promise<ReleaseRecord> {
  const mode = opts.mode ?? 'release';
  const plan = effectivePlan(inputPlan, mode);
  const { provider, journal, log } = opts;
  const emit = opts.emit ?? (() => undefined);
  const ctx: ProviderContext = { log, emit, signal: opts.signal };
  const startedAt = new Date();
  const timings: Record<string, number> = {};
  const before = journal.begin(plan);
  if (before)
    log.info({ key: plan.key, previous: before.status, attempts: before.attempts }, 'resuming release');

  const step = async <T>(name: StepName, fn: () => Promise<T>, detail?: (t: T) => unknown): Promise<T> => {
    const t0 = performance.now();
    journal.step(plan.key, name, 'running');
    emit({ type: 'step', step: name, state: 'started' });
    try {
      const result = await fn();
      timings[name] = Math.round(performance.now() - t0) / 1000;
      journal.step(plan.key, name, 'done', { detail: detail?.(result) });
      emit({ type: 'step', step: name, state: 'done' });
      return result;
    } catch (err) {
      timings[name] = Math.round(performance.now() - t0) / 1000;
      journal.step(plan.key, name, 'failed', { error: errorMessage(err) });
      throw err;
    }
  };

  try {
    const { account } = await step('preflight', () => provider.preflight(plan, ctx));
    let primary = await provider.findPrimaryImages(plan, ctx);
    const variants = [
      ...new Set(plan.targets.filter((t) => t.location === plan.primaryLocation).map((t) => t.variant)),
    ];

    let disk: DiskRef | undefined;
    if (variants.every((v) => primary.has(v))) {
      journal.step(plan.key, 'upload', 'skipped', { detail: { reason: 'images already registered' } });
      emit({ type: 'step', step: 'upload', state: 'skipped', detail: 'images already registered' });
      log.info('primary images exist; no upload needed');
    } else {
      const uploadStart = performance.now();
      disk = await step(
        'upload',
        async () => {
          let staged: StagedSource | undefined;
          try {
            return await provider.uploadDisk(
              plan,
              // Called only when an upload is needed, before anything is sent.
              async () => {
                if (plan.source.signatureUrl) staged = await stageSignedSource(plan, opts, emit);
                return openImage(
                  {
                    url: staged?.url ?? new URL(plan.source.url),
                    compression: plan.source.compression,
                    sha256: plan.source.sha256,
                    fallbackVolumeGiB: plan.source.fallbackVolumeGiB,
                    minVolumeGiB: plan.source.minVolumeGiB,
                    volumeGiB: plan.source.volumeGiB,
                  },
                  staged?.policy ?? opts.policy,
                  opts.signal,
                );
              },
              ctx,
            );
          } finally {
            await staged?.remove();
          }
        },
        (d) => ({
          disk: d.id,
          reused: d.reused,
          sizeGiB: d.sizeGiB,
          bytesSent: d.bytesSent,
          blocksSent: d.blocksSent,
        }),
      );
      if (disk.summary) {
        const seconds = (performance.now() - uploadStart) / 1000;
        log.info(
          {
            disk: disk.id,
            rawMiB: Math.round(disk.summary.bytes / 2 ** 20),
            sentMiB: Math.round((disk.bytesSent ?? 0) / 2 ** 20),
            blocks: disk.summary.blocks,
            zeroBlocks: disk.summary.zeroBlocks,
            seconds: Math.round(seconds * 10) / 10,
            rawMiBps: Math.round(disk.summary.bytes / 2 ** 20 / seconds),
          },
          'disk uploaded',
        );
      }
    }

    const registered = await step(
      'register',
      () => provider.createPrimaryImages(plan, disk, ctx),
      outcomeDetail,
    );
    const failedPrimary = registered.filter((o) => o.error);
    if (failedPrimary.length > 0)
      throw new PlumeError(
        'provider',
        `could not register in ${plan.primaryLocation}: ${failedPrimary.map((o) => `${o.target.variant}: ${o.error}`).join('; ')}`,
        'run again to resume',
      );
    primary = new Map(registered.map((o) => [o.target.variant, { ...o.target, id: o.id! }]));

    const replicated = await step(
      'replicate',
      () => provider.replicate(plan, [...primary.values()], ctx),
      outcomeDetail,
    );
    const ready: PublishedImage[] = [
      ...primary.values(),
      ...replicated.filter((o) => o.id).map((o) => ({ ...o.target, id: o.id! })),
    ];
    for (const o of replicated.filter((o) => o.error))
      log.error(
        { region: o.target.location, volumeType: o.target.variant, err: o.error },
        'replication failed',
      );

    if (mode === 'release') await step('publish', () => provider.publish(plan, ready, ctx), outcomeDetail);
    else {
      journal.step(plan.key, 'publish', 'skipped', { detail: { reason: 'pre-release' } });
    }

    const report = await step(
      'verify',
      () => verifyAndRepair(plan, provider, ctx, opts.repairRounds ?? 2),
      (r) => ({ ok: r.ok.length, problems: r.problems }),
    );

    const record = buildRecord(plan, mode, account, report, disk, timings, startedAt, before?.record);
    await step('record', async () => {
      await opts.writeRecord?.(record);
    });
    journal.finish(plan.key, record.status, record);
    return record;
  } catch (err) {
    journal.finish(plan.key, 'failed', undefined, errorMessage(err));
    throw err;
  }
}

interface StagedSource {
  url: URL;
  policy: SourcePolicy;
  remove(): Promise<void>;
}

/**
 * A signed image is checked before anything is uploaded, and a signature covers the whole file: download
 * it, still compressed, to a private temporary directory, have the system verify it, then upload from that
 * copy (so what is uploaded is what was verified). The raw image is never written to disk.
 */
async function stageSignedSource(
  plan: ReleasePlan,
  opts: RunOptions,
  emit: (event: ReleaseEvent) => void,
): Promise<StagedSource> {
  if (!opts.verifySource)
    throw new PlumeError(
      'internal',
      `the plan of ${plan.key} has a signed source but nothing to check the signature with`,
      'this is a bug in the system module: give runRelease its verifySource',
    );
  // Only an upload needs the key (publishing what a pre-release uploaded does not): without one, say so
  // before the download rather than after it.
  if (!plan.source.signatureKey)
    throw new PlumeError(
      'usage',
      `${plan.key}: the image must be uploaded and its signature checked first, but no key to check it with is configured`,
      "pass --verify-key FILE or configure the system's key; releasing what a pre-release uploaded needs none",
    );
  const dir = await mkdtemp(join(tmpdir(), 'plume-signed-'));
  const remove = () => rm(dir, { recursive: true, force: true });
  try {
    const url = new URL(plan.source.url);
    const file = join(dir, basename(decodeURIComponent(url.pathname)) || 'image');
    emit({ type: 'step', step: 'download', state: 'started' });
    const info = await probeSource(url, opts.policy, opts.signal);
    await pipeline(
      Readable.from(streamSource(info, opts.policy, opts.signal)),
      createWriteStream(file, { mode: 0o600 }),
      { signal: opts.signal },
    );
    const size = (await stat(file)).size;
    if (info.size !== undefined && size !== info.size)
      throw new PlumeError(
        'source',
        `downloaded ${size} bytes of ${url.href}, expected ${info.size}`,
        'run again',
      );
    emit({ type: 'step', step: 'download', state: 'done' });
    emit({ type: 'step', step: 'verify-source', state: 'started' });
    await opts.verifySource(plan, file);
    emit({ type: 'step', step: 'verify-source', state: 'done' });
    opts.log.info({ file: url.href, bytes: size }, 'source signature verified; uploading the verified copy');
    return { url: pathToFileURL(file), policy: { ...opts.policy, allowFiles: true }, remove };
  } catch (err) {
    await remove();
    throw err;
  }
}

function outcomeDetail(outcomes: TargetOutcome[]) {
  return {
    ok: outcomes.filter((o) => o.id).length,
    failed: outcomes.filter((o) => o.error).map((o) => ({ target: targetKey(o.target), error: o.error })),
  };
}

/** Verify everything; repair what is wrong a bounded number of times; return what is still wrong. */
export async function verifyAndRepair(
  plan: ReleasePlan,
  provider: Provider,
  ctx: ProviderContext,
  rounds: number,
): Promise<VerifyReport> {
  let report = await provider.verify(plan, ctx);
  for (let round = 1; round <= rounds && report.problems.length > 0; round++) {
    ctx.log.warn(
      { round, problems: report.problems.map((p) => `${targetKey(p.target)}: ${p.kind}: ${p.detail}`) },
      'verification found problems; repairing',
    );
    await provider.repair(plan, report.problems, ctx, round);
    report = await provider.verify(plan, ctx);
  }
  return report;
}

function buildRecord(
  plan: ReleasePlan,
  mode: 'release' | 'pre-release',
  account: string,
  report: VerifyReport,
  disk: DiskRef | undefined,
  timings: Record<string, number>,
  startedAt: Date,
  previous?: ReleaseRecord,
): ReleaseRecord {
  // A run that found the images already there uploaded nothing: what the upload that made them measured
  // stays in the record instead of disappearing with the rerun.
  const carried = !disk && previous?.source.url === plan.source.url ? previous : undefined;
  const status = report.problems.length === 0 ? 'complete' : report.ok.length > 0 ? 'partial' : 'failed';
  return {
    schema: RECORD_SCHEMA,
    key: plan.key,
    status,
    mode,
    system: plan.system,
    channel: plan.channel,
    arch: plan.arch,
    imageType: plan.imageType,
    version: plan.version,
    compose: plan.compose,
    respin: plan.respin,
    label: plan.label,
    build: plan.build,
    provider: plan.provider,
    account,
    primaryLocation: plan.primaryLocation,
    visibility: plan.visibility,
    source: {
      url: plan.source.url,
      sha256: disk?.summary?.sha256 ?? plan.source.sha256 ?? carried?.source.sha256,
      compressedBytes: disk?.summary?.compressedBytes ?? carried?.source.compressedBytes,
      rawBytes: disk?.summary?.bytes ?? carried?.source.rawBytes,
      volumeGiB: disk?.sizeGiB ?? carried?.source.volumeGiB,
    },
    ...(disk
      ? {
          upload: {
            disk: disk.id,
            reused: disk.reused,
            bytesSent: disk.bytesSent,
            blocksSent: disk.blocksSent,
            zeroBlocks: disk.summary?.zeroBlocks,
            seconds: timings.upload,
          },
        }
      : carried?.upload
        ? { upload: carried.upload }
        : {}),
    images: report.ok
      .map((i) => ({ location: i.location, variant: i.variant, name: i.name, id: i.id }))
      .sort((a, b) => a.location.localeCompare(b.location) || a.variant.localeCompare(b.variant)),
    problems: report.problems.map((p) => ({
      location: p.target.location,
      variant: p.target.variant,
      kind: p.kind,
      detail: p.detail,
    })),
    timings,
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    plan,
  };
}
