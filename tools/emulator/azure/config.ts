/**
 * The Azure emulator's fixed values and tuning numbers, in one place. Options of startAzureEmulator override
 * the ones marked "default".
 */

/** Azurite's well-known development account: public, documented, and the only one Azurite serves. */
export const DEV_ACCOUNT = {
  name: 'devstoreaccount1',
  key: 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
} as const;

export const DEFAULTS = {
  subscriptionId: '6d6c8b8a-0c3f-4b5e-9d0a-5c1f0e2a7b01',
  tenantId: '1f6e2d4c-3b5a-4978-8e1d-2c3b4a5f6e70',
  clientId: '8a2b3c4d-5e6f-4a1b-9c8d-7e6f5a4b3c21',
  resourceGroup: 'plume-images',
  gallery: 'plume_gallery',
  location: 'eastus',
  /** How long each target region takes to go from Replicating to Completed. */
  replicationMs: 0,
  /** The Retry-After (seconds) of throttled ARM calls and of long-running operations still running. */
  retryAfterSeconds: 1,
  /** Items per page of ARM list operations before a nextLink. */
  listPageSize: 100,
  seed: 1,
} as const;

/** What @azure/arm-compute 24.x sends for every gallery operation; older ones that share the shapes used here. */
export const API_VERSIONS = ['2025-03-03', '2024-03-03', '2023-07-03'] as const;

/** Access tokens the emulator issues live this long (seconds), as Entra ID's do by default. */
export const TOKEN_LIFETIME_S = 3599;

/** Azurite's in-memory extent store limit (MiB): a sparse test VHD writes far less. */
export const AZURITE_MEMORY_LIMIT_MB = 2048;

/** How long to wait for Azurite to answer at start (it loads slowly on a busy two-core machine). */
export const AZURITE_START_TIMEOUT_MS = 60_000;

/** Long-running operations remembered (oldest forgotten first): far more than any client polls at once. */
export const MAX_OPERATIONS = 100_000;

/** Largest ARM request body accepted: real ARM refuses requests over 4 MiB. */
export const MAX_ARM_BODY = 4 * 1024 * 1024;

/** Gallery image version name parts are Int32s. */
export const VERSION_PART_MAX = 2_147_483_647;

/** Public Azure regions (name as ARM normalises it -> display name as ARM shows it). */
export const REGIONS: Readonly<Record<string, string>> = {
  eastus: 'East US',
  eastus2: 'East US 2',
  centralus: 'Central US',
  northcentralus: 'North Central US',
  southcentralus: 'South Central US',
  westcentralus: 'West Central US',
  westus: 'West US',
  westus2: 'West US 2',
  westus3: 'West US 3',
  canadacentral: 'Canada Central',
  canadaeast: 'Canada East',
  brazilsouth: 'Brazil South',
  northeurope: 'North Europe',
  westeurope: 'West Europe',
  uksouth: 'UK South',
  ukwest: 'UK West',
  francecentral: 'France Central',
  germanywestcentral: 'Germany West Central',
  norwayeast: 'Norway East',
  swedencentral: 'Sweden Central',
  switzerlandnorth: 'Switzerland North',
  polandcentral: 'Poland Central',
  italynorth: 'Italy North',
  spaincentral: 'Spain Central',
  eastasia: 'East Asia',
  southeastasia: 'Southeast Asia',
  japaneast: 'Japan East',
  japanwest: 'Japan West',
  koreacentral: 'Korea Central',
  centralindia: 'Central India',
  southindia: 'South India',
  australiaeast: 'Australia East',
  australiasoutheast: 'Australia Southeast',
  southafricanorth: 'South Africa North',
  uaenorth: 'UAE North',
  qatarcentral: 'Qatar Central',
  israelcentral: 'Israel Central',
  mexicocentral: 'Mexico Central',
};
