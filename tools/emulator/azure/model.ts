import type { RegionStatus } from './replication.js';
import type { DiskSource, SourceCheck } from './source.js';

/** The emulated Compute Gallery resources, in memory. Names are kept as given, looked up without case. */

export type Permissions = 'Private' | 'Groups' | 'Community';
export type GroupType = 'Subscriptions' | 'AADTenants';

export interface CommunityInfo {
  publisherUri: string;
  publisherContact: string;
  eula: string;
  publicNamePrefix: string;
  enabled: boolean;
  publicNames: string[];
}

export interface GalleryRecord {
  rg: string;
  name: string;
  location: string;
  tags?: Record<string, string>;
  description?: string;
  permissions: Permissions;
  groups: Map<GroupType, string[]>;
  community?: CommunityInfo;
  images: Map<string, ImageRecord>;
}

export interface Feature {
  name: string;
  value: string;
}

export interface ImageRecord {
  name: string;
  location: string;
  tags?: Record<string, string>;
  osType: 'Linux' | 'Windows';
  osState: 'Generalized' | 'Specialized';
  hyperVGeneration: 'V1' | 'V2';
  architecture: 'x64' | 'Arm64';
  identifier: { publisher: string; offer: string; sku: string };
  features: Feature[];
  description?: string;
  eula?: string;
  endOfLifeDate?: string;
  versions: Map<string, VersionRecord>;
}

export interface TargetRegion {
  /** Normalised (eastus). */
  name: string;
  regionalReplicaCount: number;
  storageAccountType: string;
  excludeFromLatest?: boolean;
  /** Set for a region added by an update: it replicates from then, not from when the source was read. */
  since?: number;
}

export interface VersionRecord {
  name: string;
  location: string;
  tags?: Record<string, string>;
  targetRegions: TargetRegion[];
  replicaCount: number;
  excludeFromLatest: boolean;
  endOfLifeDate?: string;
  storageAccountType: string;
  publishedDate: string;
  source: DiskSource;
  hostCaching: string;
  /** The source blob as judged when read; undefined while it is being read. */
  check?: SourceCheck;
  /** When the source was found good: replication starts then. */
  readyAt?: number;
  /** An `image-failed` fault: the version fails whatever its source. */
  injectedFailure?: { code: string; message: string };
  /** Regions that have completed or failed. */
  regionsFinal: Map<string, RegionStatus>;
}

const key = (s: string) => s.toLowerCase();

export class Store {
  readonly resourceGroups = new Map<string, string>();
  readonly galleries = new Map<string, GalleryRecord>();

  addResourceGroup(name: string): void {
    this.resourceGroups.set(key(name), name);
  }

  resourceGroup(name: string): string | undefined {
    return this.resourceGroups.get(key(name));
  }

  gallery(rg: string, name: string): GalleryRecord | undefined {
    return this.galleries.get(`${key(rg)}/${key(name)}`);
  }

  putGallery(g: GalleryRecord): void {
    this.galleries.set(`${key(g.rg)}/${key(g.name)}`, g);
  }

  deleteGallery(g: GalleryRecord): void {
    this.galleries.delete(`${key(g.rg)}/${key(g.name)}`);
  }

  galleriesIn(rg?: string): GalleryRecord[] {
    return [...this.galleries.values()].filter((g) => rg === undefined || key(g.rg) === key(rg));
  }

  clear(): void {
    this.resourceGroups.clear();
    this.galleries.clear();
  }
}

export function image(g: GalleryRecord, name: string): ImageRecord | undefined {
  return g.images.get(key(name));
}

export function version(i: ImageRecord, name: string): VersionRecord | undefined {
  return i.versions.get(key(name));
}

export function keyOf(name: string): string {
  return key(name);
}
