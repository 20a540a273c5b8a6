/** Shapes of the Azure emulator's handle and of what its standalone entry prints (plain JSON). */
import type { ReplicationMode } from './replication.js';

export type { ReplicationMode };

export interface AzureEmulatorOptions {
  /** Names the emulator pre-creates (defaults in config.ts). */
  subscriptionId?: string;
  tenantId?: string;
  resourceGroup?: string;
  gallery?: string;
  /** The gallery's and the storage account's region (default eastus). */
  location?: string;
  /** Default time each target region takes to replicate a version (default 0). */
  replicationMs?: number;
  /** Retry-After (s) of throttled ARM calls and running operations (default 1; 0 to poll at the client's pace). */
  retryAfterSeconds?: number;
  /** Items per page of ARM lists (default 100). */
  listPageSize?: number;
  /** Seed for fault probabilities (default 1). */
  seed?: number;
  /** Ports (default: free ones). */
  blobPort?: number;
  armPort?: number;
}

/** Everything a client in any process needs to reach the emulator. */
export interface AzureEndpoints {
  blob: {
    /** What BlobServiceClient takes: http://127.0.0.1:PORT/devstoreaccount1 (the fault proxy). */
    endpoint: string;
    accountName: string;
    accountKey: string;
    /** Azurite itself, past every fault (for debugging). */
    azuriteEndpoint: string;
  };
  arm: {
    /** https://127.0.0.1:PORT: ComputeManagementClient's `endpoint`. */
    endpoint: string;
    /** The same server as Entra ID: ClientSecretCredential's `authorityHost`. */
    authorityHost: string;
    tenantId: string;
    clientId: string;
    clientSecret: string;
    subscriptionId: string;
    resourceGroup: string;
    gallery: string;
    location: string;
    /** The storage account's resource id, for storageProfile.osDiskImage.source.storageAccountId. */
    storageAccountId: string;
    /** The server's self-signed certificate (PEM): the one CA a client must trust for this endpoint. */
    ca: string;
  };
  /** Where the control API (/__emulator/) answers, over plain HTTP. */
  controlEndpoint: string;
}
