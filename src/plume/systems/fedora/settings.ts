import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import { TargetToml, environmentName, mergeTargets, parseSettings, targetFromToml } from '../settings.js';
import type { TargetSettings } from '../types.js';

/**
 * `[systems.fedora]`: which account(s) and regions each environment publishes to, and per channel where
 * its composes are (for plume's old `--compose-id` command lines) and what differs from the environment.
 *
 * ```toml
 * [systems.fedora.environments.production]
 * profile = "fedora-prod"
 * regions = "all"
 * [systems.fedora.environments.staging]
 * profile = "fedora-stg"
 * regions = ["us-east-1", "us-east-2"]
 * share_with = ["013116697141"]
 * [systems.fedora.channels.rawhide]
 * deprecate_after_days = 30
 * ```
 */
export const FedoraSettings = z.strictObject({
  environments: z.record(z.string(), TargetToml).default({}),
  channels: z.record(z.string(), TargetToml.extend({ base_url: z.url().optional() })).default({}),
});
export type FedoraSettings = z.infer<typeof FedoraSettings>;

export function fedoraSettings(raw: Record<string, unknown> | undefined): FedoraSettings {
  return parseSettings(FedoraSettings, raw, 'systems.fedora');
}

/** What an environment means when the config says nothing about it: staging never publishes publicly. */
const DEFAULT_ENVIRONMENTS: Record<string, Partial<TargetSettings>> = {
  production: {},
  staging: { visibility: { public: false } as TargetSettings['visibility'] },
};

/** Where plume's old command lines found a channel's composes: `{base}/{compose id}/compose`. */
export const CHANNEL_BASE_URLS: Record<string, string> = {
  rawhide: 'https://kojipkgs.fedoraproject.org/compose/rawhide',
  branched: 'https://kojipkgs.fedoraproject.org/compose/branched',
  updates: 'https://kojipkgs.fedoraproject.org/compose/updates',
  cloud: 'https://kojipkgs.fedoraproject.org/compose/cloud',
};

/**
 * The one publication target of a Fedora release: the environment's account and regions (on top of
 * `[aws]`), then the channel's own settings. A non-production environment names the target, so its
 * releases are recorded apart from production's.
 */
export function environmentTarget(
  channel: string,
  environment: string | undefined,
  settings: FedoraSettings,
): Partial<TargetSettings> {
  const env = environmentName(environment);
  const known = [...new Set([...Object.keys(DEFAULT_ENVIRONMENTS), ...Object.keys(settings.environments)])];
  if (!known.includes(env))
    throw new PlumeError(
      'usage',
      `unknown environment ${JSON.stringify(environment)} for fedora`,
      `choose one of: ${known.join(', ')} (or configure [systems.fedora.environments.${env}])`,
    );
  const { base_url: _base, ...channelToml } = settings.channels[channel] ?? {};
  return mergeTargets(
    DEFAULT_ENVIRONMENTS[env] ?? {},
    targetFromToml(settings.environments[env] ?? {}),
    targetFromToml(channelToml),
    env === 'production' ? {} : { name: env },
  );
}
