import type { Compression } from '../../source/decompress.js';
import { gceName } from '../gce-names.js';
import { amiName } from './images.js';

/** What a Fedora plan needs to know about the release to name and describe its images on a provider. */
export interface FedoraRelease {
  channel: string;
  /** `41`, `Rawhide`. */
  version: string;
  arch: 'x86_64' | 'aarch64';
  respin: number;
  /** The label's kind, when the compose has one (a Beta is not the release). */
  labelKind: 'Beta' | 'RC' | 'none' | 'other';
  /** The compose's date, `YYYYMMDD` (Azure's version names carry it). */
  date?: string;
}

/**
 * What Fedora decides on each provider, beside what the config decides (account, places, visibility):
 * how the provider's file is read, what its images are called, and the provider's own settings.
 */
export interface ProviderDecisions {
  /** AWS and Azure get the decompressed disk; GCE takes the tarball as the compose has it. */
  compression: Compression;
  imageName(build: string, release: FedoraRelease, location: string, variant: string): string;
  settings(build: string, release: FedoraRelease): Record<string, unknown>;
}

/**
 * A GCE family per release, channel and arch, so `--image-family` means what users expect: a release's
 * images (and its Beta), Rawhide's, a branched release's nightlies apart from the release, arm64 apart.
 */
export function gceFamily(r: FedoraRelease): string {
  const version = r.version.toLowerCase();
  const branched = r.channel === 'branched' ? '-branched' : '';
  return `fedora-cloud-${version}${branched}${r.arch === 'aarch64' ? '-arm64' : ''}`;
}

/** The name of a GCE image from its build: the flavour left out, as fedora-image-uploader names them. */
export function gceImageName(build: string): string {
  return gceName(build.replace(/-Base-(GCE|GCP)(?=[-.])/, ''));
}

/**
 * An Azure image definition per release (or Rawhide) and arch, as fedora-image-uploader names them
 * (`Fedora-Cloud-41-x64`, `Fedora-Cloud-Rawhide-Arm64`). A branched release's nightlies go in the release's
 * definition, kept out of `latest` until the release itself arrives.
 */
export function azureDefinition(r: FedoraRelease): { definition: string; sku: string } {
  const version = /^\d+$/.test(r.version) ? r.version : 'Rawhide';
  const arch = r.arch === 'aarch64' ? 'Arm64' : 'x64';
  return { definition: `Fedora-Cloud-${version}-${arch}`, sku: `${version}-${arch}` };
}

/**
 * The version of a compose in its definition: release, date, respin (`41.20240911.0`), three whole numbers
 * as Azure requires. Rawhide has no release number; its definition holds Rawhide alone, so 0 orders it.
 */
export function azureVersionName(r: FedoraRelease): string {
  const release = /^\d+$/.test(r.version) ? Number(r.version) : 0;
  // Without a date the name is not a version name, and the provider's check says so.
  return `${release}.${r.date ?? 'undated'}.${r.respin}`;
}

/**
 * Pre-releases (Beta) and branched nightlies are not what `latest` should give; Rawhide's definition
 * holds nothing but nightlies, so its newest is its latest.
 */
export function azureExcludeFromLatest(r: FedoraRelease): boolean {
  return r.labelKind === 'Beta' || r.channel === 'branched';
}

/** Fedora Cloud's Azure features: Trusted Launch on x86_64 (Azure has none on Arm64), NVMe, accelerated networking. */
export function azureFeatures(r: FedoraRelease): { name: string; value: string }[] {
  return [
    ...(r.arch === 'x86_64' ? [{ name: 'SecurityType', value: 'TrustedLaunchSupported' }] : []),
    { name: 'DiskControllerTypes', value: 'SCSI, NVMe' },
    { name: 'IsAcceleratedNetworkSupported', value: 'True' },
  ];
}

export const DECISIONS: Record<string, ProviderDecisions> = {
  aws: {
    compression: 'xz',
    imageName: (build, r, location, variant) => amiName(build, location, variant, r.respin),
    settings: () => ({ rootDeviceName: '/dev/sda1' }),
  },
  gcp: {
    compression: 'none',
    imageName: (build) => gceImageName(build),
    settings: (_build, r) => ({
      family: gceFamily(r),
      guestOsFeatures:
        r.arch === 'x86_64'
          ? ['UEFI_COMPATIBLE', 'VIRTIO_SCSI_MULTIQUEUE', 'GVNIC', 'SEV_CAPABLE', 'SEV_SNP_CAPABLE']
          : ['UEFI_COMPATIBLE', 'VIRTIO_SCSI_MULTIQUEUE', 'GVNIC'],
    }),
  },
  azure: {
    compression: 'xz',
    imageName: (_build, r) => azureVersionName(r),
    settings: (_build, r) => ({
      ...azureDefinition(r),
      features: azureFeatures(r),
      excludeFromLatest: azureExcludeFromLatest(r),
    }),
  },
};
