import { CompleteSnapshotCommand } from '@aws-sdk/client-ebs';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeRegionsCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  DisableImageDeprecationCommand,
  EnableImageDeprecationCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
  type EC2Client,
  type Image,
  type RegisterImageCommandInput,
} from '@aws-sdk/client-ec2';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { ebs, ec2, rejection, sts, waitFor, writeSnapshot } from './helpers.js';

let emu: Emulator;

beforeAll(async () => {
  emu = await startEmulator();
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
});

/** A completed EBS-direct snapshot of `gib` GiB in the region. */
async function snapshot(region = 'us-east-1', gib = 2): Promise<string> {
  const client = ebs(emu.endpoint, { region });
  const { snapshotId } = await writeSnapshot(client, gib, [0]);
  await client.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 1 }));
  return snapshotId;
}

function registration(name: string, snapshotId: string): RegisterImageCommandInput {
  return {
    Name: name,
    Description: 'Fedora Cloud Base',
    Architecture: 'arm64',
    VirtualizationType: 'hvm',
    EnaSupport: true,
    SriovNetSupport: 'simple',
    BootMode: 'uefi-preferred',
    ImdsSupport: 'v2.0',
    TpmSupport: 'v2.0',
    RootDeviceName: '/dev/sda1',
    BlockDeviceMappings: [
      {
        DeviceName: '/dev/sda1',
        Ebs: { SnapshotId: snapshotId, VolumeType: 'gp3', VolumeSize: 5, DeleteOnTermination: true },
      },
    ],
    TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'Name', Value: name }] }],
  };
}

async function describe1(client: EC2Client, id: string): Promise<Image> {
  const out = await client.send(new DescribeImagesCommand({ ImageIds: [id] }));
  expect(out.Images).toHaveLength(1);
  return out.Images![0]!;
}

function expectKeptAttributes(image: Image): void {
  expect(image).toMatchObject({
    Architecture: 'arm64',
    VirtualizationType: 'hvm',
    EnaSupport: true,
    SriovNetSupport: 'simple',
    BootMode: 'uefi-preferred',
    ImdsSupport: 'v2.0',
    TpmSupport: 'v2.0',
    RootDeviceName: '/dev/sda1',
    RootDeviceType: 'ebs',
    Hypervisor: 'xen',
    PlatformDetails: 'Linux/UNIX',
  });
}

describe('images through the emulator', () => {
  it('keeps what RegisterImage was given and hides the snapshot moto invents', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(new RegisterImageCommand(registration('fedora-41-arm64', snap)));
    const image = await describe1(client, ImageId!);
    expectKeptAttributes(image);
    expect(image.State).toBe('available');
    expect(image.BlockDeviceMappings).toEqual([
      {
        DeviceName: '/dev/sda1',
        Ebs: {
          SnapshotId: snap,
          VolumeSize: 5,
          VolumeType: 'gp3',
          DeleteOnTermination: true,
          Encrypted: false,
        },
      },
    ]);
    expect(image.Tags).toEqual([{ Key: 'Name', Value: 'fedora-41-arm64' }]);

    const snaps = await client.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    expect(snaps.Snapshots?.map((s) => s.SnapshotId)).toEqual([snap]);

    for (const [attr, key, value] of [
      ['bootMode', 'BootMode', 'uefi-preferred'],
      ['imdsSupport', 'ImdsSupport', 'v2.0'],
      ['tpmSupport', 'TpmSupport', 'v2.0'],
      ['sriovNetSupport', 'SriovNetSupport', 'simple'],
    ] as const) {
      const out = await client.send(new DescribeImageAttributeCommand({ ImageId, Attribute: attr }));
      expect(out[key]).toEqual({ Value: value });
    }
  });

  it('applies AWS defaults for what RegisterImage leaves out', async () => {
    const snap = await snapshot('us-east-1', 3);
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(
      new RegisterImageCommand({
        Name: 'bare',
        RootDeviceName: '/dev/xvda',
        BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: snap } }],
      }),
    );
    const image = await describe1(client, ImageId!);
    expect(image.Architecture).toBe('i386');
    expect(image.VirtualizationType).toBe('paravirtual');
    expect(image.BootMode).toBeUndefined();
    expect(image.EnaSupport).toBeUndefined();
    expect(image.BlockDeviceMappings?.[0]?.Ebs).toMatchObject({ VolumeSize: 3, DeleteOnTermination: true });
  });

  it('refuses a duplicate name in a region, and malformed names', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const first = await client.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const dup = await rejection(client.send(new RegisterImageCommand(registration('fedora-41', snap))));
    expect(dup.name).toBe('InvalidAMIName.Duplicate');
    expect(dup.message).toContain(first.ImageId);

    // The same name is fine in another region.
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    const westSnap = await snapshot('eu-west-1');
    await west.send(new RegisterImageCommand(registration('fedora-41', westSnap)));

    for (const bad of ['ab', 'x'.repeat(129), 'fedora:41', 'fedora#41', 'fédora-41']) {
      const err = await rejection(client.send(new RegisterImageCommand(registration(bad, snap))));
      expect(err.name).toBe('InvalidAMIName.Malformed');
    }
    const ok = "Fedora-Cloud (41) [x86_64] 1.2/3 it's@_";
    await client.send(new RegisterImageCommand(registration(ok, snap)));

    // Deregistering frees the name.
    await client.send(new DeregisterImageCommand({ ImageId: first.ImageId }));
    await client.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const images = await client.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(images.Images).toHaveLength(2);
  });

  it('refuses a mapping to a snapshot that does not exist', async () => {
    const client = ec2(emu.endpoint);
    const err = await rejection(
      client.send(new RegisterImageCommand(registration('ghost', 'snap-0123456789abcdef0'))),
    );
    expect(err.name).toBe('InvalidSnapshot.NotFound');
    // The failed registration did not keep the name.
    const snap = await snapshot();
    await client.send(new RegisterImageCommand(registration('ghost', snap)));
  });

  it('carries attributes through CopyImage to a new snapshot in the target region, with tags', async () => {
    const snap = await snapshot();
    const east = ec2(emu.endpoint);
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    const { ImageId: source } = await east.send(new RegisterImageCommand(registration('fedora-41', snap)));
    await east.send(new CreateTagsCommand({ Resources: [source!], Tags: [{ Key: 'release', Value: '41' }] }));

    const { ImageId: copy } = await west.send(
      new CopyImageCommand({
        SourceImageId: source,
        SourceRegion: 'us-east-1',
        Name: 'fedora-41',
        Description: 'copy',
        CopyImageTags: true,
        TagSpecifications: [
          { ResourceType: 'image', Tags: [{ Key: 'Name', Value: 'fedora-41' }] },
          { ResourceType: 'snapshot', Tags: [{ Key: 'Name', Value: 'fedora-41-root' }] },
        ],
      }),
    );
    const image = await describe1(west, copy!);
    expectKeptAttributes(image);
    expect(image.SourceImageId).toBe(source);
    expect(image.SourceImageRegion).toBe('us-east-1');
    expect(image.Tags).toEqual(
      expect.arrayContaining([
        { Key: 'Name', Value: 'fedora-41' },
        { Key: 'release', Value: '41' },
      ]),
    );
    const copiedSnap = image.BlockDeviceMappings?.[0]?.Ebs?.SnapshotId;
    expect(copiedSnap).toMatch(/^snap-/);
    expect(copiedSnap).not.toBe(snap);
    expect(image.BlockDeviceMappings?.[0]?.Ebs).toMatchObject({ VolumeSize: 5, VolumeType: 'gp3' });

    const westSnaps = await west.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    expect(westSnaps.Snapshots).toHaveLength(1);
    expect(westSnaps.Snapshots![0]).toMatchObject({
      SnapshotId: copiedSnap,
      VolumeSize: 2,
      State: 'completed',
      Tags: [{ Key: 'Name', Value: 'fedora-41-root' }],
    });

    // A second copy under the same name in the same region is refused.
    const dup = await rejection(
      west.send(
        new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
      ),
    );
    expect(dup.name).toBe('InvalidAMIName.Duplicate');
  });

  it('honours CopyImage ClientToken like AWS', async () => {
    const snap = await snapshot();
    const east = ec2(emu.endpoint);
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    const { ImageId: source } = await east.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const input = {
      SourceImageId: source,
      SourceRegion: 'us-east-1',
      Name: 'fedora-41',
      ClientToken: 'tok-1',
    };
    const a = await west.send(new CopyImageCommand(input));
    const b = await west.send(new CopyImageCommand(input));
    expect(b.ImageId).toBe(a.ImageId);
    const mismatch = await rejection(west.send(new CopyImageCommand({ ...input, Description: 'other' })));
    expect(mismatch.name).toBe('IdempotentParameterMismatch');
    const images = await west.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(images.Images).toHaveLength(1);
  });

  it('holds new images pending for pendingMs (per region), and lets state filters see it', async () => {
    const snap = await snapshot();
    const east = ec2(emu.endpoint);
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    emu.setPendingMs(60_000, 'eu-west-1');
    const { ImageId: source } = await east.send(new RegisterImageCommand(registration('fedora-41', snap)));
    expect((await describe1(east, source!)).State).toBe('available');

    const { ImageId: copy } = await west.send(
      new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
    );
    expect((await describe1(west, copy!)).State).toBe('pending');
    const copied = (await describe1(west, copy!)).BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
    const snaps = await west.send(new DescribeSnapshotsCommand({ SnapshotIds: [copied] }));
    expect(snaps.Snapshots?.[0]?.State).toBe('pending');

    const pending = await west.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'state', Values: ['pending'] }] }),
    );
    expect(pending.Images?.map((i) => i.ImageId)).toEqual([copy]);
    const available = await west.send(
      new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'state', Values: ['available'] }] }),
    );
    expect(available.Images).toEqual([]);

    // Lowering the hold releases images already waiting.
    emu.setPendingMs(200, 'eu-west-1');
    const done = await waitFor(
      () => describe1(west, copy!),
      (i) => i.State === 'available',
      5000,
    );
    expect(done.State).toBe('available');
  });

  it('keeps an image pending while its EBS-direct snapshot is not completed', async () => {
    const client = ebs(emu.endpoint);
    const { snapshotId } = await writeSnapshot(client, 1, [0]);
    const east = ec2(emu.endpoint);
    const { ImageId } = await east.send(new RegisterImageCommand(registration('early', snapshotId)));
    expect((await describe1(east, ImageId!)).State).toBe('pending');
    await client.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 1 }));
    expect((await describe1(east, ImageId!)).State).toBe('available');
  });

  it('can make a copy end in state failed', async () => {
    const snap = await snapshot();
    const east = ec2(emu.endpoint);
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    const { ImageId: source } = await east.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const rule = emu.addFault({
      operation: 'CopyImage',
      region: 'eu-west-1',
      kind: 'image-failed',
      times: 1,
    });
    const { ImageId: copy } = await west.send(
      new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
    );
    const image = await describe1(west, copy!);
    expect(image.State).toBe('failed');
    expect(image.StateReason?.Code).toBe('Server.InternalError');
    expect(emu.faultStats().find((f) => f.id === rule)?.fired).toBe(1);
    expect(emu.calls().find((c) => c.operation === 'CopyImage')?.fault).toBe('image-failed');

    // A failed image can be deregistered and the copy retried under the same name.
    await west.send(new DeregisterImageCommand({ ImageId: copy }));
    const retry = await west.send(
      new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
    );
    expect((await describe1(west, retry.ImageId!)).State).toBe('available');
  });

  it('refuses to copy an image that is not available yet', async () => {
    emu.setPendingMs(60_000);
    const snap = await snapshot();
    const east = ec2(emu.endpoint);
    const { ImageId: source } = await east.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const err = await rejection(
      ec2(emu.endpoint, { region: 'eu-west-1' }).send(
        new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
      ),
    );
    expect(err.name).toBe('IncorrectState');
  });

  it('implements image deprecation', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const at = new Date(Date.now() + 30 * 24 * 3600 * 1000);
    at.setUTCSeconds(20, 0);
    const enabled = await client.send(new EnableImageDeprecationCommand({ ImageId, DeprecateAt: at }));
    expect(enabled.Return).toBe(true);
    const rounded = new Date(at);
    rounded.setUTCSeconds(0, 0);
    expect((await describe1(client, ImageId!)).DeprecationTime).toBe(rounded.toISOString());

    await client.send(new DisableImageDeprecationCommand({ ImageId }));
    expect((await describe1(client, ImageId!)).DeprecationTime).toBeUndefined();

    const unknown = await rejection(
      client.send(new EnableImageDeprecationCommand({ ImageId: 'ami-0123456789abcdef0', DeprecateAt: at })),
    );
    expect(unknown.name).toBe('InvalidAMIID.NotFound');
    const past = await rejection(
      client.send(
        new EnableImageDeprecationCommand({ ImageId, DeprecateAt: new Date(Date.now() - 3600_000) }),
      ),
    );
    expect(past.name).toBe('InvalidParameterValue');
  });

  it('refuses to delete a snapshot an image uses, until the image is deregistered', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(new RegisterImageCommand(registration('fedora-41', snap)));
    const inUse = await rejection(client.send(new DeleteSnapshotCommand({ SnapshotId: snap })));
    expect(inUse.name).toBe('InvalidSnapshot.InUse');
    await client.send(new DeregisterImageCommand({ ImageId }));
    await client.send(new DeleteSnapshotCommand({ SnapshotId: snap }));
    const gone = await rejection(client.send(new DeleteSnapshotCommand({ SnapshotId: snap })));
    expect(gone.name).toBe('InvalidSnapshot.NotFound');
    expect(gone.message).toContain(snap);
  });

  it('pages DescribeImages as EC2 documents it (MaxResults 5 to 1000, NextToken, not with ImageIds)', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const ids: string[] = [];
    for (let n = 0; n < 7; n++) {
      const { ImageId } = await client.send(
        new RegisterImageCommand({
          ...registration(`fedora-${n}`, snap),
          TagSpecifications: [
            { ResourceType: 'image', Tags: [{ Key: 'plume:release', Value: `fedora/rawhide/${n}` }] },
          ],
        }),
      );
      ids.push(ImageId!);
    }
    const at = new Date(Date.now() + 3600_000);
    await client.send(new EnableImageDeprecationCommand({ ImageId: ids[0], DeprecateAt: at }));
    const first = await client.send(
      new DescribeImagesCommand({ Owners: ['self'], MaxResults: 5, IncludeDeprecated: true }),
    );
    expect(first.Images).toHaveLength(5);
    expect(first.NextToken).toBeTruthy();
    const second = await client.send(
      new DescribeImagesCommand({ Owners: ['self'], MaxResults: 5, NextToken: first.NextToken }),
    );
    expect(second.Images).toHaveLength(2);
    expect(second.NextToken).toBeUndefined();
    const all = [...first.Images!, ...second.Images!];
    expect(all.map((i) => i.ImageId).sort()).toEqual([...ids].sort());
    // The deprecation time shows on a paged listing too (the owner sees its deprecated images).
    expect(all.find((i) => i.ImageId === ids[0])!.DeprecationTime).toBe(
      new Date(Math.round(at.getTime() / 60_000) * 60_000).toISOString(),
    );
    // Tag filters with wildcards, as plume finds a channel's images.
    const tagged = await client.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        MaxResults: 1000,
        Filters: [{ Name: 'tag:plume:release', Values: ['fedora/rawhide/*'] }],
      }),
    );
    expect(tagged.Images).toHaveLength(7);
    const none = await client.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [{ Name: 'tag:plume:release', Values: ['fedora/cloud/*'] }],
      }),
    );
    expect(none.Images).toEqual([]);

    const small = await rejection(
      client.send(new DescribeImagesCommand({ Owners: ['self'], MaxResults: 2 })),
    );
    expect(small.name).toBe('InvalidParameterValue');
    expect(small.message).toContain('between 5 and 1000');
    const both = await rejection(
      client.send(new DescribeImagesCommand({ ImageIds: [ids[0]!], MaxResults: 5 })),
    );
    expect(both.name).toBe('InvalidParameterCombination');
  });

  it('filters DescribeImages on the kept attributes', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(new RegisterImageCommand(registration('fedora-41-arm64', snap)));
    await client.send(
      new RegisterImageCommand({ ...registration('fedora-41-x86_64', snap), Architecture: 'x86_64' }),
    );
    const arm = await client.send(
      new DescribeImagesCommand({
        Owners: ['self'],
        Filters: [
          { Name: 'architecture', Values: ['arm64'] },
          { Name: 'name', Values: ['fedora-41-*'] },
          { Name: 'block-device-mapping.snapshot-id', Values: [snap] },
        ],
      }),
    );
    expect(arm.Images?.map((i) => i.ImageId)).toEqual([ImageId]);
  });

  it('passes sharing, regions and STS through to moto, and logs every call', async () => {
    const snap = await snapshot();
    const client = ec2(emu.endpoint);
    const { ImageId } = await client.send(new RegisterImageCommand(registration('fedora-41', snap)));
    await client.send(
      new ModifyImageAttributeCommand({ ImageId, LaunchPermission: { Add: [{ Group: 'all' }] } }),
    );
    const perms = await client.send(
      new DescribeImageAttributeCommand({ ImageId, Attribute: 'launchPermission' }),
    );
    expect(perms.LaunchPermissions).toEqual([{ Group: 'all' }]);
    await client.send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snap,
        Attribute: 'createVolumePermission',
        OperationType: 'add',
        GroupNames: ['all'],
      }),
    );
    const snapPerms = await client.send(
      new DescribeSnapshotAttributeCommand({ SnapshotId: snap, Attribute: 'createVolumePermission' }),
    );
    expect(snapPerms.CreateVolumePermissions).toEqual([{ Group: 'all' }]);
    const regions = await client.send(new DescribeRegionsCommand({}));
    expect(regions.Regions?.length).toBeGreaterThan(10);
    const me = await sts(emu.endpoint).send(new GetCallerIdentityCommand({}));
    expect(me.Account).toBe('123456789012');

    const ops = emu.calls().map((c) => `${c.service}:${c.operation}`);
    expect(ops).toEqual([
      'ebs:StartSnapshot',
      'ebs:PutSnapshotBlock',
      'ebs:CompleteSnapshot',
      'ec2:RegisterImage',
      'ec2:ModifyImageAttribute',
      'ec2:DescribeImageAttribute',
      'ec2:ModifySnapshotAttribute',
      'ec2:DescribeSnapshotAttribute',
      'ec2:DescribeRegions',
      'sts:GetCallerIdentity',
    ]);
    expect(emu.calls().every((c) => c.status === 200 || c.status === 201 || c.status === 202)).toBe(true);
    expect(emu.calls()[0]).toMatchObject({ region: 'us-east-1', service: 'ebs' });
  });
});
