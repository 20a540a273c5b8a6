import { setTimeout as sleep } from 'node:timers/promises';
import type { ComputeManagementClient } from '@azure/arm-compute';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DISK_TYPE, startAzureEmulator, type AzureEmulator } from '../../tools/emulator/azure/index.js';
import {
  blobService,
  collect,
  compute,
  definition,
  POLL,
  rejection,
  uploadVhd,
  versionOf,
  type VhdOptions,
} from './azure-helpers.js';

let emu: AzureEmulator;
let client: ComputeManagementClient;
let rg: string;
let gallery: string;

beforeAll(async () => {
  emu = await startAzureEmulator({ retryAfterSeconds: 0, listPageSize: 2 });
  client = compute(emu);
  ({ resourceGroup: rg, gallery } = emu.arm);
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
});

async function fedoraDefinition(name = 'fedora-41', sku = '41') {
  return client.galleryImages.createOrUpdate(rg, gallery, name, definition(emu, sku), POLL);
}

async function vhd(name = 'f41.vhd', opts: VhdOptions = {}, virtualMiB = 4): Promise<string> {
  return uploadVhd(blobService(emu).getContainerClient('vhds'), name, virtualMiB, opts);
}

describe('gallery image definitions', () => {
  it('creates, gets, lists page by page and deletes definitions', async () => {
    const created = await fedoraDefinition();
    expect(created).toMatchObject({
      name: 'fedora-41',
      type: 'Microsoft.Compute/galleries/images',
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      architecture: 'x64',
      identifier: { publisher: 'Fedora', offer: 'Fedora-Cloud', sku: '41' },
      provisioningState: 'Succeeded',
      endOfLifeDate: new Date('2026-05-01T00:00:00Z'),
    });
    expect(created.features).toEqual([
      { name: 'SecurityType', value: 'TrustedLaunchSupported' },
      { name: 'DiskControllerTypes', value: 'SCSI, NVMe' },
    ]);
    await client.galleryImages.createOrUpdate(
      rg,
      gallery,
      'fedora-41-arm',
      definition(emu, '41-arm64', { architecture: 'Arm64' }),
      POLL,
    );
    await fedoraDefinition('fedora-42', '42');
    const got = await client.galleryImages.get(rg, gallery, 'fedora-41-arm');
    expect(got.architecture).toBe('Arm64');

    const names = (await collect(client.galleryImages.listByGallery(rg, gallery))).map((i) => i.name);
    expect(names).toEqual(['fedora-41', 'fedora-41-arm', 'fedora-42']);
    // Two per page: the SDK followed one nextLink.
    expect(emu.calls().filter((c) => c.operation === 'GalleryImages_ListByGallery')).toHaveLength(2);

    await client.galleryImages.delete(rg, gallery, 'fedora-42', POLL);
    const err = await rejection(client.galleryImages.get(rg, gallery, 'fedora-42'));
    expect([err.statusCode, err.code]).toEqual([404, 'NotFound']);
  });

  it('takes the same definition again, but refuses to change what cannot change', async () => {
    await fedoraDefinition();
    const again = await fedoraDefinition();
    expect(again.identifier?.sku).toBe('41');
    const err = await rejection(
      client.galleryImages.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        definition(emu, '41', { hyperVGeneration: 'V1', features: [] }),
        POLL,
      ),
    );
    expect([err.statusCode, err.code]).toEqual([409, 'PropertyChangeNotAllowed']);
    expect(err.message).toContain('hyperVGeneration');
  });

  it('refuses a second definition with the same publisher, offer and sku', async () => {
    await fedoraDefinition();
    const err = await rejection(fedoraDefinition('fedora-41-copy', '41'));
    expect([err.statusCode, err.code]).toEqual([409, 'Conflict']);
  });

  it('validates what a definition says', async () => {
    const bad = async (overrides: Parameters<typeof definition>[2], name = 'bad') =>
      rejection(
        client.galleryImages.createOrUpdate(rg, gallery, name, definition(emu, 'x', overrides), POLL),
      );
    for (const [overrides, target] of [
      [{ osType: 'Solaris' }, 'osType'],
      [{ osState: 'Frozen' }, 'osState'],
      [{ hyperVGeneration: 'V3' }, 'hyperVGeneration'],
      [{ architecture: 'riscv64' }, 'architecture'],
      [{ architecture: 'Arm64', hyperVGeneration: 'V1', features: [] }, 'hyperVGeneration'],
      [{ hyperVGeneration: 'V1' }, 'hyperVGeneration'], // TrustedLaunch needs V2
      [{ features: [{ name: 'Teleport', value: 'True' }] }, 'features[0].name'],
      [{ identifier: { publisher: 'Fedora', offer: '', sku: 'x' } }, 'identifier.offer'],
    ] as const) {
      const err = await bad(overrides as never);
      // A long-running operation's first answer reaches the caller without its body: the message names the field.
      expect([err.statusCode, err.code], JSON.stringify(overrides)).toEqual([400, 'InvalidParameter']);
      expect(err.message).toContain(target);
    }
    const name = await bad({}, '-starts-with-a-dash');
    expect([name.statusCode, name.code]).toEqual([400, 'InvalidParameter']);
  });

  it('refuses to delete a definition that still has versions', async () => {
    await fedoraDefinition();
    await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.20240911.0',
      versionOf(emu, await vhd()),
      POLL,
    );
    const err = await rejection(client.galleryImages.delete(rg, gallery, 'fedora-41', POLL));
    expect([err.statusCode, err.code]).toEqual([409, 'CannotDeleteResource']);
    expect(err.message).toContain('images/fedora-41/versions/41.20240911.0');
    await client.galleryImageVersions.delete(rg, gallery, 'fedora-41', '41.20240911.0', POLL);
    await client.galleryImages.delete(rg, gallery, 'fedora-41', POLL);
    expect(await collect(client.galleryImages.listByGallery(rg, gallery))).toEqual([]);
  });

  it('answers 404 with ARM codes for what does not exist', async () => {
    const noGallery = await rejection(client.galleries.get(rg, 'nope'));
    expect([noGallery.statusCode, noGallery.code]).toEqual([404, 'ResourceNotFound']);
    const noGroup = await rejection(client.galleries.get('no-such-group', gallery));
    expect([noGroup.statusCode, noGroup.code]).toEqual([404, 'ResourceGroupNotFound']);
    const noVersion = await rejection(client.galleryImageVersions.get(rg, gallery, 'fedora-41', '1.0.0'));
    expect([noVersion.statusCode, noVersion.code]).toEqual([404, 'NotFound']);
  });
});

describe('gallery image versions', () => {
  it('becomes Succeeded from a fixed VHD blob, every target region Completed', async () => {
    await fedoraDefinition();
    const uri = await vhd('f41.vhd', {}, 2048);
    const created = await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.20240911.0',
      versionOf(emu, uri, ['eastus', 'West US 2', 'northeurope']),
      POLL,
    );
    expect(created.provisioningState).toBe('Succeeded');
    expect(created.storageProfile?.osDiskImage).toMatchObject({
      sizeInGB: 2,
      source: { uri, storageAccountId: emu.arm.storageAccountId },
    });
    expect(created.publishingProfile?.targetRegions?.map((r) => r.name)).toEqual([
      'East US',
      'West US 2',
      'North Europe',
    ]);
    const got = await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.20240911.0', {
      expand: 'ReplicationStatus',
    });
    expect(got.replicationStatus).toEqual({
      aggregatedState: 'Completed',
      summary: ['East US', 'West US 2', 'North Europe'].map((region) => ({
        region,
        state: 'Completed',
        details: '',
        progress: 100,
      })),
    });
    expect(got.publishingProfile).toMatchObject({
      excludeFromLatest: false,
      endOfLifeDate: new Date('2026-05-01T00:00:00Z'),
    });
    const listed = await collect(client.galleryImageVersions.listByGalleryImage(rg, gallery, 'fedora-41'));
    expect(listed.map((v) => [v.name, v.provisioningState, v.replicationStatus])).toEqual([
      ['41.20240911.0', 'Succeeded', undefined],
    ]);
    // The create was a long-running operation: 201, then the Azure-AsyncOperation polled, then the final GET.
    const arm = emu
      .calls()
      .filter((c) => c.service === 'arm')
      .map((c) => c.operation)
      .join(' ');
    expect(arm).toMatch(/GalleryImageVersions_CreateOrUpdate( OperationStatus)+ GalleryImageVersions_Get/);
  });

  for (const [what, name, opts] of [
    ['a wrong cookie', 'cookie.vhd', { cookie: 'cxsparse' }],
    ['a dynamic VHD', 'dynamic.vhd', { diskType: DISK_TYPE.dynamic }],
    ['a size that is not a whole number of MiB', 'odd.vhd', { extra: 512 }],
  ] as const) {
    it(`fails the operation for ${what}, the version left Failed`, async () => {
      await fedoraDefinition();
      const uri = await vhd(name, opts);
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
      // The SDK turns a failed operation into an Error whose message carries ARM's code and message.
      expect(err.message).toMatch(/^The long-running operation has failed\. InvalidVhd\. /);
      const got = await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.0.0', {
        expand: 'ReplicationStatus',
      });
      expect(got.provisioningState).toBe('Failed');
      expect(got.replicationStatus?.aggregatedState).toBe('Failed');
    });
  }

  it('fails the operation when the source blob does not exist', async () => {
    await fedoraDefinition();
    await blobService(emu).getContainerClient('vhds').create();
    const uri = `${emu.blob.endpoint}/vhds/missing.vhd`;
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
    expect(err.message).toContain('does not exist');
  });

  it('refuses version names that are not Major.Minor.Patch of 32-bit integers, and unknown regions', async () => {
    await fedoraDefinition();
    const uri = await vhd();
    for (const name of ['41', '41.0', '41.0.0.1', 'v41.0.0', '41.2147483648.0']) {
      const err = await rejection(
        client.galleryImageVersions.createOrUpdate(rg, gallery, 'fedora-41', name, versionOf(emu, uri), POLL),
      );
      expect([err.statusCode, err.code], name).toEqual([400, 'InvalidParameter']);
    }
    const region = await rejection(
      client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.0.0',
        versionOf(emu, uri, ['eastus', 'atlantis']),
        POLL,
      ),
    );
    expect([region.statusCode, region.code]).toEqual([400, 'InvalidParameter']);
    const home = await rejection(
      client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.0.0',
        versionOf(emu, uri, ['westus2']),
        POLL,
      ),
    );
    expect(home.message).toContain('East US');
    const elsewhere = await rejection(
      client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.0.0',
        versionOf(emu, 'https://example.invalid/vhds/x.vhd'),
        POLL,
      ),
    );
    expect([elsewhere.statusCode, elsewhere.code]).toEqual([400, 'InvalidParameter']);
    expect(await collect(client.galleryImageVersions.listByGalleryImage(rg, gallery, 'fedora-41'))).toEqual(
      [],
    );
  });

  it('keeps a region that never completes Replicating while the others complete, until it is let go', async () => {
    await fedoraDefinition();
    emu.setReplication('westus2', 'never');
    const poller = client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.1.0',
      versionOf(emu, await vhd(), ['eastus', 'westus2', 'northeurope']),
      POLL,
    );
    await poller.submitted();
    const state = async () =>
      await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.1.0', {
        expand: 'ReplicationStatus',
      });
    // Until the others have completed (a deadline, not a count of reads: a loaded machine reads slowly).
    let got = await state();
    for (const end = Date.now() + 30_000; Date.now() < end; await sleep(50)) {
      if (got.replicationStatus?.summary?.every((s) => s.region === 'West US 2' || s.state === 'Completed'))
        break;
      got = await state();
    }
    expect(got.provisioningState).toBe('Creating');
    expect(got.replicationStatus?.aggregatedState).toBe('InProgress');
    expect(got.replicationStatus?.summary?.map((s) => [s.region, s.state])).toEqual([
      ['East US', 'Completed'],
      ['West US 2', 'Replicating'],
      ['North Europe', 'Completed'],
    ]);
    await poller.poll();
    expect(poller.isDone).toBe(false);

    emu.setReplication('westus2', 0);
    const done = await poller;
    expect(done.provisioningState).toBe('Succeeded');
  });

  it('shows progress while a region replicates', async () => {
    await fedoraDefinition();
    emu.setReplication('northeurope', 3_600_000);
    const poller = client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.2.0',
      versionOf(emu, await vhd(), ['eastus', 'northeurope']),
      POLL,
    );
    await poller.submitted();
    const got = await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.2.0', {
      expand: 'ReplicationStatus',
    });
    const europe = got.replicationStatus?.summary?.find((s) => s.region === 'North Europe');
    expect(europe?.state).toBe('Replicating');
    expect(europe?.progress).toBeGreaterThanOrEqual(0);
    expect(europe?.progress).toBeLessThan(100);
    emu.setReplication('northeurope', 0);
    expect((await poller).provisioningState).toBe('Succeeded');
  });

  it('fails the operation when a region fails, the others Completed', async () => {
    await fedoraDefinition();
    emu.setReplication('northeurope', 'fail');
    const err = await rejection(
      client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.3.0',
        versionOf(emu, await vhd(), ['eastus', 'northeurope']),
        POLL,
      ),
    );
    expect(err.message).toContain('North Europe');
    const got = await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.3.0', {
      expand: 'ReplicationStatus',
    });
    expect(got.provisioningState).toBe('Failed');
    expect(got.replicationStatus?.aggregatedState).toBe('Failed');
    expect(got.replicationStatus?.summary?.map((s) => [s.region, s.state])).toEqual([
      ['East US', 'Completed'],
      ['North Europe', 'Failed'],
    ]);
  });

  it('deletes a version through a long-running operation, then the blob may go', async () => {
    await fedoraDefinition();
    const uri = await vhd();
    await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.4.0',
      versionOf(emu, uri),
      POLL,
    );
    await blobService(emu).getContainerClient('vhds').getPageBlobClient('f41.vhd').delete();
    expect(
      (await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.4.0')).provisioningState,
    ).toBe('Succeeded');
    await client.galleryImageVersions.delete(rg, gallery, 'fedora-41', '41.4.0', POLL);
    const err = await rejection(client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.4.0'));
    expect(err.statusCode).toBe(404);
    expect(
      emu
        .calls()
        .filter((c) => c.service === 'arm')
        .map((c) => [c.operation, c.status])
        .slice(-3),
    ).toEqual([
      ['GalleryImageVersions_Delete', 202],
      ['OperationStatus', 200],
      ['GalleryImageVersions_Get', 404],
    ]);
  });

  it('updates the end of life and excludeFromLatest of a version', async () => {
    await fedoraDefinition();
    await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.5.0',
      versionOf(emu, await vhd()),
      POLL,
    );
    const updated = await client.galleryImageVersions.update(
      rg,
      gallery,
      'fedora-41',
      '41.5.0',
      { publishingProfile: { excludeFromLatest: true, endOfLifeDate: new Date('2025-12-01T00:00:00Z') } },
      POLL,
    );
    expect(updated.publishingProfile).toMatchObject({
      excludeFromLatest: true,
      endOfLifeDate: new Date('2025-12-01T00:00:00Z'),
    });
    expect(updated.provisioningState).toBe('Succeeded');
  });
});

describe('gallery sharing', () => {
  it('shares with the community and back to private', async () => {
    await client.galleries.update(
      rg,
      gallery,
      {
        sharingProfile: {
          permissions: 'Community',
          communityGalleryInfo: {
            publisherUri: 'https://fedoraproject.org',
            publisherContact: 'cloud@lists.fedoraproject.org',
            eula: 'https://fedoraproject.org/wiki/Legal:Licenses',
            publicNamePrefix: 'Fedora',
          },
        },
      },
      POLL,
    );
    const result = await client.gallerySharingProfile.update(
      rg,
      gallery,
      { operationType: 'EnableCommunity' },
      POLL,
    );
    expect(result.operationType).toBe('EnableCommunity');
    const shared = await client.galleries.get(rg, gallery);
    expect(shared.sharingProfile?.permissions).toBe('Community');
    expect(shared.sharingProfile?.communityGalleryInfo).toMatchObject({
      communityGalleryEnabled: true,
      publicNamePrefix: 'Fedora',
    });
    expect(shared.sharingProfile?.communityGalleryInfo?.publicNames?.[0]).toMatch(/^Fedora-[0-9a-f-]{36}$/);
    expect(shared.sharingStatus?.aggregatedState).toBe('Succeeded');

    await client.gallerySharingProfile.update(rg, gallery, { operationType: 'Reset' }, POLL);
    const reset = await client.galleries.get(rg, gallery);
    expect(reset.sharingProfile?.permissions).toBe('Private');
    expect(reset.sharingProfile?.communityGalleryInfo?.communityGalleryEnabled).toBe(false);
  });

  it('refuses to go public without community gallery info', async () => {
    const err = await rejection(
      client.gallerySharingProfile.update(rg, gallery, { operationType: 'EnableCommunity' }, POLL),
    );
    expect([err.statusCode, err.code]).toEqual([409, 'OperationNotAllowed']);
  });

  it('shares with subscriptions and tenants, and stops sharing', async () => {
    const subs = ['34a4ab42-0d72-47d9-bd1a-aed207386dac', '380fd389-260b-41aa-bad9-0a83108c370b'];
    const tenant = 'c24c76aa-8897-4027-9b03-8f7928b54ff6';
    const denied = await rejection(
      client.gallerySharingProfile.update(
        rg,
        gallery,
        { operationType: 'Add', groups: [{ type: 'Subscriptions', ids: subs }] },
        POLL,
      ),
    );
    expect([denied.statusCode, denied.code]).toEqual([409, 'OperationNotAllowed']);

    await client.galleries.update(rg, gallery, { sharingProfile: { permissions: 'Groups' } }, POLL);
    await client.gallerySharingProfile.update(
      rg,
      gallery,
      {
        operationType: 'Add',
        groups: [
          { type: 'Subscriptions', ids: subs },
          { type: 'AADTenants', ids: [tenant] },
        ],
      },
      POLL,
    );
    const groups = async () =>
      (await client.galleries.get(rg, gallery, { select: 'Permissions' })).sharingProfile?.groups;
    expect(await groups()).toEqual([
      { type: 'Subscriptions', ids: subs },
      { type: 'AADTenants', ids: [tenant] },
    ]);
    expect((await client.galleries.get(rg, gallery)).sharingProfile?.groups).toBeUndefined();

    await client.gallerySharingProfile.update(
      rg,
      gallery,
      { operationType: 'Remove', groups: [{ type: 'Subscriptions', ids: [subs[0]!] }] },
      POLL,
    );
    expect(await groups()).toEqual([
      { type: 'Subscriptions', ids: [subs[1]] },
      { type: 'AADTenants', ids: [tenant] },
    ]);
    const bad = await rejection(
      client.gallerySharingProfile.update(
        rg,
        gallery,
        { operationType: 'Add', groups: [{ type: 'Subscriptions', ids: ['not-a-guid'] }] },
        POLL,
      ),
    );
    expect([bad.statusCode, bad.code]).toEqual([400, 'InvalidParameter']);
  });
});
