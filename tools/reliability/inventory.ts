import {
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
} from '@aws-sdk/client-ec2';
import { mapSettled } from '../../src/shared/concurrency.js';

export interface InventoryImage {
  region: string;
  id: string;
  name: string;
  state: string;
  public: boolean;
  snapshotId?: string;
}

export interface InventorySnapshot {
  region: string;
  id: string;
  state: string;
  public: boolean;
  /** The image that uses it, if any. */
  image?: string;
}

export interface Inventory {
  images: InventoryImage[];
  snapshots: InventorySnapshot[];
  /** Snapshots no image uses: what an interrupted upload or copy must never leave behind. */
  orphans: InventorySnapshot[];
  /** `region/name` held by more than one image. */
  duplicateNames: string[];
}

/** Everything in the emulator's regions, read with the real SDK as an operator would with the aws CLI. */
export async function readInventory(endpoint: string, regions: string[]): Promise<Inventory> {
  const images: InventoryImage[] = [];
  const snapshots: InventorySnapshot[] = [];
  for (const region of regions) {
    const ec2 = new EC2Client({
      region,
      endpoint,
      credentials: { accessKeyId: 'AKIAEMULATOR0000TEST', secretAccessKey: 'x' },
      maxAttempts: 5,
    });
    try {
      const imgs = (await ec2.send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
      for (const i of imgs)
        images.push({
          region,
          id: i.ImageId!,
          name: i.Name ?? '',
          state: i.State ?? '',
          public: i.Public === true,
          snapshotId: i.BlockDeviceMappings?.find((m) => m.Ebs?.SnapshotId)?.Ebs?.SnapshotId,
        });
      const snaps = (await ec2.send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? [];
      const usedBy = new Map(
        images.filter((i) => i.region === region && i.snapshotId).map((i) => [i.snapshotId!, i.id]),
      );
      const attrs = await mapSettled(snaps, 8, async (s) => {
        const a = await ec2.send(
          new DescribeSnapshotAttributeCommand({
            SnapshotId: s.SnapshotId!,
            Attribute: 'createVolumePermission',
          }),
        );
        return (a.CreateVolumePermissions ?? []).some((p) => p.Group === 'all');
      });
      snaps.forEach((s, i) => {
        const attr = attrs[i]!;
        if (attr.status === 'rejected') throw attr.reason;
        snapshots.push({
          region,
          id: s.SnapshotId!,
          state: s.State ?? '',
          public: attr.value,
          image: usedBy.get(s.SnapshotId!),
        });
      });
    } finally {
      ec2.destroy();
    }
  }
  const names = new Map<string, number>();
  for (const i of images) names.set(`${i.region}/${i.name}`, (names.get(`${i.region}/${i.name}`) ?? 0) + 1);
  return {
    images,
    snapshots,
    orphans: snapshots.filter((s) => !s.image),
    duplicateNames: [...names].filter(([, n]) => n > 1).map(([k]) => k),
  };
}

/** The inventory without the ids AWS invents: what two runs of the same release must agree on. */
export function inventoryShape(inv: Inventory): string[] {
  const snapshots = new Map(inv.snapshots.map((s) => [s.id, s]));
  return inv.images
    .map((i) => {
      const s = i.snapshotId ? snapshots.get(i.snapshotId) : undefined;
      return `${i.region} ${i.name} ${i.state}${i.public ? ' public' : ''} snapshot:${s ? `${s.state}${s.public ? ' public' : ''}` : 'none'}`;
    })
    .concat(inv.orphans.map((s) => `${s.region} orphan snapshot ${s.state}`))
    .sort();
}
