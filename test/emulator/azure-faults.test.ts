import { ComputeManagementClient } from '@azure/arm-compute';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startAzureEmulator, type AzureEmulator } from '../../tools/emulator/azure/index.js';
import {
  blobService,
  collect,
  compute,
  data,
  definition,
  md5,
  MIB,
  POLL,
  rejection,
  uploadVhd,
  versionOf,
} from './azure-helpers.js';

let emu: AzureEmulator;
let rg: string;
let gallery: string;

beforeAll(async () => {
  emu = await startAzureEmulator({ retryAfterSeconds: 0 });
  ({ resourceGroup: rg, gallery } = emu.arm);
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
});

async function pageBlob(name = 'disk.vhd', maxTries = 4) {
  const container = blobService(emu, maxTries).getContainerClient('vhds');
  await container.createIfNotExists();
  const blob = container.getPageBlobClient(name);
  await blob.create(4 * MIB);
  return blob;
}

const page = data(MIB, 9);
const put = (blob: Awaited<ReturnType<typeof pageBlob>>) =>
  blob.uploadPages(page, 0, page.length, { transactionalContentMD5: md5(page) });

const blobOutcomes = () =>
  emu
    .calls()
    .filter((c) => c.operation === 'PutPage')
    .map((c) => [c.status, c.fault]);

describe('faults on blob calls', () => {
  it('throttles with 503 ServerBusy, which the storage SDK retries', async () => {
    const blob = await pageBlob();
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'throttle', times: 2 });
    await put(blob);
    expect(blobOutcomes()).toEqual([
      [503, 'throttle'],
      [503, 'throttle'],
      [201, undefined],
    ]);
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'throttle' });
    const err = await rejection(put(await pageBlob('once.vhd', 1)));
    expect([err.statusCode, err.code]).toEqual([503, 'ServerBusy']);
  });

  it('answers server errors with 500 InternalError, retried', async () => {
    const blob = await pageBlob();
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'server-error', times: 1 });
    await put(blob);
    expect(blobOutcomes()).toEqual([
      [500, 'server-error'],
      [201, undefined],
    ]);
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'server-error' });
    const err = await rejection(put(await pageBlob('once.vhd', 1)));
    expect([err.statusCode, err.code]).toEqual([500, 'InternalError']);
  });

  it('denies access with 403 AuthorizationFailure, not retried', async () => {
    const blob = await pageBlob();
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'access-denied' });
    const err = await rejection(put(blob));
    expect([err.statusCode, err.code]).toEqual([403, 'AuthorizationFailure']);
    expect(blobOutcomes()).toEqual([[403, 'access-denied']]);
  });

  it('drops the connection before or after the page is written; the SDK retries both', async () => {
    const blob = await pageBlob();
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'drop', times: 1 });
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'drop-after', times: 1 });
    await put(blob);
    expect(blobOutcomes()).toEqual([
      [0, 'drop'],
      [201, 'drop-after'],
      [201, undefined],
    ]);
    expect((await blob.downloadToBuffer(0, MIB)).equals(page)).toBe(true);
  });

  it('delays calls by latencyMs', async () => {
    const blob = await pageBlob();
    emu.addFault({ service: 'blob', operation: 'PutPage', kind: 'latency', latencyMs: 200, times: 1 });
    await put(blob);
    const [call] = emu.calls().filter((c) => c.operation === 'PutPage');
    expect(call?.durationMs).toBeGreaterThanOrEqual(200);
  });

  it('answers any error asked for, in Storage shape', async () => {
    const blob = await pageBlob();
    emu.addFault({
      service: 'blob',
      operation: 'PutPage',
      kind: 'error',
      code: 'LeaseIdMissing',
      status: 412,
      message: 'There is currently a lease on the blob.',
    });
    const err = await rejection(put(blob));
    expect([err.statusCode, err.code]).toEqual([412, 'LeaseIdMissing']);
    expect(err.message).toContain('There is currently a lease on the blob.');
  });
});

describe('faults on ARM calls', () => {
  it('throttles with 429 TooManyRequests and Retry-After; the SDK waits and retries', async () => {
    emu.addFault({ service: 'arm', operation: 'Galleries_Get', kind: 'throttle', times: 2 });
    const got = await compute(emu).galleries.get(rg, gallery);
    expect(got.name).toBe(gallery);
    expect(
      emu
        .calls()
        .filter((c) => c.service === 'arm')
        .map((c) => [c.status, c.fault]),
    ).toEqual([
      [429, 'throttle'],
      [429, 'throttle'],
      [200, undefined],
    ]);
    emu.addFault({ service: 'arm', operation: 'Galleries_Get', kind: 'throttle' });
    const err = await rejection(compute(emu, 0).galleries.get(rg, gallery));
    expect([err.statusCode, err.code]).toEqual([429, 'TooManyRequests']);
  });

  it('answers server errors with 500 InternalServerError, retried by the SDK', async () => {
    emu.addFault({
      service: 'arm',
      operation: 'GalleryImages_ListByGallery',
      kind: 'server-error',
      times: 1,
    });
    expect(await collect(compute(emu).galleryImages.listByGallery(rg, gallery))).toEqual([]);
    emu.addFault({ service: 'arm', operation: 'GalleryImages_ListByGallery', kind: 'server-error' });
    const err = await rejection(collect(compute(emu, 1).galleryImages.listByGallery(rg, gallery)));
    expect([err.statusCode, err.code]).toEqual([500, 'InternalServerError']);
    expect(emu.calls().filter((c) => c.fault === 'server-error')).toHaveLength(3);
  });

  it('denies access with 403 AuthorizationFailed naming the action and scope, not retried', async () => {
    emu.addFault({ service: 'arm', operation: 'GalleryImages_CreateOrUpdate', kind: 'access-denied' });
    const err = await rejection(
      compute(emu).galleryImages.createOrUpdate(rg, gallery, 'fedora-41', definition(emu), POLL),
    );
    expect([err.statusCode, err.code]).toEqual([403, 'AuthorizationFailed']);
    expect(err.message).toContain("action 'Microsoft.Compute/galleries/images/write'");
    expect(err.message).toContain(
      `/resourceGroups/${rg}/providers/Microsoft.Compute/galleries/${gallery}/images/fedora-41`,
    );
    expect(emu.calls().filter((c) => c.fault === 'access-denied')).toHaveLength(1);
  });

  it('drops a call before it is served; the SDK retries', async () => {
    emu.addFault({ service: 'arm', operation: 'Galleries_Get', kind: 'drop', times: 1 });
    expect((await compute(emu).galleries.get(rg, gallery)).name).toBe(gallery);
    expect(
      emu
        .calls()
        .filter((c) => c.service === 'arm')
        .map((c) => [c.status, c.fault]),
    ).toEqual([
      [0, 'drop'],
      [200, undefined],
    ]);
  });

  it('drops the answer to a version create; the retried PUT finds the version and one version results', async () => {
    const client = compute(emu);
    await client.galleryImages.createOrUpdate(rg, gallery, 'fedora-41', definition(emu), POLL);
    const uri = await uploadVhd(blobService(emu).getContainerClient('vhds'), 'f41.vhd');
    emu.addFault({
      service: 'arm',
      operation: 'GalleryImageVersions_CreateOrUpdate',
      kind: 'drop-after',
      times: 1,
    });
    const v = await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.0.0',
      versionOf(emu, uri),
      POLL,
    );
    expect(v.provisioningState).toBe('Succeeded');
    expect(
      emu
        .calls()
        .filter((c) => c.operation === 'GalleryImageVersions_CreateOrUpdate')
        .map((c) => [c.status, c.fault]),
    ).toEqual([
      [201, 'drop-after'],
      [200, undefined],
    ]);
    expect(
      (await collect(client.galleryImageVersions.listByGalleryImage(rg, gallery, 'fedora-41'))).map(
        (x) => x.name,
      ),
    ).toEqual(['41.0.0']);
  });

  it('fails a version with image-failed: the create is accepted, the operation fails, the version is Failed', async () => {
    const client = compute(emu);
    await client.galleryImages.createOrUpdate(rg, gallery, 'fedora-41', definition(emu), POLL);
    const uri = await uploadVhd(blobService(emu).getContainerClient('vhds'), 'f41.vhd');
    emu.addFault({
      operation: 'GalleryImageVersions_CreateOrUpdate',
      kind: 'image-failed',
      code: 'OSProvisioningInternalError',
      message: 'copy failed',
    });
    const err = await rejection(
      client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.0.0',
        versionOf(emu, uri),
        POLL,
      ),
    );
    expect(err.message).toBe(
      'The long-running operation has failed. OSProvisioningInternalError. copy failed',
    );
    expect(
      (await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.0.0')).provisioningState,
    ).toBe('Failed');
    expect(emu.calls().find((c) => c.operation === 'GalleryImageVersions_CreateOrUpdate')).toMatchObject({
      status: 201,
      fault: 'image-failed',
    });
  });

  it('answers any error asked for, in ARM shape, and selects calls by the gallery region', async () => {
    emu.addFault({ service: 'arm', region: 'westeurope', kind: 'access-denied' });
    emu.addFault({
      service: 'arm',
      region: emu.arm.location,
      operation: 'Galleries_Get',
      kind: 'error',
      code: 'Conflict',
      status: 409,
      message: 'busy',
    });
    const err = await rejection(compute(emu).galleries.get(rg, gallery));
    expect([err.statusCode, err.code, err.message]).toEqual([409, 'Conflict', 'busy']);
    expect(emu.faultStats().map((s) => s.fired)).toEqual([0, 1]);
    expect(emu.calls().find((c) => c.operation === 'Galleries_Get')?.region).toBe('eastus');
  });

  it('faults the token endpoint like Entra ID: the credential fails with the AADSTS error', async () => {
    emu.addFault({ service: 'identity', operation: 'GetToken', kind: 'access-denied' });
    const client = new ComputeManagementClient(
      emu.credential(),
      emu.arm.subscriptionId,
      emu.armClientOptions(),
    );
    const err = await rejection(client.galleries.get(rg, gallery));
    expect(err.message).toContain('AADSTS7000215');
    expect(emu.calls().filter((c) => c.service === 'arm')).toEqual([]);
  });
});
