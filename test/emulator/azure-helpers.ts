import { createHash } from 'node:crypto';
import { ComputeManagementClient, type GalleryImage, type GalleryImageVersion } from '@azure/arm-compute';
import { BlobServiceClient, StorageSharedKeyCredential, type ContainerClient } from '@azure/storage-blob';
import { DISK_TYPE, fixedVhdFooter, type AzureEmulator } from '../../tools/emulator/azure/index.js';

export const MIB = 1024 * 1024;

/** Blob client through the fault proxy; `maxTries` 1 to see an error as it comes. */
export function blobService(emu: AzureEmulator, maxTries = 4): BlobServiceClient {
  return new BlobServiceClient(
    emu.blob.endpoint,
    new StorageSharedKeyCredential(emu.blob.accountName, emu.blob.accountKey),
    {
      retryOptions: { maxTries, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
    },
  );
}

/** Compute client with a real ClientSecretCredential against the emulator; quick retries. */
export function compute(emu: AzureEmulator, maxRetries = 3): ComputeManagementClient {
  return new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, {
    ...emu.armClientOptions(),
    retryOptions: { maxRetries, retryDelayInMs: 5, maxRetryDelayInMs: 20 },
  });
}

/** Poll long-running operations at the test's pace (the emulator is started with Retry-After 0). */
export const POLL = { updateIntervalInMs: 10 };

export function md5(data: Buffer): Uint8Array {
  return createHash('md5').update(data).digest();
}

/** A page of data whose bytes depend on `seed`. */
export function data(size: number, seed: number): Buffer {
  const b = Buffer.alloc(size);
  for (let i = 0; i < size; i += 512) b.fill((seed + i / 512) % 251 || 1, i, Math.min(size, i + 512));
  return b;
}

export interface VhdOptions {
  diskType?: number;
  cookie?: string;
  /** Bytes added to the virtual size (a size that is not a whole number of MiB when not a multiple). */
  extra?: number;
}

/**
 * A sparse fixed VHD uploaded as a page blob: `virtualMiB` MiB of disk with its first MiB written and the
 * footer at the end, as the provider would upload one. Returns the blob URI.
 */
export async function uploadVhd(
  container: ContainerClient,
  name: string,
  virtualMiB = 4,
  opts: VhdOptions = {},
): Promise<string> {
  await container.createIfNotExists();
  const virtualSize = virtualMiB * MIB + (opts.extra ?? 0);
  const blob = container.getPageBlobClient(name);
  await blob.create(virtualSize + 512);
  const first = data(MIB, 7);
  await blob.uploadPages(first, 0, first.length, { transactionalContentMD5: md5(first) });
  const footer = fixedVhdFooter(virtualSize, opts.diskType ?? DISK_TYPE.fixed, opts.cookie);
  await blob.uploadPages(footer, virtualSize, 512, { transactionalContentMD5: md5(footer) });
  return blob.url;
}

export function definition(
  emu: AzureEmulator,
  sku = '41',
  overrides: Partial<GalleryImage> = {},
): GalleryImage {
  return {
    location: emu.arm.location,
    osType: 'Linux',
    osState: 'Generalized',
    hyperVGeneration: 'V2',
    architecture: 'x64',
    identifier: { publisher: 'Fedora', offer: 'Fedora-Cloud', sku },
    features: [
      { name: 'SecurityType', value: 'TrustedLaunchSupported' },
      { name: 'DiskControllerTypes', value: 'SCSI, NVMe' },
    ],
    endOfLifeDate: new Date('2026-05-01T00:00:00Z'),
    ...overrides,
  };
}

export function versionOf(
  emu: AzureEmulator,
  uri: string,
  regions: string[] = [emu.arm.location],
): GalleryImageVersion {
  return {
    location: emu.arm.location,
    publishingProfile: {
      targetRegions: regions.map((name) => ({
        name,
        regionalReplicaCount: 1,
        storageAccountType: 'Standard_LRS',
      })),
      endOfLifeDate: new Date('2026-05-01T00:00:00Z'),
      excludeFromLatest: false,
    },
    storageProfile: { osDiskImage: { source: { uri, storageAccountId: emu.arm.storageAccountId } } },
  };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to fail, it succeeded');
}

export async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
