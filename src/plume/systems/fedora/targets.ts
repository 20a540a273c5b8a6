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
};
