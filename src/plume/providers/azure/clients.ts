import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as ArmCompute from '@azure/arm-compute';
import type { ComputeManagementClient } from '@azure/arm-compute';
import type * as Identity from '@azure/identity';
import type { TokenCredential } from '@azure/identity';
import type * as StorageBlob from '@azure/storage-blob';
import type { BlobServiceClient } from '@azure/storage-blob';
import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import { checkSecretFile } from '../../../shared/secret-file.js';
import { assertTlsVerified } from '../../source/policy.js';

/** Entra ID authorities MSAL knows; any other (Azure Stack, a local emulator) is used without discovery. */
const KNOWN_AUTHORITIES = ['login.microsoftonline.com', 'login.microsoftonline.us', 'login.chinacloudapi.cn'];

export interface AzureClientSettings {
  /** A service principal's credentials file (mantle's --azure-profile); DefaultAzureCredential otherwise. */
  profile?: string;
  armEndpoint?: string;
  blobEndpoint?: string;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  requestTimeoutMs: number;
}

/**
 * The credentials file `az ad sp create-for-rbac --sdk-auth` writes (what mantle's Azure flags read): the
 * service principal, its subscription and, for a sovereign cloud or a private endpoint, where Entra ID and
 * Resource Manager answer. `storageAccountKey` (plume's addition) signs blob requests with the account key
 * instead of the principal's token, for storage accounts that do not take Entra ID.
 */
const ProfileFile = z.looseObject({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  tenantId: z.string().min(1),
  subscriptionId: z.string().min(1).optional(),
  activeDirectoryEndpointUrl: z.url().optional(),
  resourceManagerEndpointUrl: z.url().optional(),
  storageAccountKey: z.string().min(1).optional(),
});
type ProfileFile = z.infer<typeof ProfileFile>;

export function readProfile(path: string): ProfileFile {
  checkSecretFile(path, 'Azure profile', { kind: 'usage' });
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new PlumeError('usage', `cannot read Azure profile ${path}: ${(err as Error).message}`);
  }
  const parsed = ProfileFile.safeParse(raw);
  if (!parsed.success)
    throw new PlumeError(
      'usage',
      `${path} is not an Azure service principal's credentials file: ${parsed.error.issues[0]!.path.join('.') || 'its content'}: ${parsed.error.issues[0]!.message}`,
      'write it with `az ad sp create-for-rbac --sdk-auth` (clientId, clientSecret, tenantId, subscriptionId)',
    );
  return parsed.data;
}

/**
 * Microsoft's clients, loaded when an Azure client is first made rather than when plume starts (0.35 s and
 * 50 MB that `--help` and every run without an Azure target would otherwise pay).
 */
function azureSdk(): {
  compute: typeof ArmCompute;
  identity: typeof Identity;
  blob: typeof StorageBlob;
} {
  const load = createRequire(import.meta.url);
  return {
    compute: load('@azure/arm-compute') as typeof ArmCompute,
    identity: load('@azure/identity') as typeof Identity,
    blob: load('@azure/storage-blob') as typeof StorageBlob,
  };
}

function credentialFrom(profile: ProfileFile | undefined): TokenCredential {
  const { ClientSecretCredential, DefaultAzureCredential } = azureSdk().identity;
  if (!profile) return new DefaultAzureCredential();
  const authority = profile.activeDirectoryEndpointUrl;
  const known = !authority || KNOWN_AUTHORITIES.includes(new URL(authority).hostname);
  return new ClientSecretCredential(profile.tenantId, profile.clientId, profile.clientSecret, {
    ...(authority ? { authorityHost: authority } : {}),
    // MSAL would ask Microsoft's public discovery endpoint about an authority it does not know.
    ...(known ? {} : { disableInstanceDiscovery: true }),
  });
}

/** Resource Manager (the gallery) and Blob storage (the VHD) clients of one subscription and account. */
export class AzureClients {
  readonly compute: ComputeManagementClient;
  readonly blobs: BlobServiceClient;
  /** Who the clients act as, for the record: never a secret. */
  readonly identity: string;

  constructor(settings: AzureClientSettings, subscription: string, storageAccount: string) {
    assertTlsVerified();
    const profile = settings.profile ? readProfile(settings.profile) : undefined;
    const credential = credentialFrom(profile);
    this.identity = profile ? `service principal ${profile.clientId}` : 'DefaultAzureCredential';
    const armEndpoint = settings.armEndpoint ?? profile?.resourceManagerEndpointUrl;
    const { compute, blob } = azureSdk();
    this.compute = new compute.ComputeManagementClient(credential, subscription, {
      ...(armEndpoint ? { endpoint: armEndpoint.replace(/\/+$/, '') } : {}),
      retryOptions: {
        maxRetries: settings.maxAttempts - 1,
        retryDelayInMs: settings.retryBaseMs,
        maxRetryDelayInMs: settings.retryMaxMs,
      },
    });
    const blobEndpoint = settings.blobEndpoint ?? `https://${storageAccount}.blob.core.windows.net`;
    const key = profile?.storageAccountKey ?? process.env.AZURE_STORAGE_KEY;
    this.blobs = new blob.BlobServiceClient(
      blobEndpoint,
      key ? new blob.StorageSharedKeyCredential(storageAccount, key) : credential,
      {
        retryOptions: {
          maxTries: settings.maxAttempts,
          retryDelayInMs: settings.retryBaseMs,
          maxRetryDelayInMs: settings.retryMaxMs,
          tryTimeoutInMs: settings.requestTimeoutMs,
        },
      },
    );
  }
}

/** The status and Azure's error code of a failed call, looking through the SDKs' error shapes. */
export function azureFailure(err: unknown): { status?: number; code?: string } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as { statusCode?: number; code?: string; message?: string };
  // A failed long-running operation is a plain Error: "The long-running operation has failed. {code}. {message}".
  const lro = /long-running operation has failed\.\s*([A-Za-z]+)\./.exec(e.message ?? '');
  return { status: e.statusCode, code: e.code ?? lro?.[1] };
}

export function isNotFound(err: unknown): boolean {
  return azureFailure(err).status === 404;
}

/**
 * Turn an SDK failure into one line a release engineer can act on; `action` is the API operation, so an
 * access error names what the identity may not do. Credentials are never part of the message.
 */
export function describeAzureError(err: unknown, action: string): PlumeError {
  if (err instanceof PlumeError) return err;
  const { status, code } = azureFailure(err);
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  const name = err instanceof Error ? err.name : '';
  if (name === 'CredentialUnavailableError' || name === 'AggregateAuthenticationError')
    return new PlumeError(
      'credentials',
      'no Azure credentials found',
      'give --azure-profile FILE (or [azure] profile), or set up DefaultAzureCredential (environment, managed identity, az login)',
      { cause: err },
    );
  if (name === 'AuthenticationError' || status === 401 || status === 403)
    return new PlumeError(
      'credentials',
      `Azure refused ${action} (${status ?? 'authentication'}${code ? ` ${code}` : ''}): ${message}`,
      "check the identity's roles: Compute Gallery Image Contributor on the gallery, Storage Blob Data Contributor on the container (see docs/azure.md)",
      { cause: err },
    );
  // A long-running operation that failed failed on Azure's side for a reason (a bad VHD, a region
  // refusing): asking again at once would fail the same way.
  const operationFailed = /long-running operation has failed/.test(message);
  return new PlumeError(
    'provider',
    `${action} failed${code ? ` (${code})` : ''}: ${message}`,
    'run again to resume; the release picks up where it stopped',
    {
      cause: err,
      retryable:
        !operationFailed && (status === undefined || status === 408 || status === 429 || status >= 500),
    },
  );
}

/** Call an operation, mapping failures to PlumeErrors that name it. */
export async function call<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw describeAzureError(err, action);
  }
}
