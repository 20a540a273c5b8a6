import { parseSettings } from '../../../shared/toml.js';
import type { PlumeConfig } from '../../config.js';
import { mergeTargetSettings, type TargetPlan, type TargetSettings } from '../../plan.js';
import type { ProviderFactory, ProviderModule } from '../module.js';
import { AzureConfig } from './config.js';
import { PlumeError } from '../../../shared/errors.js';
import { AzureProvider, blobName, type AzureProviderSettings } from './provider.js';
import { AzurePruner } from './prune.js';
import { AzureTargetToml, azureImage, completeImage, fromToml, type AzureTargetExtras } from './settings.js';

export function azureProviderSettings(config: PlumeConfig): AzureProviderSettings {
  const a = config.azure ?? AzureConfig.parse({});
  return {
    client: {
      profile: a.profile,
      armEndpoint: a.arm_endpoint,
      blobEndpoint: a.blob_endpoint,
      maxAttempts: a.max_attempts,
      retryBaseMs: a.retry_base_ms,
      retryMaxMs: a.retry_max_ms,
      requestTimeoutMs: a.request_timeout_seconds * 1000,
    },
    pageBytes: a.page_kib * 1024,
    uploadConcurrency: a.upload_concurrency,
    operationTimeoutMs: a.operation_wait_minutes * 60_000,
    pollMinMs: a.poll_min_ms,
    pollMaxMs: a.poll_max_ms,
  };
}

/** Azure: the fixed VHD staged as a page blob, one gallery image version per target, replicated to regions. */
export const azureModule: ProviderModule = {
  name: 'azure',
  description:
    'Azure: the fixed VHD staged as a page blob, one Compute Gallery image version replicated to every region',

  enabled: (config) => config.azure !== undefined && config.azure.enabled,

  targetSettings(config, layers, overrides) {
    const a = config.azure ?? AzureConfig.parse({});
    const base: TargetSettings = {
      provider: 'azure',
      name: 'azure',
      primaryLocation: a.location,
      locations: a.regions,
      variants: ['version'],
      visibility: { public: a.visibility === 'public', accounts: a.share_with },
      deprecateAfterDays: a.deprecate_after_days || undefined,
      settings: {
        ...(a.subscription ? { subscription: a.subscription } : {}),
        ...(a.resource_group ? { resourceGroup: a.resource_group } : {}),
        ...(a.gallery ? { gallery: a.gallery } : {}),
        ...(a.storage_account ? { storageAccount: a.storage_account } : {}),
        ...(a.storage_resource_group ? { storageResourceGroup: a.storage_resource_group } : {}),
        ...(a.profile ? { profile: a.profile } : {}),
        ...(a.community ? { community: a.community } : {}),
        storageContainer: a.storage_container,
        ...(a.publisher ? { publisher: a.publisher } : {}),
        ...(a.offer ? { offer: a.offer } : {}),
        replicaCount: a.replica_count,
        replicas: a.replicas,
        storageAccountType: a.storage_account_type,
      } satisfies AzureTargetExtras,
    };
    return layers.map((list) => {
      const s = mergeTargetSettings(
        base,
        ...list.map((l) => ({
          ...fromToml(parseSettings(AzureTargetToml, l.table, l.where)),
          ...(l.name ? { name: l.name } : {}),
        })),
      );
      const out: TargetSettings = { ...s, settings: { ...s.settings } };
      if (overrides.visibility)
        out.visibility = { ...out.visibility, public: overrides.visibility === 'public' };
      if (overrides.azureProfile) out.settings.profile = overrides.azureProfile;
      // The gallery's own region holds the first copy: it is always one of the version's regions.
      out.locations = [out.primaryLocation, ...out.locations.filter((l) => l !== out.primaryLocation)];
      return out;
    });
  },

  check(plan: TargetPlan): TargetPlan {
    return { ...plan, settings: { ...completeImage(plan) } };
  },

  describe(plan: TargetPlan) {
    const s = azureImage(plan);
    const share = plan.visibility.public
      ? 'shared with the community'
      : plan.visibility.accounts.length
        ? `shared with ${plan.visibility.accounts.join(', ')}`
        : 'sharing unchanged';
    return [
      `azure:       subscription ${s.subscription}, gallery ${s.resourceGroup}/${s.gallery} (${share}), staged in ${s.storageAccount}/${s.storageContainer}/${blobName(plan)}${s.profile ? `, profile ${s.profile}` : ''}`,
      `image:       definition ${s.definition} (${s.publisher}/${s.offer}/${s.sku}, ${s.architecture}, ${s.hyperVGeneration}${s.features.length ? `, ${s.features.map((f) => `${f.name}=${f.value}`).join(', ')}` : ''}), version ${s.version}${s.excludeFromLatest ? ', excluded from latest' : ''}, ${s.replicaCount} replica(s) per region, ${s.storageAccountType}`,
    ];
  },

  pruner(config, overrides) {
    const a = config.azure ?? AzureConfig.parse({});
    const profile = overrides.azureProfile ?? a.profile;
    const { subscription, resource_group: resourceGroup, gallery, storage_account: storageAccount } = a;
    if (!subscription || !resourceGroup || !gallery || !storageAccount)
      throw new PlumeError(
        'usage',
        'prune on azure needs [azure] subscription, resource_group, gallery and storage_account',
        'set them in [azure] of the config file',
      );
    const provider = new AzureProvider(azureProviderSettings(config));
    return {
      pruner: new AzurePruner(provider, {
        subscription,
        resourceGroup,
        gallery,
        storageAccount,
        ...(profile ? { profile } : {}),
      }),
      // Azure's images live in one gallery: the one place prune looks.
      primary: gallery,
      locations: [gallery],
    };
  },

  factory(config): ProviderFactory {
    let provider: AzureProvider | undefined;
    return () => (provider ??= new AzureProvider(azureProviderSettings(config)));
  },
};
