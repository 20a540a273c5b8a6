import type { Compression } from './source/decompress.js';
import type { AwsArchitecture } from './providers/aws/arch.js';
import type { ImageTarget } from './providers/types.js';

/** AWS image settings a system and channel decide (the rest of a release is cloud-neutral). */
export interface AwsImageSettings {
  /** `aws` or `aws-us-gov` (GovCloud), `aws-cn`. */
  partition: string;
  /** Named credentials profile; the SDK's default chain when absent. */
  profile?: string;
  architecture: AwsArchitecture;
  bootMode: 'uefi' | 'uefi-preferred' | 'legacy-bios';
  /** `v2.0` requires IMDSv2 on instances launched from the image. */
  imdsSupport?: 'v2.0';
  enaSupport: boolean;
  sriovNetSupport?: 'simple';
  rootDeviceName: string;
  tpmSupport?: 'v2.0';
}

export interface Visibility {
  public: boolean;
  /** Accounts to share with (when not public, or in addition). */
  accounts: string[];
}

/**
 * Everything a release will do, computed before anything is touched: `plume release --dry-run` prints it,
 * the runner executes it, the record reports against it.
 */
export interface ReleasePlan {
  /** Stable identity of this release: tagged on everything it creates so a rerun finds it. */
  key: string;
  system: string;
  channel: string;
  arch: string;
  imageType?: string;
  version: string;
  compose?: string;
  respin?: number;
  date?: string;
  label?: string;
  /** Build name: the image's name without region or volume type (also the snapshot's Name tag). */
  build: string;
  source: {
    url: string;
    sha256?: string;
    compression: Compression;
    size?: number;
    /** Volume size when the raw size cannot be read from the file. */
    fallbackVolumeGiB?: number;
    minVolumeGiB?: number;
    /** Fixed volume size; the image must fit. */
    volumeGiB?: number;
    /** Detached signature, for systems that sign instead of publishing checksums. */
    signatureUrl?: string;
    /** Public key file(s) the signature must verify against; checked before anything is uploaded. */
    signatureKey?: string;
  };
  provider: 'aws';
  primaryLocation: string;
  /** Every image that must exist when the release is done, the primary location's included. */
  targets: ImageTarget[];
  description: string;
  tags: Record<string, string>;
  visibility: Visibility;
  /** ISO time after which the images are marked deprecated. */
  deprecateAt?: string;
  aws: AwsImageSettings;
}

export function locations(plan: ReleasePlan): string[] {
  return [...new Set(plan.targets.map((t) => t.location))];
}

export function variants(plan: ReleasePlan): string[] {
  return [...new Set(plan.targets.map((t) => t.variant))];
}

export function targetKey(t: { location: string; variant: string }): string {
  return `${t.location}/${t.variant}`;
}
