import { GCE_NAME_MAX, gceName } from '../gce-names.js';

/**
 * Container Linux's channels as plume released them (mantle's cmd/plume channel specs): where each
 * channel's builds are, how its images are named and described, the AWS partitions it publishes to (each
 * with its own credentials profile, base region and regions), and its GCE family and Azure definition.
 */

export const BOARDS = ['amd64-usr'] as const;

/** The raw disk image (bzip2) plume uploads, and its detached OpenPGP signature beside it. */
export const IMAGE_FILE = 'coreos_production_ami_image.bin.bz2';
export const SIGNATURE_SUFFIX = '.sig';
/** The GCE archive (a tar.gz holding disk.raw) and the Azure fixed VHD (bzip2) of the same build, each signed. */
export const GCE_FILE = 'coreos_production_gce.tar.gz';
export const AZURE_FILE = 'coreos_production_azure_image.vhd.bz2';
/** The file plume wrote beside a release naming its GCE image (`projects/P/global/images/N`). */
export const GCE_PUBLISH_FILE = 'coreos_production_gce.txt';
/** Prefix of the AMI list files (`coreos_production_ami_all.json`, `..._hvm.txt`, `..._hvm_{region}.txt`). */
export const LIST_PREFIX = 'coreos_production_ami_';

/** The image's root volume: plume registered Container Linux AMIs with an 8 GiB gp2 root disk. */
export const VOLUME_GIB = 8;
/** Container Linux's Azure disk (its `azure` disk layout, the 30 GiB classic Azure OS disks had). */
export const AZURE_VOLUME_GIB = 30;
export const VOLUME_TYPE = 'gp2';

export interface PartitionSpec {
  /** Printable name; its slug names the target (`aws`, `aws-govcloud`). */
  name: string;
  partition: 'aws' | 'aws-us-gov' | 'aws-cn';
  profile: string;
  baseRegion: string;
  regions: string[];
}

export interface ChannelSpec {
  name: string;
  description: string;
  /** `{base}/{board}/{version}/` holds the image; `{user}` is the developer's name for the user channel. */
  baseUrl: string;
  baseName: string;
  baseDescription: string;
  partitions: PartitionSpec[];
  /** How mantle began a GCE image's description (`CoreOS, CoreOS stable`). */
  gceDescription: string;
  /** An Azure image definition's description (mantle's OS image description of the channel). */
  azureDescription: string;
}

const RELEASE_PARTITIONS: PartitionSpec[] = [
  {
    name: 'AWS',
    partition: 'aws',
    profile: 'default',
    baseRegion: 'us-west-2',
    regions: [
      'us-east-1',
      'us-east-2',
      'us-west-1',
      'us-west-2',
      'eu-west-1',
      'eu-west-2',
      'eu-west-3',
      'eu-central-1',
      'eu-north-1',
      'ap-south-1',
      'ap-southeast-1',
      'ap-southeast-2',
      'ap-northeast-1',
      'ap-northeast-2',
      'sa-east-1',
      'ca-central-1',
    ],
  },
  {
    name: 'AWS GovCloud',
    partition: 'aws-us-gov',
    profile: 'govcloud',
    baseRegion: 'us-gov-west-1',
    regions: ['us-gov-west-1', 'us-gov-east-1'],
  },
];

const RELEASE = { baseName: 'CoreOS', baseDescription: 'CoreOS Container Linux' };
const DEVELOPMENT = {
  baseName: 'Container-Linux',
  baseDescription: 'CoreOS Container Linux development image',
  gceDescription: 'CoreOS Container Linux development image',
  azureDescription: 'CoreOS Container Linux development image',
};

// The gs:// buckets plume read, by their public https address.
const GCS = 'https://storage.googleapis.com';

export const CHANNELS: readonly ChannelSpec[] = [
  {
    name: 'alpha',
    description: 'closely tracks current development work; released frequently',
    baseUrl: `${GCS}/builds.release.core-os.net/alpha/boards`,
    ...RELEASE,
    gceDescription: 'CoreOS, CoreOS alpha',
    azureDescription:
      'The Alpha channel closely tracks current development work and is released frequently. The newest versions of the Linux kernel, systemd, and other components will be available for testing.',
    partitions: RELEASE_PARTITIONS,
  },
  {
    name: 'beta',
    description: 'promoted alpha releases',
    baseUrl: `${GCS}/builds.release.core-os.net/beta/boards`,
    ...RELEASE,
    gceDescription: 'CoreOS, CoreOS beta',
    azureDescription:
      'The Beta channel consists of promoted Alpha releases. Mix a few Beta machines into your production clusters to catch any bugs specific to your hardware or configuration.',
    partitions: RELEASE_PARTITIONS,
  },
  {
    name: 'stable',
    description: 'promoted beta releases, for production clusters',
    baseUrl: `${GCS}/builds.release.core-os.net/stable/boards`,
    ...RELEASE,
    gceDescription: 'CoreOS, CoreOS stable',
    azureDescription:
      'The Stable channel should be used by production clusters. Versions of CoreOS are battle-tested within the Beta and Alpha channels before being promoted.',
    partitions: RELEASE_PARTITIONS,
  },
  {
    name: 'developer',
    description: 'development builds, published in the developer account',
    baseUrl: `${GCS}/builds.developer.core-os.net/boards`,
    ...DEVELOPMENT,
    partitions: [
      {
        name: 'AWS West',
        partition: 'aws',
        profile: 'coreos-cl',
        baseRegion: 'us-west-2',
        regions: ['us-west-2'],
      },
    ],
  },
  {
    name: 'user',
    description: "a developer's own builds ({user} is $USER), published in the developer account",
    baseUrl: `${GCS}/users.developer.core-os.net/{user}/boards`,
    ...DEVELOPMENT,
    partitions: [
      {
        name: 'AWS West',
        partition: 'aws',
        profile: 'coreos-cl',
        baseRegion: 'us-west-2',
        regions: ['us-west-1', 'us-west-2', 'eu-west-3'],
      },
      {
        // A partition with a single region, as plume kept one to test that case.
        name: 'AWS East',
        partition: 'aws',
        profile: 'coreos-cl',
        baseRegion: 'us-east-1',
        regions: ['us-east-1'],
      },
    ],
  },
];

export function slug(name: string): string {
  return name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');
}

/** `CoreOS-stable-1688.5.3-hvm`: characters AWS does not allow in names become `_`, as plume did. */
export function amiName(baseName: string, channel: string, version: string): string {
  return `${`${baseName}-${channel}-${version}`.replace(/[^A-Za-z0-9()\\./_-]/g, '_')}-hvm`;
}

export function imageDescription(baseDescription: string, channel: string, version: string): string {
  return `${baseDescription} ${channel} ${version} (HVM)`;
}

/** `coreos-stable`: mantle's GCE family of a channel (`coreos-developer`, `coreos-user` for development builds). */
export function gceFamily(channel: string): string {
  return gceName(`coreos-${channel}`);
}

/** The day a GCE image's name carries: `-v` and eight digits. */
const GCE_DATE_SUFFIX = '-vYYYYMMDD'.length;

/**
 * mantle's GCE image name, `coreos-{channel}-{version, dots and pluses as dashes}-v{YYYYMMDD}`
 * (`coreos-stable-1688-5-3-v20180601`), under GCE's rules (gce-names.ts). A version too long for 63
 * characters is shortened before the date, which always ends the name; `prefix` is the name up to the date,
 * what a later run finds the image by whatever day it names.
 */
export function gceImageName(
  channel: string,
  version: string,
  yyyymmdd: string,
): { name: string; prefix: string } {
  if (!/^\d{8}$/.test(yyyymmdd)) throw new Error(`not a YYYYMMDD date: ${yyyymmdd}`);
  const head = gceName(`coreos-${channel}-${version}`, GCE_NAME_MAX - GCE_DATE_SUFFIX);
  return { name: `${head}-v${yyyymmdd}`, prefix: `${head}-v` };
}

/** mantle's description: `CoreOS, CoreOS stable, 1688.5.3, amd64-usr published on 2018-06-01`. */
export function gceImageDescription(
  spec: ChannelSpec,
  version: string,
  board: string,
  isoDay: string,
): string {
  return `${spec.gceDescription}, ${version}, ${board} published on ${isoDay}`;
}

/** `Stable`: how mantle spelled a channel in Azure (`strings.Title`). */
function title(channel: string): string {
  return channel.charAt(0).toUpperCase() + channel.slice(1);
}

/**
 * One Azure image definition per channel, named as mantle named its OS images (`{offer}-{Channel}`), with
 * the Marketplace's identifier (`CoreOS:CoreOS:Stable`): the SKU is the channel.
 */
export function azureDefinition(channel: string): { definition: string; sku: string } {
  return { definition: `CoreOS-${title(channel)}`, sku: title(channel) };
}

/** Azure's version names: three whole numbers, each an Int32 (`1688.5.3`). */
const AZURE_VERSION = /^(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})\.(0|[1-9]\d{0,9})$/;

/**
 * The version of a build in its channel's definition: the Container Linux version itself when Azure can
 * name a version so (`1688.5.3`); undefined for one it cannot (`1745.0.0+jenkins2-master+local-999`).
 */
export function azureVersionName(version: string): string | undefined {
  const m = AZURE_VERSION.exec(version);
  if (!m || m.slice(1).some((n) => Number(n) > 2 ** 31 - 1)) return undefined;
  return version;
}
