import { PlumeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { PlumeConfig } from './config.js';
import type { ReleasePlan } from './plan.js';
import { AwsClients } from './providers/aws/clients.js';
import { AwsProvider, type AwsProviderSettings } from './providers/aws/provider.js';
import type { Provider } from './providers/types.js';
import { DEFAULT_SOURCE_POLICY, type SourcePolicy } from './source/policy.js';
import type { SystemRegistry } from './systems/registry.js';
import type { ReleaseRequest, System, TargetSettings } from './systems/types.js';

/** What the command line (or joystick) may override on top of the config file and the channel. */
export interface Overrides {
  baseRegion?: string;
  regions?: string[];
  volumeTypes?: string[];
  visibility?: 'public' | 'private';
  shareWith?: string[];
  profile?: string;
  /**
   * A credentials file was given (plume's old `--aws-credentials`): targets that name no profile use its
   * `default` one, as plume did, rather than whatever the environment holds.
   */
  credentialsFile?: string;
}

export function awsProviderSettings(config: PlumeConfig, profile?: string): AwsProviderSettings {
  const a = config.aws;
  return {
    client: {
      endpoint: a.endpoint,
      profile: profile ?? a.profile,
      maxAttempts: a.max_attempts,
      throttleAttempts: a.throttle_attempts,
      retryBaseMs: a.retry_base_ms,
      throttleBaseMs: a.throttle_base_ms,
      retryMaxMs: a.retry_max_ms,
      connectTimeoutMs: a.connect_timeout_seconds * 1000,
      requestTimeoutMs: a.request_timeout_seconds * 1000,
      callTimeoutMs: a.call_timeout_seconds * 1000,
      maxSockets: Math.max(64, a.upload_concurrency * 2),
    },
    wait: {
      pollMinMs: a.poll_min_ms,
      pollMaxMs: a.poll_max_ms,
      imageTimeoutMs: a.image_wait_minutes * 60_000,
      snapshotTimeoutMs: a.snapshot_wait_minutes * 60_000,
    },
    uploadConcurrency: a.upload_concurrency,
    copyConcurrency: a.copy_concurrency,
  };
}

export function sourcePolicy(config: PlumeConfig, system: System, allowFiles: boolean): SourcePolicy {
  return {
    ...DEFAULT_SOURCE_POLICY,
    allowedHosts: [...new Set([...system.sourceHosts(), ...config.source.allowed_hosts])],
    allowFiles,
    allowInsecureHttp: config.source.allow_insecure_http,
    attempts: config.source.attempts,
    idleTimeoutMs: config.source.idle_timeout_seconds * 1000,
  };
}

/**
 * The publication targets of a request: config defaults, then what the system's channel says, then the
 * command line. `regions = "all"` stays unresolved here (it needs the cloud) and is marked by an empty list.
 */
export function targetSettings(
  config: PlumeConfig,
  system: System,
  request: ReleaseRequest,
  overrides: Overrides = {},
): TargetSettings[] {
  const a = config.aws;
  const base: TargetSettings = {
    primaryLocation: a.base_region,
    locations: a.regions === 'all' ? [] : a.regions,
    variants: a.volume_types,
    visibility: { public: a.visibility === 'public', accounts: a.share_with },
    deprecateAfterDays: a.deprecate_after_days || undefined,
    partition: a.partition,
    profile: a.profile,
    imdsV2: a.imds_v2,
    volumeGiB: a.volume_size_gib,
  };
  const channel = system.channelTargets?.(
    request.channel,
    request.environment,
    config.systems[system.name] ?? {},
  ) ?? [{}];
  // One region list or profile cannot be right for targets in different partitions (commercial, GovCloud).
  const partitions = new Set(channel.map((c) => c.partition ?? base.partition));
  if (
    channel.length > 1 &&
    (overrides.baseRegion || overrides.regions || (overrides.profile && partitions.size > 1))
  )
    throw new PlumeError(
      'usage',
      `channel ${request.channel} of ${system.name} publishes to ${channel.length} targets (${channel.map((c) => c.name ?? c.partition ?? '?').join(', ')}); ${overrides.profile ? '--aws-profile' : '--regions / --base-region'} would apply to all of them`,
      `set them per target in [systems.${system.name}] of the config file`,
    );
  return channel.map((c) => {
    const s: TargetSettings = { ...base, ...c, visibility: { ...base.visibility, ...c.visibility } };
    if (overrides.baseRegion) s.primaryLocation = overrides.baseRegion;
    if (overrides.regions) s.locations = overrides.regions;
    if (overrides.volumeTypes) s.variants = overrides.volumeTypes;
    if (overrides.visibility) s.visibility = { ...s.visibility, public: overrides.visibility === 'public' };
    if (overrides.shareWith) s.visibility = { ...s.visibility, accounts: overrides.shareWith };
    if (overrides.profile) s.profile = overrides.profile;
    if (overrides.credentialsFile) s.profile ??= 'default';
    if (s.locations.length > 0 && !s.locations.includes(s.primaryLocation))
      s.locations = [s.primaryLocation, ...s.locations];
    return s;
  });
}

/** Resolve `regions = "all"` against the account, with the primary region first. */
export async function resolveLocations(
  settings: TargetSettings,
  provider: Provider,
  log: Logger,
): Promise<TargetSettings> {
  if (settings.locations.length > 0) return settings;
  const all = await provider.listLocations(settings.primaryLocation, { log, emit: () => undefined });
  if (all.length === 0)
    throw new PlumeError('provider', 'the account lists no enabled regions', 'set [aws] regions explicitly');
  return {
    ...settings,
    locations: [settings.primaryLocation, ...all.filter((r) => r !== settings.primaryLocation)],
  };
}

export interface PlanDeps {
  config: PlumeConfig;
  registry: SystemRegistry;
  log: Logger;
  /** Read local files (the CLI allows it for paths a person typed; joystick never does). */
  allowFiles: boolean;
  overrides?: Overrides;
  /** Makes a provider for a target (profile and partition differ per target). */
  provider: (settings: TargetSettings) => Provider;
  signal?: AbortSignal;
}

export interface PlannedRelease {
  plan: ReleasePlan;
  provider: Provider;
  policy: SourcePolicy;
  system: System;
}

/** From a request to the plans that carry it out: locate the source (I/O), then plan (pure) per target. */
export async function planRelease(request: ReleaseRequest, deps: PlanDeps): Promise<PlannedRelease[]> {
  const system = deps.registry.get(request.system);
  const policy = sourcePolicy(deps.config, system, deps.allowFiles);
  const facts = await system.locate(request, {
    policy,
    log: deps.log,
    signal: deps.signal,
    settings: deps.config.systems[system.name],
  });
  const out: PlannedRelease[] = [];
  for (const raw of targetSettings(deps.config, system, request, deps.overrides)) {
    const provider = deps.provider(raw);
    const settings = await resolveLocations(raw, provider, deps.log);
    out.push({ plan: system.plan(facts, settings), provider, policy, system });
  }
  return out;
}

export function makeAwsProvider(
  config: PlumeConfig,
  opts: { onRetry?: (errorType: string) => void } = {},
): (settings: TargetSettings) => Provider {
  const cache = new Map<string, AwsProvider>();
  return (settings) => {
    const key = settings.profile ?? '';
    let p = cache.get(key);
    if (!p) {
      const s = awsProviderSettings(config, settings.profile);
      cache.set(key, (p = new AwsProvider(s, new AwsClients(s.client, opts.onRetry))));
    }
    return p;
  };
}
