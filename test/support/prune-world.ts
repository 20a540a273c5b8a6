import { CompleteSnapshotCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import {
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  ModifyImageAttributeCommand,
  RegisterImageCommand,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { AwsClients, DEFAULT_CLIENT_SETTINGS } from '../../src/plume/providers/aws/clients.js';
import {
  clientToken,
  copyImage,
  createTags,
  publishImage,
  registerImage,
  rootSnapshotId,
  tagMap,
  TAG_RELEASE,
  TAG_SOURCE,
  TAG_VARIANT,
  waitImageAvailable,
  waitSnapshotCompleted,
} from '../../src/plume/providers/aws/images.js';

/**
 * Images laid out in the emulator the way `plume release` leaves them (one uploaded snapshot in the primary
 * region shared by one AMI per volume type, a copy with its own snapshot per other region, plume's tags on
 * all), without uploading anything: prune tests need dozens of releases of different dates.
 */
export function fixtureClients(endpoint: string): AwsClients {
  return new AwsClients({ ...DEFAULT_CLIENT_SETTINGS, endpoint, maxAttempts: 3 });
}

const WAIT = { pollMinMs: 20, pollMaxMs: 200, imageTimeoutMs: 60_000, snapshotTimeoutMs: 60_000 };

export interface FixtureRelease {
  /** e.g. fedora/rawhide/Fedora-Rawhide-20260101.n.0/Cloud-Base/x86_64 */
  key: string;
  /** YYYY-MM-DD, the Date tag. */
  date: string;
  channel: string;
  arch?: 'x86_64' | 'aarch64';
  imageType?: string;
  regions: string[];
  variants: string[];
  /** Accounts the images are shared with besides the public. */
  shareWith?: string[];
}

export function rawhideRelease(date: string, regions: string[], variants = ['gp3', 'gp2']): FixtureRelease {
  const compose = `Fedora-Rawhide-${date.replaceAll('-', '')}.n.0`;
  return {
    key: `fedora/rawhide/${compose}/Cloud-Base/x86_64`,
    date,
    channel: 'rawhide',
    imageType: 'Cloud-Base',
    regions,
    variants,
  };
}

/** An empty 1 GiB snapshot, made the way plume makes its disks (EBS direct: the actions plume's policy allows). */
async function makeSnapshot(clients: AwsClients, region: string, tags: Record<string, string>) {
  const ebs = clients.ebs(region);
  const snap = await ebs.send(
    new StartSnapshotCommand({
      VolumeSize: 1,
      Tags: Object.entries(tags).map(([Key, Value]) => ({ Key, Value })),
    }),
  );
  await ebs.send(new CompleteSnapshotCommand({ SnapshotId: snap.SnapshotId!, ChangedBlocksCount: 0 }));
  await waitSnapshotCompleted(clients, region, snap.SnapshotId!, WAIT);
  return snap.SnapshotId!;
}

/** Returns the AMI ids by region. */
export async function seedRelease(clients: AwsClients, r: FixtureRelease): Promise<Map<string, string[]>> {
  const arch = r.arch ?? 'x86_64';
  const build = r.key.split('/')[2]!;
  const [primary, ...others] = r.regions;
  const tags = {
    Channel: r.channel,
    Date: r.date,
    Arch: arch,
    ...(r.imageType ? { ImageType: r.imageType } : {}),
    [TAG_RELEASE]: r.key,
  };
  const disk = await makeSnapshot(clients, primary!, { [TAG_RELEASE]: r.key, [TAG_SOURCE]: 'sha' });
  const out = new Map<string, string[]>();
  const settings = {
    partition: 'aws' as const,
    architecture: arch === 'x86_64' ? ('x86_64' as const) : ('arm64' as const),
    bootMode: 'uefi-preferred' as const,
    enaSupport: true,
    rootDeviceName: '/dev/sda1',
  };
  for (const variant of r.variants) {
    const name = `${build}-${arch}-hvm-${primary}-${variant}`;
    const { id } = await registerImage(clients, primary!, {
      name,
      description: build,
      snapshotId: disk,
      volumeType: variant,
      volumeGiB: 1,
      settings,
      tags: { ...tags, Name: name, [TAG_VARIANT]: variant },
    });
    const image = await waitImageAvailable(clients, primary!, id, WAIT);
    await publishImage(clients, primary!, image, { public: true, accounts: r.shareWith ?? [] }, undefined);
    out.set(primary!, [...(out.get(primary!) ?? []), id]);
    for (const region of others) {
      const copyName = `${build}-${arch}-hvm-${region}-${variant}`;
      const copied = await copyImage(
        clients,
        { region: primary!, id },
        region,
        copyName,
        build,
        clientToken(r.key, region, variant),
      );
      const copy = await waitImageAvailable(clients, region, copied.id, WAIT);
      const snap = rootSnapshotId(copy);
      await createTags(clients, region, snap ? [copied.id, snap] : [copied.id], {
        ...tags,
        Name: copyName,
        [TAG_VARIANT]: variant,
      });
      await publishImage(clients, region, copy, { public: true, accounts: r.shareWith ?? [] }, undefined);
      out.set(region, [...(out.get(region) ?? []), copied.id]);
    }
  }
  return out;
}

/** An AMI in the same account that plume did not make: no plume tags (a person's, another tool's). */
export async function seedDecoy(clients: AwsClients, region: string, name: string): Promise<string> {
  const snap = await makeSnapshot(clients, region, { Owner: 'someone-else' });
  const res = await clients.ec2(region).send(
    new RegisterImageCommand({
      Name: name,
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      RootDeviceName: '/dev/sda1',
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: snap, VolumeSize: 1 } }],
      // Dated like a months-old Rawhide, named like one: only plume's tags say whose an image is.
      TagSpecifications: [{ ResourceType: 'image', Tags: [{ Key: 'Date', Value: '2020-01-01' }] }],
    }),
  );
  await clients.ec2(region).send(
    new ModifyImageAttributeCommand({
      ImageId: res.ImageId!,
      LaunchPermission: { Add: [{ Group: 'all' }] },
    }),
  );
  return res.ImageId!;
}

export interface Inventory {
  images: (Image & { region: string })[];
  snapshots: (Snapshot & { region: string })[];
}

/** Every image and snapshot the account owns in these regions. */
export async function inventory(clients: AwsClients, regions: string[]): Promise<Inventory> {
  const out: Inventory = { images: [], snapshots: [] };
  for (const region of regions) {
    const ec2 = clients.ec2(region);
    const imgs = await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }));
    out.images.push(...(imgs.Images ?? []).map((i) => ({ ...i, region })));
    const snaps = await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    out.snapshots.push(...(snaps.Snapshots ?? []).map((s) => ({ ...s, region })));
  }
  return out;
}

/** plume's snapshots that no image uses: what an interrupted delete must never leave. */
export function orphanSnapshots(inv: Inventory): string[] {
  const used = new Set(inv.images.map((i) => `${i.region} ${rootSnapshotId(i)}`));
  return inv.snapshots
    .filter((s) => tagMap(s.Tags)[TAG_RELEASE] && !used.has(`${s.region} ${s.SnapshotId}`))
    .map((s) => `${s.region} ${s.SnapshotId}`);
}

/** Images whose root snapshot is gone: what deleting snapshots first would leave. */
export function imagesWithoutSnapshot(inv: Inventory): string[] {
  const snaps = new Set(inv.snapshots.map((s) => `${s.region} ${s.SnapshotId}`));
  return inv.images
    .filter((i) => !snaps.has(`${i.region} ${rootSnapshotId(i)}`))
    .map((i) => `${i.region} ${i.ImageId}`);
}
