import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import type { Architecture, TargetPlan, TargetSettings } from '../../plan.js';
import type { CommunityToml } from './config.js';
import { commonFromToml } from '../module.js';

/**
 * Azure's words for what a target is: a subscription, resource group and Compute Gallery, the storage
 * account the VHD is staged in, an image definition (its identifier and features) and the version the
 * release creates in it, the regions it is replicated to and whom the gallery is shared with. Config tables
 * (`[azure]`, and `azure` tables systems give) are validated here, and so is the `settings` section of a
 * planned Azure target.
 */

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
export const subscriptionId = z.string().regex(GUID, 'a subscription id (a GUID)');
export const resourceGroup = z.string().regex(/^[-\w.()]{1,89}[-\w()]$/u, 'a resource group name');
export const galleryName = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._]{0,78}[A-Za-z0-9])?$/, 'a gallery name (letters, digits, . and _)');
/** Image definition names, publisher, offer and SKU. */
export const azureName = z
  .string()
  .regex(/^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?$/, 'letters, digits, ., - and _');
/** Programmatic region names (`eastus`, `westus2`), as the CLI and the messages spell them. */
export const region = z.string().regex(/^[a-z][a-z0-9]{2,30}$/, 'an Azure region like eastus or westus2');
export const storageAccount = z.string().regex(/^[a-z0-9]{3,24}$/, 'a storage account name');
export const storageContainer = z
  .string()
  .regex(/^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}$/, 'a blob container name');
export const storageAccountType = z.enum(['Standard_LRS', 'Standard_ZRS', 'Premium_LRS']);
/** Whom a gallery is shared with when it is not shared with the community. */
export const principal = z
  .string()
  .regex(
    /^(subscription|tenant):[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/,
    'subscription:ID or tenant:ID',
  );

/** A version name: three dot-separated integers (Int32 each), as Azure requires. */
export const VERSION_NAME = /^(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;

/** `East US` (how Azure answers) → `eastus` (how plume, the CLI and the messages name regions). */
export function regionKey(name: string): string {
  return name.toLowerCase().replace(/\s+/g, '');
}

/** Where and how a target publishes, as a config table writes it: every key optional. */
export const AzureTargetToml = z.strictObject({
  subscription: subscriptionId.optional(),
  resource_group: resourceGroup.optional(),
  gallery: galleryName.optional(),
  location: region.optional(),
  regions: z.array(region).optional(),
  replica_count: z.number().int().min(1).max(100).optional(),
  storage_account_type: storageAccountType.optional(),
  storage_account: storageAccount.optional(),
  storage_container: storageContainer.optional(),
  storage_resource_group: resourceGroup.optional(),
  publisher: azureName.optional(),
  offer: azureName.optional(),
  visibility: z.enum(['public', 'private']).optional(),
  share_with: z.array(principal).optional(),
  profile: z.string().min(1).optional(),
  deprecate_after_days: z.number().int().nonnegative().optional(),
});
export type AzureTargetToml = z.infer<typeof AzureTargetToml>;

/** The Azure-specific part of target settings (`TargetSettings.settings`), from the config. */
export interface AzureTargetExtras {
  subscription?: string;
  resourceGroup?: string;
  gallery?: string;
  storageAccount?: string;
  storageContainer?: string;
  storageResourceGroup?: string;
  profile?: string;
  publisher?: string;
  offer?: string;
  replicaCount?: number;
  replicas?: Record<string, number>;
  storageAccountType?: string;
  community?: CommunityToml;
}

export function fromToml(t: AzureTargetToml): Partial<TargetSettings> & { settings: AzureTargetExtras } {
  const out: Partial<TargetSettings> & { settings: AzureTargetExtras } = { settings: {} };
  const s = out.settings;
  if (t.subscription) s.subscription = t.subscription;
  if (t.resource_group) s.resourceGroup = t.resource_group;
  if (t.gallery) s.gallery = t.gallery;
  if (t.storage_account) s.storageAccount = t.storage_account;
  if (t.storage_container) s.storageContainer = t.storage_container;
  if (t.storage_resource_group) s.storageResourceGroup = t.storage_resource_group;
  if (t.profile) s.profile = t.profile;
  if (t.publisher) s.publisher = t.publisher;
  if (t.offer) s.offer = t.offer;
  if (t.replica_count) s.replicaCount = t.replica_count;
  if (t.storage_account_type) s.storageAccountType = t.storage_account_type;
  if (t.location) out.primaryLocation = t.location;
  if (t.regions) out.locations = t.regions;
  Object.assign(out, commonFromToml(t));
  return out;
}

/** Azure's architecture names. */
export const AZURE_ARCH: Record<Architecture, 'x64' | 'Arm64'> = { x86_64: 'x64', aarch64: 'Arm64' };

const Feature = z.strictObject({ name: z.string().min(1), value: z.string().min(1) });

const AzureImageInput = z.object({
  subscription: subscriptionId,
  resourceGroup,
  gallery: galleryName,
  storageAccount,
  storageContainer,
  storageResourceGroup: resourceGroup.optional(),
  profile: z.string().min(1).optional(),
  publisher: azureName,
  offer: azureName,
  replicaCount: z.number().int().min(1).default(1),
  replicas: z.record(z.string(), z.number().int().min(1)).default({}),
  storageAccountType: storageAccountType.default('Standard_LRS'),
  community: z
    .object({
      publisher_uri: z.string(),
      publisher_contact: z.string(),
      eula: z.string(),
      public_name_prefix: z.string(),
    })
    .optional(),
  /** The system's: the image definition, its SKU, features, and whether the version is left out of `latest`. */
  definition: azureName,
  sku: azureName,
  features: z.array(Feature).default([]),
  excludeFromLatest: z.boolean().default(false),
  architecture: z.enum(['x64', 'Arm64']).optional(),
  /** Generation 2 (UEFI) unless the system's images only boot with BIOS (Container Linux's). */
  hyperVGeneration: z.enum(['V1', 'V2']).default('V2'),
});

export interface AzureImage {
  subscription: string;
  resourceGroup: string;
  gallery: string;
  storageAccount: string;
  storageContainer: string;
  storageResourceGroup: string;
  profile?: string;
  publisher: string;
  offer: string;
  replicaCount: number;
  replicas: Record<string, number>;
  storageAccountType: 'Standard_LRS' | 'Standard_ZRS' | 'Premium_LRS';
  community?: CommunityToml;
  definition: string;
  sku: string;
  features: { name: string; value: string }[];
  excludeFromLatest: boolean;
  architecture: 'x64' | 'Arm64';
  hyperVGeneration: 'V1' | 'V2';
  /** The version's name: one for every region. */
  version: string;
}

const REQUIRED_IN_CONFIG = ['subscription', 'resourceGroup', 'gallery', 'storageAccount'];
const TOML_KEY: Record<string, string> = {
  subscription: 'subscription',
  resourceGroup: 'resource_group',
  gallery: 'gallery',
  storageAccount: 'storage_account',
};

/** The whole Azure section of a planned target from what the config and the system said; a usage error otherwise. */
export function completeImage(
  plan: Pick<TargetPlan, 'name' | 'key' | 'architecture' | 'settings' | 'images' | 'visibility'>,
): AzureImage {
  const where = `target ${plan.name} of ${plan.key}`;
  const result = AzureImageInput.safeParse(plan.settings);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = String(issue.path[0] ?? '');
    throw new PlumeError(
      'usage',
      `${where}: azure setting ${TOML_KEY[key] ?? (issue.path.join('.') || '(all)')}: ${issue.message}`,
      REQUIRED_IN_CONFIG.includes(key)
        ? `set ${TOML_KEY[key]} in [azure] of the config file`
        : 'fix the config file (or the system module that planned it)',
    );
  }
  const versions = [...new Set(plan.images.map((i) => i.name))];
  if (versions.length !== 1 || !VERSION_NAME.test(versions[0]!))
    throw new PlumeError(
      'usage',
      `${where}: ${JSON.stringify(versions.join(', '))} is not one Azure image version name`,
      'a version is named Major.Minor.Patch, three whole numbers (e.g. 41.20240911.0)',
    );
  const architecture = AZURE_ARCH[plan.architecture];
  const d = result.data;
  if (d.architecture && d.architecture !== architecture)
    throw new PlumeError(
      'usage',
      `${where} creates ${d.architecture} images of a ${plan.architecture} build`,
    );
  if (architecture === 'Arm64' && d.hyperVGeneration === 'V1')
    throw new PlumeError(
      'usage',
      `${where}: Azure runs Arm64 images on Hyper-V generation 2 only, not V1`,
      'fix the system module that planned it',
    );
  if (plan.visibility.public && !d.community)
    throw new PlumeError(
      'usage',
      `${where} shares the gallery with the community, but [azure.community] is not configured`,
      'set publisher_uri, publisher_contact, eula and public_name_prefix in [azure.community], or visibility = "private"',
    );
  return {
    ...d,
    storageResourceGroup: d.storageResourceGroup ?? d.resourceGroup,
    architecture,
    version: versions[0]!,
  };
}

const parsed = new WeakMap<object, AzureImage>();

export function azureImage(plan: TargetPlan): AzureImage {
  let image = parsed.get(plan);
  if (!image) parsed.set(plan, (image = completeImage(plan)));
  return image;
}

/** Whom the plan shares the gallery with, in the gallery sharing API's groups. */
export function sharingGroups(accounts: string[]): { subscriptions: string[]; tenants: string[] } {
  const pick = (kind: string) =>
    accounts.filter((a) => a.startsWith(`${kind}:`)).map((a) => a.slice(kind.length + 1).toLowerCase());
  return { subscriptions: pick('subscription'), tenants: pick('tenant') };
}
