import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, readdirSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ComputeManagementClient } from '@azure/arm-compute';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { releaseAnnouncements } from '../../src/joystick/messages.js';
import type { TargetRecord } from '../../src/plume/record.js';
import { expectSparsePages } from '../support/azure-pages.js';
import { contractErrors } from '../support/schemas.js';
import { fedoraCloudArgs, runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * Azure as a provider, against the Azure emulator (Azurite for the page blob, the Compute Gallery fake for
 * definitions, versions, replication and sharing), checked through Microsoft's own clients: one release to
 * AWS and Azure from a compose holding both files, the page blob compared block for block with the image,
 * resumed after kill -9 at the upload and at the version's creation, a region that never completes, and a
 * pre-release that leaves the gallery unshared.
 */

const MiB = 2 ** 20;
const AWS_REGIONS = ['us-east-1'];
let world: World;
let compute: ComputeManagementClient;
let blobs: BlobServiceClient;

beforeAll(async () => {
  world = await startWorld({ regions: AWS_REGIONS, azure: true });
  const emu = world.azure!.emulator;
  compute = new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, emu.armClientOptions());
  blobs = new BlobServiceClient(
    emu.blob.endpoint,
    new StorageSharedKeyCredential(emu.blob.accountName, emu.blob.accountKey),
  );
});
afterAll(async () => {
  await world?.close();
});
beforeEach(async () => {
  await world.azure!.emulator.reset();
  await world.writeConfig();
});

const emu = () => world.azure!.emulator;
const rg = () => emu().arm.resourceGroup;
const gallery = () => emu().arm.gallery;
const calls = (operation: string) =>
  emu()
    .calls()
    .filter((c) => c.operation === operation);

async function stagedBlobs(): Promise<string[]> {
  const container = blobs.getContainerClient('plume-images');
  if (!(await container.exists())) return [];
  const names: string[] = [];
  for await (const b of container.listBlobsFlat()) names.push(b.name);
  return names;
}

async function versions(definition: string) {
  const out = [];
  for await (const v of compute.galleryImageVersions.listByGalleryImage(rg(), gallery(), definition))
    out.push(v);
  return out;
}

const getVersion = (definition: string, version: string) =>
  compute.galleryImageVersions.get(rg(), gallery(), definition, version, { expand: 'ReplicationStatus' });

describe('a release to AWS and Azure from one compose', () => {
  it('publishes both, each from its own file; the version is replicated everywhere and the gallery shared', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241001',
      label: 'RC-1.4',
      rawSize: 24 * MiB,
      azure: true,
    });
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,azure', '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(Object.keys(record.targets)).toEqual(['aws', 'azure']);
    expect(record.targets.aws.status).toBe('complete');
    const azure = record.targets.azure;
    expect(azure).toMatchObject({ status: 'complete', provider: 'azure', primaryLocation: 'eastus' });
    expect(azure.source.url).toMatch(/Fedora-Cloud-Base-Azure-41-20241001\.0\.x86_64\.vhdfixed\.xz$/);
    const gal = await compute.galleries.get(rg(), gallery());
    const publicName = gal.sharingProfile?.communityGalleryInfo?.publicNames?.[0];
    expect(publicName).toMatch(/^Fedora-/);
    const communityId = `/CommunityGalleries/${publicName}/Images/Fedora-Cloud-41-x64/Versions/41.20241001.0`;
    expect(azure.images).toEqual(
      [...world.azure!.regions].sort().map((location) => ({
        location,
        variant: 'version',
        name: '41.20241001.0',
        id: communityId,
      })),
    );
    expect(gal.sharingProfile).toMatchObject({
      permissions: 'Community',
      communityGalleryInfo: { communityGalleryEnabled: true, publicNamePrefix: 'Fedora' },
    });

    const definition = await compute.galleryImages.get(rg(), gallery(), 'Fedora-Cloud-41-x64');
    expect(definition).toMatchObject({
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      architecture: 'x64',
      identifier: { publisher: 'Fedora', offer: 'Fedora-Cloud', sku: '41-x64' },
    });
    expect(definition.features).toContainEqual({ name: 'SecurityType', value: 'TrustedLaunchSupported' });
    const version = await getVersion('Fedora-Cloud-41-x64', '41.20241001.0');
    expect(version.provisioningState).toBe('Succeeded');
    expect(version.publishingProfile?.excludeFromLatest).toBe(false);
    expect(version.replicationStatus?.summary?.map((r) => [r.region, r.state])).toEqual([
      ['East US', 'Completed'],
      ['West US 2', 'Completed'],
      ['North Europe', 'Completed'],
    ]);
    expect(version.storageProfile?.osDiskImage?.sizeInGB).toBe(1);
    expect(version.tags).toMatchObject({ Channel: 'cloud', Version: '41', ComposeID: compose.composeId });
    // What the record says is what joystick announces, as fedora-image-uploader's schema defines it.
    const [announced] = releaseAnnouncements(
      {
        jobId: 'job-1',
        composeId: compose.composeId,
        imageUrl: azure.source.url,
        build: 'Fedora-Cloud-Base-Azure-41-20241001.0.x86_64',
        architecture: 'x86_64',
        ec2Architecture: 'x86_64',
        channel: 'cloud',
        uploader: { imageName: 'Fedora-Cloud-Base-41-1.4.x86_64', subvariant: 'Cloud_Base', release: 41 },
      },
      azure as TargetRecord,
      { fedimg: true, uploader: true },
    );
    expect(announced!.topic).toBe('fedora_image_uploader.published.v1.azure');
    expect(announced!.body).toMatchObject({
      image_definition_name: 'Fedora-Cloud-41-x64',
      image_version_name: '41.20241001.0',
      image_resource_id: communityId,
      regions: ['eastus', 'northeurope', 'westus2'],
      release: 41,
    });
    expect(contractErrors(announced!.topic, announced!.body)).toEqual([]);
    // The VHD went up as a sparse page blob (only the pages holding data), then was deleted.
    expect(azure.source.rawBytes).toBe(24 * MiB + 512);
    expect(azure.upload.bytesSent).toBeLessThan(24 * MiB);
    expect(await stagedBlobs()).toEqual([]);

    // Run again: nothing is created on either provider.
    emu().clearCalls();
    const registered = world.emulator.calls().filter((c) => c.operation === 'RegisterImage').length;
    const again = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,azure'],
      world.env,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
    expect(calls('GalleryImages_CreateOrUpdate')).toEqual([]);
    expect(calls('PutBlob')).toEqual([]);
    expect(calls('PutPage')).toEqual([]);
    expect(world.emulator.calls().filter((c) => c.operation === 'RegisterImage')).toHaveLength(registered);
    expect((await versions('Fedora-Cloud-41-x64')).map((v) => v.name)).toEqual(['41.20241001.0']);
  });

  it('--dry-run shows the Azure target beside the AWS one and changes nothing', async () => {
    const compose = await world.compose({ version: '41', date: '20241002', rawSize: 8 * MiB, azure: true });
    emu().clearCalls();
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,azure', '--dry-run'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('target azure (azure)');
    expect(res.stdout).toContain(
      `azure:       subscription ${emu().arm.subscriptionId}, gallery ${rg()}/${gallery()} (shared with the community)`,
    );
    expect(res.stdout).toContain(
      'image:       definition Fedora-Cloud-41-x64 (Fedora/Fedora-Cloud/41-x64, x64, V2, SecurityType=TrustedLaunchSupported',
    );
    expect(res.stdout).toContain('version 41.20241002.0');
    expect(emu().calls()).toEqual([]);
  });

  it('a compose without the VHD publishes to AWS and says in one line why Azure was left out', async () => {
    const compose = await world.compose({ version: '41', date: '20241003', rawSize: 8 * MiB });
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,azure', '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(Object.keys(record.targets)).toEqual(['aws']);
    expect(record.skipped).toEqual([
      {
        provider: 'azure',
        reason: expect.stringContaining('has no Cloud-Base Azure vhdfixed.xz image for x86_64'),
      },
    ]);
    expect(res.stderr.split('\n').filter((l) => l.includes('not publishing to azure'))).toHaveLength(1);
    expect(
      emu()
        .calls()
        .filter((c) => c.service !== 'identity'),
    ).toEqual([]);
  });
});

describe('the page blob', () => {
  it('holds exactly the image, block for block, with the all-zero pages never written', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241004',
      rawSize: 16 * MiB,
      dataFraction: 0.3,
      azure: true,
    });
    await world.writeConfig(undefined, undefined, 'page_kib = 512');
    // The version fails once, so the blob it was made from stays for inspection.
    emu().addFault({
      service: 'arm',
      operation: 'GalleryImageVersions_CreateOrUpdate',
      kind: 'image-failed',
      code: 'InternalOperationError',
      message: 'injected',
      times: 1,
    });
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'];
    const failed = await runCli('plume', args, world.env);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain('41.20241004.0');
    const [name] = await stagedBlobs();
    expect(name).toMatch(/\/Fedora-Cloud-Base-Azure-41-20241004\.0\.x86_64\.vhd$/);
    const blob = blobs.getContainerClient('plume-images').getPageBlobClient(name!);
    const vhd = execFileSync(
      'xz',
      ['-dc', join(compose.root, compose.composePath, compose.azure.x86_64!.path)],
      {
        maxBuffer: 64 * MiB,
      },
    );
    const held = await blob.downloadToBuffer();
    expect(held.length).toBe(vhd.length);
    const block = 512 * 1024;
    const zero = Buffer.alloc(block);
    let dataBlocks = 0;
    for (let off = 0; off < vhd.length; off += block) {
      const want = vhd.subarray(off, off + block);
      expect(held.subarray(off, off + block).equals(want), `block at ${off}`).toBe(true);
      if (!want.equals(zero.subarray(0, want.length))) dataBlocks++;
    }
    // Every page holding data was written, and no written range holds 64 KiB of zero pages in a row: the
    // zeros between data were not sent. Fewer bytes went out than the blocks holding data.
    const ranges = (await blob.getPageRanges()).pageRange ?? [];
    const { written } = expectSparsePages(vhd, ranges);
    expect(written).toBeLessThan(dataBlocks * block);
    expect(dataBlocks).toBeLessThan(Math.ceil(vhd.length / block));
    expect(calls('PutPage').length).toBeGreaterThanOrEqual(ranges.length);

    // Run again: the failed version is replaced from the same blob (not uploaded again), then the blob goes.
    emu().clearCalls();
    const again = await runCli('plume', args, world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(calls('PutPage')).toEqual([]);
    const listed = await versions('Fedora-Cloud-41-x64');
    expect(listed.map((v) => [v.name, v.provisioningState])).toEqual([['41.20241004.0', 'Succeeded']]);
    expect(await stagedBlobs()).toEqual([]);
  });
});

describe('a file that is not a fixed VHD', () => {
  it.each([
    // One xz block: the footer is seen when the stream ends, before anything is committed.
    ['in one block, at the end of the stream', ['-1'], '20241011', true],
    // Several blocks (xz -T): the last one is read ahead, and nothing is uploaded.
    [
      'in several blocks, before the first byte goes out',
      ['-1', '-T2', '--block-size=1MiB'],
      '20241012',
      false,
    ],
  ])('%s: is refused in one line, with no version and no blob', async (_what, xzArgs, date, uploads) => {
    const compose = await world.compose({ version: '41', date, rawSize: 8 * MiB, azure: true });
    // The Azure file replaced by a disk of the right size whose footer is not one, its metadata updated.
    const dir = join(compose.root, compose.composePath);
    const rel = compose.azure.x86_64!.path;
    const bare = join(dir, rel.replace(/\.xz$/, ''));
    writeFileSync(bare, Buffer.alloc(8 * MiB + 512, 0));
    const fd = openSync(bare, 'r+');
    writeSync(fd, Buffer.alloc(4096, 7), 0, 4096, 0);
    writeSync(fd, Buffer.alloc(512, 0x78), 0, 512, 8 * MiB);
    closeSync(fd);
    execFileSync('xz', ['--compress', '--force', ...xzArgs, bare]);
    const imagesPath = join(dir, 'metadata', 'images.json');
    const images = readFileSync(imagesPath, 'utf8');
    writeFileSync(
      imagesPath,
      images
        .replace(
          compose.azure.x86_64!.sha256,
          createHash('sha256')
            .update(readFileSync(join(dir, rel)))
            .digest('hex'),
        )
        .replace(
          new RegExp(`"size": \\d+,(\\s+"type": "vhd-compressed")`),
          `"size": ${statSync(join(dir, rel)).size},$1`,
        ),
    );
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'],
      world.env,
    );
    expect(res.code).toBe(1);
    const errors = res.stderr.split('\n').filter((l) => l.startsWith('plume: error:'));
    expect(errors).toEqual([
      expect.stringContaining('not a fixed VHD Azure takes: its footer lacks the "conectix" cookie'),
    ]);
    expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
    expect(calls('PutBlob').length > 0).toBe(uploads);
    expect(await stagedBlobs()).toEqual([]);
  });
});

describe('killed and run again', () => {
  it.each([
    ['mid-upload', 'blob', 'PutPage', '20241005'],
    ['mid-version-create', 'arm', 'GalleryImageVersions_CreateOrUpdate', '20241006'],
  ])(
    '%s: the release finishes, with one version and no blob left behind',
    async (_what, service, operation, date) => {
      const compose = await world.compose({
        version: '41',
        date,
        rawSize: 16 * MiB,
        dataFraction: 0.5,
        azure: true,
      });
      await world.writeConfig(undefined, undefined, 'page_kib = 512');
      const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'];
      // Hold the call (the 6th Put Page, so some are in) long enough to kill the process in it.
      const id = emu().addFault({
        service,
        operation,
        kind: 'latency',
        latencyMs: 60_000,
        ...(operation === 'PutPage' ? { skip: 5 } : {}),
      });
      const run = startCli('plume', args, world.env);
      const deadline = Date.now() + 60_000;
      while (
        !emu()
          .faultStats()
          .find((f) => f.id === id)?.matched &&
        Date.now() < deadline
      )
        await new Promise((r) => setTimeout(r, 50));
      run.child.kill('SIGKILL');
      await run.done;
      emu().removeFault(id);
      const putBefore = calls('PutPage').length;

      const again = await runCli('plume', [...args, '--output', 'json'], world.env);
      expect(again.code, again.stderr).toBe(0);
      expect(JSON.parse(again.stdout).targets.azure.images[0].name).toBe(`41.${date}.0`);
      const listed = await versions('Fedora-Cloud-41-x64');
      expect(listed.filter((v) => v.name === `41.${date}.0`).map((v) => v.provisioningState)).toEqual([
        'Succeeded',
      ]);
      expect(await stagedBlobs()).toEqual([]);
      if (operation === 'PutPage') {
        // The upload resumed: the pages the killed run wrote were not sent again.
        expect(putBefore).toBeGreaterThan(0);
        expect(again.stderr).toContain('resuming an interrupted upload');
      }
    },
  );
});

describe('killed while replicating', () => {
  it('the rerun waits for the version it finds, creates nothing, and finishes', async () => {
    const compose = await world.compose({ version: '41', date: '20241009', rawSize: 8 * MiB, azure: true });
    emu().setReplication('northeurope', 'never');
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'];
    const run = startCli('plume', args, world.env);
    const deadline = Date.now() + 60_000;
    const replicating = async () =>
      (
        await getVersion('Fedora-Cloud-41-x64', '41.20241009.0').catch(() => undefined)
      )?.replicationStatus?.summary?.some((r) => r.region === 'East US' && r.state === 'Completed');
    while (!(await replicating()) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    run.child.kill('SIGKILL');
    await run.done;
    emu().setReplication('northeurope', 0);
    emu().clearCalls();

    const again = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout).targets.azure.status).toBe('complete');
    expect(calls('GalleryImageVersions_CreateOrUpdate')).toEqual([]);
    expect(calls('PutPage')).toEqual([]);
    expect((await versions('Fedora-Cloud-41-x64')).map((v) => v.name)).toEqual(['41.20241009.0']);
    expect(await stagedBlobs()).toEqual([]);
  });
});

describe('a region that never completes replication', () => {
  it('leaves the release partial, verify names the region, and repair finishes it once the region recovers', async () => {
    const compose = await world.compose({ version: '41', date: '20241007', rawSize: 8 * MiB, azure: true });
    emu().setReplication('westus2', 'never');
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'];
    const res = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(res.code, res.stderr).toBe(3);
    const record = JSON.parse(res.stdout);
    expect(record.targets.azure.status).toBe('partial');
    expect(record.targets.azure.images.map((i: { location: string }) => i.location)).toEqual([
      'eastus',
      'northeurope',
    ]);
    const recordPath = join(
      world.recordsDir,
      readdirSync(world.recordsDir).find((f) => f.includes('20241007'))!,
    );

    const verify = await runCli(
      'plume',
      ['verify', '--record', recordPath, '--config', world.configPath],
      world.env,
    );
    expect(verify.code).toBe(4);
    expect(verify.stdout + verify.stderr).toContain('westus2');
    expect(verify.stdout + verify.stderr).toContain('Replicating');

    emu().setReplication('westus2', 0);
    const repaired = await runCli(
      'plume',
      ['verify', '--repair', '--record', recordPath, '--config', world.configPath],
      world.env,
    );
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    const version = await getVersion('Fedora-Cloud-41-x64', '41.20241007.0');
    expect(version.replicationStatus?.summary?.every((r) => r.state === 'Completed')).toBe(true);
  });
});

describe('a region whose replication fails', () => {
  it('is named by the release, and repair replicates to it again', async () => {
    const compose = await world.compose({ version: '41', date: '20241010', rawSize: 8 * MiB, azure: true });
    emu().setReplication('northeurope', 'fail');
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'azure', '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(3);
    const azure = JSON.parse(res.stdout).targets.azure;
    expect(azure.problems).toContainEqual(
      expect.objectContaining({ location: 'northeurope', kind: 'failed' }),
    );
    const recordPath = join(
      world.recordsDir,
      readdirSync(world.recordsDir).find((f) => f.includes('20241010'))!,
    );
    emu().setReplication('northeurope', 0);
    const repaired = await runCli(
      'plume',
      ['verify', '--repair', '--record', recordPath, '--config', world.configPath],
      world.env,
    );
    expect(repaired.code, repaired.stdout + repaired.stderr).toBe(0);
    const version = await getVersion('Fedora-Cloud-41-x64', '41.20241010.0');
    expect(version.replicationStatus?.summary?.map((r) => [r.region, r.state])).toEqual([
      ['East US', 'Completed'],
      ['West US 2', 'Completed'],
      ['North Europe', 'Completed'],
    ]);
    // Created once (an SDK retry of the same PUT after a slow answer would be an update, 200).
    expect(calls('GalleryImageVersions_CreateOrUpdate').filter((c) => c.status === 201)).toHaveLength(1);
  });
});

describe('pre-release, then release', () => {
  it('keeps the gallery unshared and the version without an end of life until the release', async () => {
    const compose = await world.compose({ version: '41', date: '20241008', rawSize: 8 * MiB, azure: true });
    await world.writeConfig(undefined, undefined, 'deprecate_after_days = 30');
    const pre = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url, { verb: 'pre-release' }), '--platform', 'azure'],
      world.env,
    );
    expect(pre.code, pre.stderr).toBe(0);
    const version = await getVersion('Fedora-Cloud-41-x64', '41.20241008.0');
    expect(version.provisioningState).toBe('Succeeded');
    expect(version.publishingProfile?.endOfLifeDate).toBeUndefined();
    const before = await compute.galleries.get(rg(), gallery());
    expect(before.sharingProfile?.permissions ?? 'Private').toBe('Private');
    expect(calls('GallerySharingProfile_Update')).toEqual([]);

    const rel = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'azure'],
      world.env,
    );
    expect(rel.code, rel.stderr).toBe(0);
    const after = await compute.galleries.get(rg(), gallery());
    expect(after.sharingProfile?.communityGalleryInfo?.communityGalleryEnabled).toBe(true);
    const released = await getVersion('Fedora-Cloud-41-x64', '41.20241008.0');
    expect(released.publishingProfile?.endOfLifeDate).toEqual(new Date('2024-11-07T00:00:00Z'));
    // Created once (201); the SDK may repeat the same PUT after a slow answer, which changes nothing.
    expect(calls('GalleryImageVersions_CreateOrUpdate').filter((c) => c.status === 201)).toHaveLength(1);
  });
});
