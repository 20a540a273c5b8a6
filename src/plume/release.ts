import { createWriteStream } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { PlumeError, errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { ReleasePlan, TargetPlan } from './plan.js';
import { imageKey } from './plan.js';
import {
  isSkipped,
  type DiskRef,
  type Provider,
  type ProviderContext,
  type PublishedImage,
  type ReleaseEvent,
  type TargetOutcome,
  type UploadSkipped,
  type VerifyReport,
} from './providers/types.js';
import { assembleRecord, type ReleaseRecord, type TargetRecord } from './record.js';
import { probeSource, streamSource } from './source/fetch.js';
import { openImage } from './source/image.js';
import type { SourcePolicy } from './source/policy.js';
import type { Journal, StepName } from './state/journal.js';
import type { UploadSessionStore } from './state/upload-sessions.js';

export interface RunOptions {
  /** The provider that carries out a target (account and credentials differ per target). */
  providerFor: (target: TargetPlan) => Provider;
  journal: Journal;
  /** Resumable upload sessions kept across runs (ProviderContext.uploadSessions). */
  uploadSessions?: UploadSessionStore;
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
   * Required for targets with `source.signatureUrl`: a signature is never skipped for want of a checker.
   */
  verifySource?: (target: TargetPlan, file: string) => Promise<void>;
}

/** The plan as a given mode executes it: a pre-release keeps everything private. */
export function effectivePlan(plan: ReleasePlan, mode: 'release' | 'pre-release'): ReleasePlan {
  return mode === 'release'
    ? plan
    : {
        ...plan,
        targets: plan.targets.map((t) => ({
          ...t,
          visibility: { public: false, accounts: [] },
          deprecateAt: undefined,
        })),
      };
}

/**
 * Run a release: every target at once (a slow or failing provider holds back no other), each step finding
 * what a previous run left and doing only what is missing, so running it again after a crash, a kill or a
 * partial failure completes it without duplicates. Failures of single images do not stop the others: the
 * target ends `partial`, naming what is missing. A target that fails outright is recorded as failed; when
 * every target failed, the first failure is thrown (nothing was published anywhere).
 */
export async function runRelease(inputPlan: ReleasePlan, opts: RunOptions): Promise<ReleaseRecord> {
  const mode = opts.mode ?? 'release';
  const plan = effectivePlan(inputPlan, mode);
  const startedAt = new Date();
  for (const s of plan.skipped)
    opts.log.info({ provider: s.provider, reason: s.reason }, `not publishing to ${s.provider}: ${s.reason}`);
  if (plan.targets.length === 0)
    throw new PlumeError(
      'input',
      `release ${plan.key} has nothing to publish: ${plan.skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
      'check the source and the enabled providers',
    );
  const runs = await Promise.allSettled(plan.targets.map((target) => runTarget(target, mode, opts)));
  const targets: Record<string, TargetRecord> = {};
  const failures: { target: TargetPlan; error: unknown }[] = [];
  runs.forEach((run, i) => {
    const target = plan.targets[i]!;
    if (run.status === 'fulfilled') targets[target.name] = run.value;
    else {
      failures.push({ target, error: run.reason });
      targets[target.name] = failedTarget(target, mode, run.reason, startedAt);
    }
  });
  // Nothing was published anywhere: the failure is the outcome (each target's journal says why).
  if (failures.length === plan.targets.length) throw failures[0]!.error;
  for (const { target, error } of failures)
    opts.log.error({ target: target.name, err: errorMessage(error) }, `${target.name} failed`);
  const record = assembleRecord(plan, mode, targets, startedAt.toISOString(), new Date().toISOString());
  try {
    await opts.writeRecord?.(record);
  } catch (err) {
    for (const t of plan.targets) opts.journal.finish(t.key, 'failed', undefined, errorMessage(err));
    throw err;
  }
  for (const t of plan.targets) {
    const r = targets[t.name]!;
    opts.journal.finish(t.key, r.status, r, r.error);
  }
  return record;
}

/** One target, step by step; returns its record (the journal is finished by the caller). */
async function runTarget(
  plan: TargetPlan,
  mode: 'release' | 'pre-release',
  opts: RunOptions,
): Promise<TargetRecord> {
  const { journal } = opts;
  const provider = opts.providerFor(plan);
  const log = opts.log.child({ target: plan.name });
  const emitAny = opts.emit ?? (() => undefined);
  const emit = (event: ReleaseEvent) => emitAny({ ...event, targetName: plan.name });
  const ctx: ProviderContext = {
    log,
    emit,
    signal: opts.signal,
    ...(opts.uploadSessions ? { uploadSessions: opts.uploadSessions } : {}),
  };
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
    const uploadStart = performance.now();
    let staged: StagedSource | undefined;
    let uploaded: DiskRef | UploadSkipped;
    try {
      uploaded = await step(
        'upload',
        () =>
          provider.uploadDisk(
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
                  minDataBytes: plan.source.minDataBytes,
                  maxVolumeGiB: plan.source.maxVolumeGiB,
                },
                staged?.policy ?? opts.policy,
                opts.signal,
              );
            },
            ctx,
          ),
        (d) =>
          isSkipped(d)
            ? { reason: d.skipped }
            : {
                disk: d.id,
                reused: d.reused,
                sizeGiB: d.sizeGiB,
                bytesSent: d.bytesSent,
                blocksSent: d.blocksSent,
              },
      );
    } finally {
      await staged?.remove();
    }
    let disk: DiskRef | undefined;
    if (isSkipped(uploaded)) {
      // Only an upload that ran has a timing: a rerun keeps the first upload's figures in its record.
      delete timings.upload;
      journal.step(plan.key, 'upload', 'skipped', { detail: { reason: uploaded.skipped } });
      emit({ type: 'step', step: 'upload', state: 'skipped', detail: uploaded.skipped });
      log.info(`${uploaded.skipped}; no upload needed`);
    } else {
      disk = uploaded;
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

    const registered = await step('register', () => provider.createImages(plan, disk, ctx), outcomeDetail);
    const failedPrimary = registered.filter((o) => o.error);
    if (failedPrimary.length > 0)
      throw new PlumeError(
        'provider',
        `could not create the images in ${plan.primaryLocation}: ${failedPrimary.map((o) => `${o.target.variant}: ${o.error}`).join('; ')}`,
        'run again to resume',
      );
    const primary = registered.map((o) => ({ ...o.target, id: o.id! }));

    const replicated = await step('replicate', () => provider.replicate(plan, primary, ctx), outcomeDetail);
    const ready: PublishedImage[] = [
      ...primary,
      ...replicated.filter((o) => o.id).map((o) => ({ ...o.target, id: o.id! })),
    ];
    for (const o of replicated.filter((o) => o.error))
      log.error(
        { location: o.target.location, variant: o.target.variant, err: o.error },
        'replication failed',
      );

    if (mode === 'release') await step('publish', () => provider.publish(plan, ready, ctx), outcomeDetail);
    else journal.step(plan.key, 'publish', 'skipped', { detail: { reason: 'pre-release' } });

    const report = await step(
      'verify',
      () => verifyAndRepair(plan, provider, ctx, opts.repairRounds ?? 2),
      (r) => ({ ok: r.ok.length, problems: r.problems }),
    );
    return buildTargetRecord(plan, mode, account, report, disk, timings, startedAt, before?.record);
  } catch (err) {
    journal.finish(plan.key, 'failed', undefined, errorMessage(err));
    throw err;
  }
}

/** The section of a target that stopped before anything could be verified. */
function failedTarget(
  plan: TargetPlan,
  mode: TargetRecord['mode'],
  err: unknown,
  startedAt: Date,
): TargetRecord {
  return {
    provider: plan.provider,
    name: plan.name,
    key: plan.key,
    status: 'failed',
    mode,
    primaryLocation: plan.primaryLocation,
    visibility: plan.visibility,
    source: { url: plan.source.url, ...(plan.source.sha256 ? { sha256: plan.source.sha256 } : {}) },
    images: [],
    problems: [],
    error: errorMessage(err),
    timings: {},
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    plan,
  };
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
  plan: TargetPlan,
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
    failed: outcomes.filter((o) => o.error).map((o) => ({ target: imageKey(o.target), error: o.error })),
  };
}

/** Verify everything; repair what is wrong a bounded number of times; return what is still wrong. */
export async function verifyAndRepair(
  plan: TargetPlan,
  provider: Provider,
  ctx: ProviderContext,
  rounds: number,
): Promise<VerifyReport> {
  let report = await provider.verify(plan, ctx);
  for (let round = 1; round <= rounds && report.problems.length > 0; round++) {
    ctx.log.warn(
      { round, problems: report.problems.map((p) => `${imageKey(p.target)}: ${p.kind}: ${p.detail}`) },
      'verification found problems; repairing',
    );
    await provider.repair(plan, report.problems, ctx, round);
    report = await provider.verify(plan, ctx);
  }
  return report;
}

function buildTargetRecord(
  plan: TargetPlan,
  mode: TargetRecord['mode'],
  account: string,
  report: VerifyReport,
  disk: DiskRef | undefined,
  timings: Record<string, number>,
  startedAt: Date,
  previous?: Pick<TargetRecord, 'source' | 'upload'>,
): TargetRecord {
  // A run that found the images already there uploaded nothing: what the upload that made them measured
  // stays in the record instead of disappearing with the rerun.
  const carried = !disk && previous?.source.url === plan.source.url ? previous : undefined;
  const status = report.problems.length === 0 ? 'complete' : report.ok.length > 0 ? 'partial' : 'failed';
  return {
    provider: plan.provider,
    name: plan.name,
    key: plan.key,
    status,
    mode,
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
