import { errorMessage, PlumeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { PlumeConfig } from '../plume/config.js';
import { imageKey } from '../plume/plan.js';
import type { ProviderFactory } from '../plume/providers/module.js';
import type { ReleaseEvent } from '../plume/providers/types.js';
import type { ReleaseRecord } from '../plume/record.js';
import { runRelease } from '../plume/release.js';
import { planRelease, type PlannedRelease } from '../plume/runtime.js';
import { MemoryJournal } from '../plume/state/journal.js';
import type { UploadSessionStore } from '../plume/state/upload-sessions.js';
import type { SystemRegistry } from '../plume/systems/registry.js';
import type { ReleaseRequest } from '../plume/systems/types.js';
import type { Metrics } from './metrics.js';
import type { JobProgress } from './store/job-store.js';

/** The `plume` command a person would run to do what a job does, for logs and the status page. */
export function plumeCommand(request: ReleaseRequest): string {
  const args = ['plume', 'release', '--system', request.system, '--channel', request.channel];
  const flag = (name: string, value: string | number | undefined) => {
    if (value !== undefined && value !== '') args.push(`--${name}`, String(value));
  };
  flag('arch', request.arch);
  flag('board', request.board);
  flag('image-type', request.imageType);
  flag('compose', request.compose);
  flag('compose-id', request.composeId);
  flag('version', request.version);
  flag('respin', request.respin);
  flag('label', request.label);
  flag('environment', request.environment);
  if (request.platforms && request.platforms.length > 0) flag('platform', request.platforms.join(','));
  return args.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export interface JobRunDeps {
  plume: PlumeConfig;
  registry: SystemRegistry;
  providers: ProviderFactory;
  log: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** Progress for the status page; called often, the caller throttles writes. */
  onProgress: (progress: JobProgress) => void;
  /** The plan is known (before anything is uploaded): announce "upload started". */
  onPlanned: (planned: PlannedRelease) => Promise<void>;
  /**
   * Where the GCE upload keeps its resumable session (the job store, shared by all replicas), so that a
   * job run again after a restart or by another replica sends only what the session lacks.
   */
  uploadSessions?: UploadSessionStore;
}

/** Run the release a job asks for, in this process, exactly as `plume release` would. */
export async function runJob(request: ReleaseRequest, deps: JobRunDeps): Promise<ReleaseRecord> {
  const planned = await planRelease(request, {
    config: deps.plume,
    registry: deps.registry,
    log: deps.log,
    // Compose locations come from the bus: never read local files, whatever a message says.
    allowFiles: false,
    providers: deps.providers,
    signal: deps.signal,
  });
  const { plan, providers, policy } = planned;
  const providerOf = (targetName: string | undefined) =>
    plan.targets.find((t) => t.name === targetName)?.provider ?? jobProvider(request);
  if (plan.targets.length === 0)
    throw new PlumeError(
      'input',
      `nothing to publish for this job: ${plan.skipped.map((s) => `${s.provider}: ${s.reason}`).join('; ')}`,
    );
  await deps.onPlanned(planned);
  {
    const progress: JobProgress = { targets: {} };
    let uploadStart = 0;
    let replicateStart = 0;
    let lastRaw = 0;
    let lastSent = 0;
    let lastZero = 0;
    const emit = (event: ReleaseEvent) => {
      switch (event.type) {
        case 'step':
          if (event.state === 'started') {
            progress.step = event.step;
            if (event.step === 'upload') uploadStart = Date.now();
            if (event.step === 'replicate') replicateStart = Date.now();
          }
          if (event.step === 'upload' && event.state === 'done' && uploadStart)
            deps.metrics.uploadSeconds.observe(
              {
                region: plan.targets.find((t) => t.name === event.targetName)?.primaryLocation ?? '',
                provider: providerOf(event.targetName),
              },
              (Date.now() - uploadStart) / 1000,
            );
          break;
        case 'upload-progress':
          deps.metrics.rawBytes.inc(event.rawBytes - lastRaw);
          deps.metrics.bytesUploaded.inc(event.bytesSent - lastSent);
          deps.metrics.blocksSkipped.inc(event.zeroBlocks - lastZero);
          lastRaw = event.rawBytes;
          lastSent = event.bytesSent;
          lastZero = event.zeroBlocks;
          Object.assign(progress, {
            rawBytes: event.rawBytes,
            totalBytes: event.totalBytes,
            bytesSent: event.bytesSent,
            zeroBlocks: event.zeroBlocks,
          });
          break;
        case 'image-ready':
          progress.targets![imageKey(event.target)] = { state: 'ready', id: event.id };
          if (!event.primary && replicateStart && !event.reused)
            deps.metrics.copySeconds.observe(
              { region: event.target.location, provider: providerOf(event.targetName) },
              (Date.now() - replicateStart) / 1000,
            );
          break;
        case 'image-published':
          progress.targets![imageKey(event.target)] = { state: 'published', id: event.id };
          break;
        case 'target-failed':
          progress.targets![imageKey(event.target)] = { state: 'failed', error: event.error };
          deps.metrics.targetFailures.inc({
            region: event.target.location,
            provider: providerOf(event.targetName),
          });
          break;
        case 'retry':
          deps.metrics.retries.inc({ what: event.what });
          break;
        default:
          break;
      }
      deps.onProgress(progress);
    };
    try {
      return await runRelease(plan, {
        providerFor: providers,
        journal: new MemoryJournal(),
        policy,
        log: deps.log.child({ release: plan.key }),
        emit,
        signal: deps.signal,
        mode: 'release',
        repairRounds: deps.plume.release.repair_rounds,
        ...(deps.uploadSessions ? { uploadSessions: deps.uploadSessions } : {}),
      });
    } catch (err) {
      deps.log.error({ release: plan.key, err: errorMessage(err) }, 'release failed');
      throw err;
    }
  }
}

/** The provider a job publishes to: joystick's jobs are one per (compose, image, provider). */
export function jobProvider(request: ReleaseRequest): string {
  return request.platforms?.length === 1
    ? request.platforms[0]!
    : (request.platforms ?? []).join(',') || 'aws';
}
