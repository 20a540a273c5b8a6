import type { Logger } from '../../shared/log.js';
import type { PlumeConfig } from '../config.js';
import type { SettingsLayer, TargetPlan, TargetSettings } from '../plan.js';
import type { ImagePruner, Provider } from './types.js';

/** What the command line may override on top of the config file and the channel. */
export interface Overrides {
  visibility?: 'public' | 'private';
  /** Principals to share with, in the provider's terms (AWS: account ids). */
  shareWith?: string[];
  /** AWS: plume's original flags. */
  baseRegion?: string;
  regions?: string[];
  volumeTypes?: string[];
  profile?: string;
  /**
   * A credentials file was given (plume's old `--aws-credentials`): targets that name no profile use its
   * `default` one, as plume did, rather than whatever the environment holds.
   */
  credentialsFile?: string;
  /** GCE: a service account's JSON key (mantle's `--gce-json-key`). */
  gceJsonKey?: string;
  /** Azure: a service principal's credentials file (mantle's `--azure-profile`). */
  azureProfile?: string;
}

/** What the runtime may ask to be told about (joystick counts retries in its metrics). */
export interface ProviderHooks {
  onRetry?: (errorType: string) => void;
  /** Where each throttling backoff is logged at WARN (with its attempt count); silent when absent. */
  log?: Logger;
}

/** Makes the provider that carries out a target (one per account and credentials, shared by its targets). */
export type ProviderFactory = (target: Pick<TargetPlan, 'provider' | 'settings'>) => Provider;

/**
 * A provider as the runtime sees it, beside the Provider that does the work: its config section, how its
 * target settings are read from config tables and flags, the checks and descriptions of its plans, and a
 * factory of Providers. Adding a cloud is adding one of these and registering it (providers/registry.ts).
 */
export interface ProviderModule {
  readonly name: string;
  readonly description: string;
  /** Whether the config publishes to it when the command line (or joystick) names no platform. */
  enabled(config: PlumeConfig): boolean;
  /**
   * The settings of each target: the config's own section, then a system's layers (one list per target;
   * `[[]]` for one target with nothing to add), then the command line. Every table is validated here, and
   * an error names the key the way the config file spells it.
   */
  targetSettings(config: PlumeConfig, layers: SettingsLayer[][], overrides: Overrides): TargetSettings[];
  /**
   * Check a planned target before anything runs (its settings, its names; a usage error says what) and
   * complete its settings with what follows from them, so a plan shows all that will be done.
   */
  check(plan: TargetPlan): TargetPlan;
  /** The provider's own lines of `--dry-run`. */
  describe(plan: TargetPlan): string[];
  /** Providers for the targets of a run. */
  factory(config: PlumeConfig, hooks?: ProviderHooks): ProviderFactory;
  /**
   * What `plume prune` works with: the pruner, the location it asks for the others, and the locations it
   * looks in (empty: every one the account has). Absent while a provider cannot prune yet.
   */
  pruner?(
    config: PlumeConfig,
    overrides: Overrides,
    hooks?: ProviderHooks,
  ): { pruner: ImagePruner; primary: string; locations: string[]; close?: () => void };
}

/** The keys every provider's config tables share: who may launch the images, and when they are deprecated. */
export interface CommonTargetToml {
  visibility?: 'public' | 'private';
  share_with?: string[];
  deprecate_after_days?: number;
}

/** Those keys, as target settings (what a table leaves out stays as the layers below say). */
export function commonFromToml(t: CommonTargetToml): Partial<TargetSettings> {
  const out: Partial<TargetSettings> = {};
  if (t.visibility || t.share_with)
    out.visibility = {
      ...(t.visibility ? { public: t.visibility === 'public' } : {}),
      ...(t.share_with ? { accounts: t.share_with } : {}),
    } as TargetSettings['visibility'];
  if (t.deprecate_after_days !== undefined) out.deprecateAfterDays = t.deprecate_after_days || undefined;
  return out;
}
