import { z } from 'zod';
import {
  azureName,
  galleryName,
  principal,
  region,
  resourceGroup,
  storageAccount,
  storageAccountType,
  storageContainer,
  subscriptionId,
} from './settings.js';

/** What a gallery shows the community about its publisher (required to share with the community). */
export const CommunityToml = z.strictObject({
  publisher_uri: z.url(),
  publisher_contact: z.email(),
  eula: z.string().min(1),
  /** 5 to 16 letters or digits: Azure adds a suffix to make the gallery's public name. */
  public_name_prefix: z.string().regex(/^[A-Za-z0-9]{5,16}$/, '5 to 16 letters or digits'),
});
export type CommunityToml = z.infer<typeof CommunityToml>;

/**
 * `[azure]`: the defaults of every Azure target (a system's `azure` tables say what differs), and how plume
 * talks to Azure. The section's presence enables Azure; `enabled = false` keeps it configured but unused.
 * Every tuning number of the provider is here, with its default.
 */
export const AzureConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** The subscription the gallery is in (or the profile's). */
  subscription: subscriptionId.optional(),
  resource_group: resourceGroup.optional(),
  /** The Azure Compute Gallery the image definitions and versions are created in. */
  gallery: galleryName.optional(),
  /** The gallery's own region: where a version is created first. */
  location: region.default('eastus'),
  /** Regions every version is replicated to (the gallery's own is always one of them). */
  regions: z.array(region).default([]),
  /** Replicas per region (more serve more simultaneous VM creations), and per-region exceptions. */
  replica_count: z.number().int().min(1).max(100).default(1),
  replicas: z.record(region, z.number().int().min(1).max(100)).default({}),
  storage_account_type: storageAccountType.default('Standard_LRS'),
  /** The storage account and container the VHD is staged in until its version exists. */
  storage_account: storageAccount.optional(),
  storage_container: storageContainer.default('plume-images'),
  /** The storage account's resource group, when it is not the gallery's. */
  storage_resource_group: resourceGroup.optional(),
  /**
   * The image definitions' identifier; the SKU is the system's (release or channel, and arch). A system
   * may give its own, which its config tables override (`[systems.NAME....azure]`).
   */
  publisher: azureName.optional(),
  offer: azureName.optional(),
  visibility: z.enum(['public', 'private']).default('public'),
  /** `subscription:ID` or `tenant:ID`: shared with these instead of the community when not public. */
  share_with: z.array(principal).default([]),
  community: CommunityToml.optional(),
  deprecate_after_days: z.number().int().nonnegative().default(0),
  /** A JSON file of service principal credentials (mantle's --azure-profile); DefaultAzureCredential otherwise. */
  profile: z.string().min(1).optional(),
  /** Resource Manager and Blob endpoints, for a sovereign cloud or a local emulator. */
  arm_endpoint: z.url().optional(),
  blob_endpoint: z.url().optional(),
  /** Bytes per Put Page (at most 4 MiB, Azure's limit); all-zero blocks of this size are not sent. */
  page_kib: z
    .number()
    .int()
    .min(64)
    .max(4096)
    .refine((n) => n % 64 === 0, 'a multiple of 64')
    .default(4096),
  upload_concurrency: z.number().int().min(1).max(64).default(8),
  max_attempts: z.number().int().min(1).max(30).default(6),
  retry_base_ms: z.number().int().positive().default(500),
  retry_max_ms: z.number().int().positive().default(30_000),
  request_timeout_seconds: z.number().positive().default(120),
  /** How long creating a version (its primary copy) and replicating it may take before plume stops waiting. */
  operation_wait_minutes: z.number().positive().default(120),
  poll_min_ms: z.number().int().positive().default(5000),
  poll_max_ms: z.number().int().positive().default(30_000),
});
export type AzureConfig = z.infer<typeof AzureConfig>;
