import type { Timing } from './context.js';
import type { EbsModel } from './ebs.js';
import type { BufferedReply } from './replies.js';

export interface EbsDevice {
  snapshotId?: string;
  volumeSize?: number;
  volumeType?: string;
  deleteOnTermination?: boolean;
  encrypted?: boolean;
  iops?: number;
  throughput?: number;
}

export interface BlockDevice {
  deviceName: string;
  virtualName?: string;
  noDevice?: boolean;
  ebs?: EbsDevice;
}

/** What RegisterImage was asked to record, which moto drops. */
export interface ImageAttributes {
  architecture: string;
  virtualizationType: string;
  rootDeviceName: string;
  enaSupport?: boolean;
  sriovNetSupport?: string;
  bootMode?: string;
  imdsSupport?: string;
  tpmSupport?: string;
  blockDeviceMappings: BlockDevice[];
}

export interface ImageRecord {
  id: string;
  region: string;
  name: string;
  /** Undefined for images whose attributes the proxy never saw (a copy of a moto-native image). */
  attributes?: ImageAttributes;
  createdAt: number;
  /** Set by an `image-failed` fault: where the image ends instead of `available`. */
  failure?: { code: string; message: string };
  source?: { imageId: string; region: string };
  /** Snapshots CopyImage made for this image: they are pending while the image is. */
  createdSnapshots: string[];
}

export type ImageState = 'pending' | 'available' | 'failed';

interface TokenEntry {
  fingerprint: string;
  result: Promise<BufferedReply>;
}

/** The proxy's record of images and the pieces of EC2 state moto lacks. */
export class Ec2Model {
  readonly images = new Map<string, ImageRecord>();
  /** region + name -> image id ('' while a registration is in flight), for duplicate-name refusal. */
  private readonly names = new Map<string, string>();
  readonly deprecations = new Map<string, string>();
  readonly copyTokens = new Map<string, TokenEntry>();
  /** Snapshot made by a CopyImage -> that image. */
  private readonly snapshotImage = new Map<string, string>();

  constructor(
    private readonly timing: Timing,
    private readonly ebs: EbsModel,
  ) {}

  /** Claim a name in a region; when it is taken, returns who holds it (an image id or a description). */
  reserveName(region: string, name: string): string | undefined {
    const key = `${region}\0${name}`;
    const holder = this.names.get(key);
    if (holder !== undefined) return holder || 'an image being registered';
    this.names.set(key, '');
    return undefined;
  }

  releaseName(region: string, name: string): void {
    this.names.delete(`${region}\0${name}`);
  }

  add(rec: ImageRecord): void {
    this.images.set(rec.id, rec);
    this.names.set(`${rec.region}\0${rec.name}`, rec.id);
    for (const snap of rec.createdSnapshots) this.snapshotImage.set(snap, rec.id);
  }

  remove(id: string): void {
    const rec = this.images.get(id);
    if (!rec) return;
    this.images.delete(id);
    this.deprecations.delete(id);
    if (this.names.get(`${rec.region}\0${rec.name}`) === id) this.releaseName(rec.region, rec.name);
    for (const snap of rec.createdSnapshots) this.snapshotImage.delete(snap);
  }

  forgetSnapshot(id: string): void {
    this.snapshotImage.delete(id);
  }

  state(rec: ImageRecord, now = Date.now()): ImageState {
    if (now < rec.createdAt + this.timing.pendingMs(rec.region)) return 'pending';
    // An image over an EBS-direct snapshot that is not sealed yet cannot be available.
    const snaps = rec.attributes?.blockDeviceMappings ?? [];
    if (snaps.some((b) => b.ebs?.snapshotId && this.ebs.status(b.ebs.snapshotId, now) === 'pending')) {
      return 'pending';
    }
    return rec.failure ? 'failed' : 'available';
  }

  /** The live image whose block device mapping uses this snapshot, if any. */
  snapshotUser(snapshotId: string): string | undefined {
    for (const rec of this.images.values()) {
      if (rec.attributes?.blockDeviceMappings.some((b) => b.ebs?.snapshotId === snapshotId)) return rec.id;
    }
    return undefined;
  }

  /** For snapshots a CopyImage made: what the copy's progress makes their status. */
  copiedSnapshotStatus(snapshotId: string): 'pending' | 'error' | undefined {
    const imageId = this.snapshotImage.get(snapshotId);
    const rec = imageId ? this.images.get(imageId) : undefined;
    if (!rec) return undefined;
    const state = this.state(rec);
    return state === 'pending' ? 'pending' : state === 'failed' ? 'error' : undefined;
  }

  reset(): void {
    this.images.clear();
    this.names.clear();
    this.deprecations.clear();
    this.copyTokens.clear();
    this.snapshotImage.clear();
  }
}
