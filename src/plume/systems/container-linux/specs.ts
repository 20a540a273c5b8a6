/**
 * Container Linux's channels as plume released them (mantle's cmd/plume channel specs): where each
 * channel's builds are, how its images are named and described, and the AWS partitions it publishes to,
 * each with its own credentials profile, base region and regions.
 */

export const BOARDS = ['amd64-usr'] as const;

/** The raw disk image (bzip2) plume uploads, and its detached OpenPGP signature beside it. */
export const IMAGE_FILE = 'coreos_production_ami_image.bin.bz2';
export const SIGNATURE_SUFFIX = '.sig';
/** Prefix of the AMI list files (`coreos_production_ami_all.json`, `..._hvm.txt`, `..._hvm_{region}.txt`). */
export const LIST_PREFIX = 'coreos_production_ami_';

/** The image's root volume: plume registered Container Linux AMIs with an 8 GiB gp2 root disk. */
export const VOLUME_GIB = 8;
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
};

// The gs:// buckets plume read, by their public https address.
const GCS = 'https://storage.googleapis.com';

export const CHANNELS: readonly ChannelSpec[] = [
  {
    name: 'alpha',
    description: 'closely tracks current development work; released frequently',
    baseUrl: `${GCS}/builds.release.core-os.net/alpha/boards`,
    ...RELEASE,
    partitions: RELEASE_PARTITIONS,
  },
  {
    name: 'beta',
    description: 'promoted alpha releases',
    baseUrl: `${GCS}/builds.release.core-os.net/beta/boards`,
    ...RELEASE,
    partitions: RELEASE_PARTITIONS,
  },
  {
    name: 'stable',
    description: 'promoted beta releases, for production clusters',
    baseUrl: `${GCS}/builds.release.core-os.net/stable/boards`,
    ...RELEASE,
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
