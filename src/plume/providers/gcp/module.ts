import { parseSettings } from '../../../shared/toml.js';
import type { PlumeConfig } from '../../config.js';
import { mergeTargetSettings, type TargetPlan, type TargetSettings } from '../../plan.js';
import type { ProviderFactory, ProviderModule } from '../module.js';
import { GcpConfig } from './config.js';
import { PlumeError } from '../../../shared/errors.js';
import { GcpProvider, type GcpProviderSettings } from './provider.js';
import { GcpPruner } from './prune.js';
import { GcpTargetToml, completeImage, fromToml, gcpImage, type GcpTargetExtras } from './settings.js';

export function gcpProviderSettings(config: PlumeConfig): GcpProviderSettings {
  const g = config.gcp ?? GcpConfig.parse({});
  return {
    client: {
      computeEndpoint: g.compute_endpoint,
      storageEndpoint: g.storage_endpoint,
      requestTimeoutMs: g.request_timeout_seconds * 1000,
      maxAttempts: g.max_attempts,
    },
    chunkBytes: g.upload_chunk_mib * 2 ** 20,
    operationTimeoutMs: g.operation_wait_minutes * 60_000,
    pollMinMs: g.poll_min_ms,
    pollMaxMs: g.poll_max_ms,
    retryBaseMs: g.retry_base_ms,
    retryMaxMs: g.retry_max_ms,
  };
}

/** GCE's images are global: a target has one, in the one location plume calls `global`. */
export const GLOBAL = 'global';

/** Google Compute Engine: the tarball staged in Cloud Storage, one global image per target. */
export const gcpModule: ProviderModule = {
  name: 'gcp',
  description:
    'Google Compute Engine: the image tarball staged in Cloud Storage, one global image per target',

  enabled: (config) => config.gcp !== undefined && config.gcp.enabled,

  targetSettings(config, layers, overrides) {
    const g = config.gcp ?? GcpConfig.parse({});
    const base: TargetSettings = {
      provider: 'gcp',
      name: 'gcp',
      primaryLocation: GLOBAL,
      locations: [GLOBAL],
      variants: ['image'],
      visibility: { public: g.visibility === 'public', accounts: g.share_with },
      deprecateAfterDays: g.deprecate_after_days || undefined,
      settings: {
        ...(g.project ? { project: g.project } : {}),
        ...(g.bucket ? { bucket: g.bucket } : {}),
        ...(g.json_key ? { jsonKey: g.json_key } : {}),
        licenses: g.licenses,
        storageLocations: g.storage_locations,
      } satisfies GcpTargetExtras,
    };
    return layers.map((list) => {
      const s = mergeTargetSettings(
        base,
        ...list.map((l) => ({
          ...fromToml(parseSettings(GcpTargetToml, l.table, l.where)),
          ...(l.name ? { name: l.name } : {}),
        })),
      );
      const out: TargetSettings = { ...s, settings: { ...s.settings } };
      if (overrides.visibility)
        out.visibility = { ...out.visibility, public: overrides.visibility === 'public' };
      if (overrides.gceJsonKey) out.settings.jsonKey = overrides.gceJsonKey;
      return out;
    });
  },

  check(plan: TargetPlan): TargetPlan {
    return { ...plan, settings: { ...completeImage(plan) } };
  },

  describe(plan: TargetPlan) {
    const s = gcpImage(plan);
    return [
      `gcp:         project ${s.project}, staged in gs://${s.bucket}, data in ${s.storageLocations.join(', ')}${s.jsonKey ? `, key ${s.jsonKey}` : ''}`,
      `image:       ${s.architecture}, family ${s.family}, features ${s.guestOsFeatures.join(', ') || 'none'}${s.licenses.length ? `, licenses ${s.licenses.join(', ')}` : ''}`,
    ];
  },

  pruner(config, overrides) {
    const g = config.gcp ?? GcpConfig.parse({});
    if (!g.project)
      throw new PlumeError(
        'usage',
        'prune on gcp needs [gcp] project',
        'set project in [gcp] of the config file',
      );
    const provider = new GcpProvider(gcpProviderSettings(config));
    const jsonKey = overrides.gceJsonKey ?? g.json_key;
    return {
      pruner: new GcpPruner(provider, { project: g.project, ...(jsonKey ? { jsonKey } : {}) }),
      primary: GLOBAL,
      locations: [GLOBAL],
      close: () => void provider.destroy(),
    };
  },

  factory(config): ProviderFactory {
    let provider: GcpProvider | undefined;
    return () => (provider ??= new GcpProvider(gcpProviderSettings(config)));
  },
};
