import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import type { SettingsLayer } from '../../plan.js';
import { environmentName, parseSettings, providerLayer } from '../settings.js';

/**
 * `[systems.fedora]`: which account(s) and regions each environment publishes to, and per channel where
 * its composes are (for plume's old `--compose-id` command lines) and what differs from the environment.
 * An environment or channel table holds AWS's target keys at its top (as `[aws]` does) and each other
 * provider's in a sub-table (`[systems.fedora.environments.production.gcp]`); the providers validate them.
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
const Table = z.record(z.string(), z.unknown());

export const FedoraSettings = z.strictObject({
  environments: z.record(z.string(), Table).default({}),
  channels: z.record(z.string(), z.looseObject({ base_url: z.url().optional() })).default({}),
});
export type FedoraSettings = z.infer<typeof FedoraSettings>;

export function fedoraSettings(raw: Record<string, unknown> | undefined): FedoraSettings {
  return parseSettings(FedoraSettings, raw, 'systems.fedora');
}

/** What an environment means when the config says nothing about it: staging never publishes publicly. */
const DEFAULT_ENVIRONMENTS: Record<string, Record<string, unknown>> = {
  production: {},
  staging: { visibility: 'private' },
};

/** Where plume's old command lines found a channel's composes: `{base}/{compose id}/compose`. */
export const CHANNEL_BASE_URLS: Record<string, string> = {
  rawhide: 'https://kojipkgs.fedoraproject.org/compose/rawhide',
  branched: 'https://kojipkgs.fedoraproject.org/compose/branched',
  updates: 'https://kojipkgs.fedoraproject.org/compose/updates',
  cloud: 'https://kojipkgs.fedoraproject.org/compose/cloud',
};

/**
 * The one target of a Fedora release on a provider: the environment's account and places (on top of the
 * provider's section of the config), then the channel's own settings. Releases of a non-production
 * environment are keyed apart from production's (see the plan).
 */
/** Fedora's Azure image definitions are published as Fedora / Fedora-Cloud (the SKU is per release and arch). */
const AZURE_IDENTIFIER: SettingsLayer = {
  where: "fedora's Azure identifier",
  table: { publisher: 'Fedora', offer: 'Fedora-Cloud' },
};

export function environmentLayers(
  channel: string,
  environment: string | undefined,
  settings: FedoraSettings,
  provider: string,
): SettingsLayer[] {
  const env = environmentName(environment);
  const known = [...new Set([...Object.keys(DEFAULT_ENVIRONMENTS), ...Object.keys(settings.environments)])];
  if (!known.includes(env))
    throw new PlumeError(
      'usage',
      `unknown environment ${JSON.stringify(environment)} for fedora`,
      `choose one of: ${known.join(', ')} (or configure [systems.fedora.environments.${env}])`,
    );
  const { base_url: _base, ...channelTable } = settings.channels[channel] ?? {};
  const defaults = DEFAULT_ENVIRONMENTS[env] ?? {};
  return [
    ...(provider === 'azure' ? [AZURE_IDENTIFIER] : []),
    ...(Object.keys(defaults).length > 0
      ? [{ where: `the ${env} environment's defaults`, table: defaults }]
      : []),
    ...providerLayer(settings.environments[env], provider, `systems.fedora.environments.${env}`),
    ...providerLayer(channelTable, provider, `systems.fedora.channels.${channel}`),
  ];
}
