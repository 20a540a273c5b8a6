import { PlumeError } from '../../../shared/errors.js';
import { parseSettings } from '../../../shared/toml.js';
import type { PlumeConfig } from '../../config.js';
import { mergeTargetSettings, type TargetPlan, type TargetSettings } from '../../plan.js';
import type { ProviderFactory, ProviderModule } from '../module.js';
import { AwsClients } from './clients.js';
import { AwsProvider, type AwsProviderSettings } from './provider.js';
import { AwsPruner } from './prune.js';
import { AwsTargetToml, awsImage, completeImage, fromToml, type AwsTargetExtras } from './settings.js';

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
    uploadLeaseMs: a.upload_lease_seconds * 1000,
  };
}

function extras(s: TargetSettings): AwsTargetExtras {
  return s.settings as unknown as AwsTargetExtras;
}

/** AWS: EBS snapshots made with the EBS direct APIs, one AMI per region and root volume type. */
export const awsModule: ProviderModule = {
  name: 'aws',
  description: 'Amazon EC2: an EBS snapshot, one AMI per region and root volume type',

  enabled: (config) => config.aws.enabled,

  targetSettings(config, layers, overrides) {
    const a = config.aws;
    const base: TargetSettings = {
      provider: 'aws',
      name: 'aws',
      primaryLocation: a.base_region,
      locations: a.regions === 'all' ? [] : a.regions,
      variants: a.volume_types,
      visibility: { public: a.visibility === 'public', accounts: a.share_with },
      deprecateAfterDays: a.deprecate_after_days || undefined,
      volumeGiB: a.volume_size_gib,
      settings: {
        partition: a.partition,
        ...(a.profile ? { profile: a.profile } : {}),
        imdsV2: a.imds_v2,
      } satisfies AwsTargetExtras,
    };
    const targets = layers.map((list) =>
      mergeTargetSettings(
        base,
        ...list.map((l) => ({
          ...fromToml(parseSettings(AwsTargetToml, l.table, l.where)),
          ...(l.name ? { name: l.name } : {}),
        })),
      ),
    );
    // One region list or profile cannot be right for targets in different partitions (commercial, GovCloud).
    const partitions = new Set(targets.map((t) => extras(t).partition));
    if (
      targets.length > 1 &&
      (overrides.baseRegion || overrides.regions || (overrides.profile && partitions.size > 1))
    )
      throw new PlumeError(
        'usage',
        `this channel publishes to ${targets.length} AWS targets (${targets.map((t) => t.name).join(', ')}); ${overrides.profile ? '--aws-profile' : '--regions / --base-region'} would apply to all of them`,
        "set them per target in the system's section of the config file",
      );
    return targets.map((t) => {
      const s: TargetSettings = { ...t, settings: { ...t.settings } };
      if (overrides.baseRegion) s.primaryLocation = overrides.baseRegion;
      if (overrides.regions) s.locations = overrides.regions;
      if (overrides.volumeTypes) s.variants = overrides.volumeTypes;
      if (overrides.visibility) s.visibility = { ...s.visibility, public: overrides.visibility === 'public' };
      if (overrides.shareWith) s.visibility = { ...s.visibility, accounts: overrides.shareWith };
      if (overrides.profile) s.settings.profile = overrides.profile;
      if (overrides.credentialsFile) s.settings.profile ??= 'default';
      if (s.locations.length > 0 && !s.locations.includes(s.primaryLocation))
        s.locations = [s.primaryLocation, ...s.locations];
      return s;
    });
  },

  check(plan: TargetPlan): TargetPlan {
    return { ...plan, settings: { ...completeImage(plan) } };
  },

  describe(plan: TargetPlan) {
    const s = awsImage(plan);
    return [
      `aws:         ${s.partition}${s.profile ? `, profile ${s.profile}` : ''}, upload to ${plan.primaryLocation}`,
      `image:       ${s.architecture}, boot ${s.bootMode}, ENA ${s.enaSupport}, SR-IOV ${s.sriovNetSupport ?? 'none'}, IMDS ${s.imdsSupport ?? 'v1 allowed'}, root ${s.rootDeviceName}`,
    ];
  },

  pruner(config, overrides, hooks = {}) {
    const a = config.aws;
    const s = awsProviderSettings(config, overrides.profile);
    const provider = new AwsProvider(s, new AwsClients(s.client, hooks.onRetry));
    const primary = overrides.baseRegion ?? a.base_region;
    return {
      pruner: new AwsPruner(provider),
      primary,
      locations: overrides.regions ?? (a.regions === 'all' ? [] : a.regions),
      close: () => provider.destroy(),
    };
  },

  factory(config, hooks = {}): ProviderFactory {
    const cache = new Map<string, AwsProvider>();
    return (target) => {
      const profile = (target.settings as { profile?: string }).profile;
      const key = profile ?? '';
      let p = cache.get(key);
      if (!p) {
        const s = awsProviderSettings(config, profile);
        cache.set(key, (p = new AwsProvider(s, new AwsClients(s.client, hooks.onRetry, hooks.log))));
      }
      return p;
    };
  },
};
