import { PlumeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { PlumeConfig } from './config.js';
import type { ReleasePlan, TargetSettings } from './plan.js';
import type { Overrides, ProviderFactory } from './providers/module.js';
import { providerModule, providerNames } from './providers/registry.js';
import { fetchDocument } from './source/fetch.js';
import { DEFAULT_SOURCE_POLICY, checkSource, type SourcePolicy } from './source/policy.js';
import type { SystemRegistry } from './systems/registry.js';
import type { ReleaseRequest, SourceAccess, System } from './systems/types.js';

export type { Overrides } from './providers/module.js';

export function sourcePolicy(config: PlumeConfig, system: System, allowFiles: boolean): SourcePolicy {
  return {
    ...DEFAULT_SOURCE_POLICY,
    allowedHosts: [...new Set([...system.sourceHosts(), ...config.source.allowed_hosts])],
    allowFiles,
    allowInsecureHttp: config.source.allow_insecure_http,
    attempts: config.source.attempts,
    idleTimeoutMs: config.source.idle_timeout_seconds * 1000,
    minBytesPerSecond: config.source.min_rate_bytes_per_second,
    rateWindowMs: config.source.rate_window_seconds * 1000,
    documentTimeoutMs: config.source.document_timeout_seconds * 1000,
  };
}

/**
 * The image limits of a system: the config's `[images.systems.NAME]`, else the system's own, else `[images]`.
 * Pure.
 */
export function imageLimits(
  config: PlumeConfig,
  system: Pick<System, 'name' | 'imageLimits'>,
): { minDataBytes: number; maxVolumeGiB: number } {
  const own = system.imageLimits?.() ?? {};
  const configured = config.images.systems[system.name] ?? {};
  const minDataMiB = configured.min_data_mib ?? own.minDataMiB ?? config.images.min_data_mib;
  return {
    minDataBytes: Math.round(minDataMiB * 2 ** 20),
    maxVolumeGiB: configured.max_volume_gib ?? own.maxVolumeGiB ?? config.images.max_volume_gib,
  };
}

/** What systems read their sources through: the policy applied to every location and document. */
export function sourceAccess(policy: SourcePolicy, signal?: AbortSignal): SourceAccess {
  return {
    check: (location) => checkSource(location, policy),
    document: (url) => fetchDocument(url, policy, signal),
  };
}

/**
 * The providers a request publishes to: those it names (mantle's `--platform`), each one the system must
 * publish to; otherwise every provider the system publishes to and the config enables.
 */
export function platformsFor(config: PlumeConfig, system: System, request: ReleaseRequest): string[] {
  const supported = system.providers();
  if (request.platforms && request.platforms.length > 0) {
    for (const p of request.platforms) {
      providerModule(p);
      if (!supported.includes(p))
        throw new PlumeError(
          'usage',
          `${system.name} does not publish to ${p}`,
          `choose among: ${supported.join(', ')}`,
        );
    }
    return providerNames().filter((p) => request.platforms!.includes(p));
  }
  const enabled = providerNames().filter((p) => supported.includes(p) && providerModule(p).enabled(config));
  if (enabled.length === 0)
    throw new PlumeError(
      'usage',
      `no provider ${system.name} publishes to is enabled in the config (${supported.join(', ')})`,
      'enable one (e.g. [aws] enabled = true) or name it with --platform',
    );
  return enabled;
}

/**
 * The targets of a request, provider by provider: the config's section, then what the system's channel
 * says, then the command line. `regions = "all"` stays unresolved here (it needs the cloud) and is marked
 * by an empty list.
 */
export function targetSettings(
  config: PlumeConfig,
  system: System,
  request: ReleaseRequest,
  overrides: Overrides = {},
  platforms = platformsFor(config, system, request),
): TargetSettings[] {
  return platforms.flatMap((p) => {
    const layers = system.channelTargets?.(
      request.channel,
      request.environment,
      config.systems[system.name] ?? {},
      p,
    ) ?? [[]];
    return providerModule(p).targetSettings(config, layers, overrides);
  });
}

/** Resolve `regions = "all"` against the account, with the primary location first. */
export async function resolveLocations(
  settings: TargetSettings,
  providers: ProviderFactory,
  log: Logger,
): Promise<TargetSettings> {
  if (settings.locations.length > 0) return settings;
  const all = await providers(settings).listLocations(settings.primaryLocation, {
    log,
    emit: () => undefined,
  });
  if (all.length === 0)
    throw new PlumeError(
      'provider',
      `the ${settings.name} account lists no enabled regions`,
      `set the regions of ${settings.provider} explicitly in the config`,
    );
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
  /** Makes the provider for a target (account and credentials differ per target). */
  providers: ProviderFactory;
  signal?: AbortSignal;
}

export interface PlannedRelease {
  plan: ReleasePlan;
  providers: ProviderFactory;
  policy: SourcePolicy;
  system: System;
}

/**
 * From a request to the plan that carries it out: the targets' settings, the source located (I/O), the
 * plan made (pure), and each target checked and completed by its provider.
 */
export async function planRelease(request: ReleaseRequest, deps: PlanDeps): Promise<PlannedRelease> {
  const system = deps.registry.get(request.system);
  const platforms = platformsFor(deps.config, system, request);
  const settings = targetSettings(deps.config, system, request, deps.overrides, platforms);
  const policy = sourcePolicy(deps.config, system, deps.allowFiles);
  const facts = await system.locate(request, {
    source: sourceAccess(policy, deps.signal),
    log: deps.log,
    signal: deps.signal,
    settings: deps.config.systems[system.name],
    providers: platforms,
  });
  const resolved: TargetSettings[] = [];
  for (const s of settings) resolved.push(await resolveLocations(s, deps.providers, deps.log));
  const plan = system.plan(facts, resolved);
  const limits = imageLimits(deps.config, system);
  return {
    plan: {
      ...plan,
      targets: plan.targets.map((t) =>
        providerModule(t.provider).check({ ...t, source: { ...t.source, ...limits } }),
      ),
    },
    providers: deps.providers,
    policy,
    system,
  };
}
