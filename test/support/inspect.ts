import {
  DescribeImagesCommand,
  DescribeSnapshotAttributeCommand,
  DescribeSnapshotsCommand,
  EC2Client,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';

/** Read what exists in the emulator with the real SDK, as an operator would with the aws CLI. */
export class Inspector {
  private readonly clients = new Map<string, EC2Client>();

  constructor(private readonly endpoint: string) {}

  ec2(region: string): EC2Client {
    let c = this.clients.get(region);
    if (!c)
      this.clients.set(
        region,
        (c = new EC2Client({
          region,
          endpoint: this.endpoint,
          credentials: { accessKeyId: 'AKIAEMULATOR0000TEST', secretAccessKey: 'x' },
          maxAttempts: 3,
        })),
      );
    return c;
  }

  async images(region: string): Promise<Image[]> {
    return (await this.ec2(region).send(new DescribeImagesCommand({ Owners: ['self'] }))).Images ?? [];
  }

  async snapshots(region: string): Promise<Snapshot[]> {
    return (
      (await this.ec2(region).send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }))).Snapshots ?? []
    );
  }

  async snapshotPublic(region: string, id: string): Promise<boolean> {
    const attr = await this.ec2(region).send(
      new DescribeSnapshotAttributeCommand({ SnapshotId: id, Attribute: 'createVolumePermission' }),
    );
    return (attr.CreateVolumePermissions ?? []).some((p) => p.Group === 'all');
  }

  /** Every image and snapshot in the regions, and the snapshots no image uses (orphans). */
  async inventory(regions: string[]) {
    const images: (Image & { region: string })[] = [];
    const snapshots: (Snapshot & { region: string })[] = [];
    for (const region of regions) {
      images.push(...(await this.images(region)).map((i) => ({ ...i, region })));
      snapshots.push(...(await this.snapshots(region)).map((s) => ({ ...s, region })));
    }
    const used = new Set(images.flatMap((i) => (i.BlockDeviceMappings ?? []).map((m) => m.Ebs?.SnapshotId)));
    return { images, snapshots, orphans: snapshots.filter((s) => !used.has(s.SnapshotId)) };
  }

  destroy(): void {
    for (const c of this.clients.values()) c.destroy();
  }
}
