import { PlumeError } from '../../../shared/errors.js';
import { allImages, type ImageEntry, type ImagesJson } from './productmd.js';

/** How an image type appears in a compose's images.json. */
export interface ImageTypeRule {
  variants: readonly string[];
  subvariants: readonly string[];
}

export const IMAGE_TYPES: Record<string, ImageTypeRule> = {
  // Fedora 25 filed both under `CloudImages`; later composes use `Cloud` and `AtomicHost`.
  'Cloud-Base': { variants: ['Cloud', 'CloudImages'], subvariants: ['Cloud_Base'] },
  AtomicHost: { variants: ['AtomicHost', 'CloudImages'], subvariants: ['Atomic', 'AtomicHost'] },
};

/**
 * Which file of a compose each provider publishes: the productmd image types it is filed under, and the
 * flavour its file name carries. AWS takes the raw disk (the dedicated AmazonEC2 build where there is one,
 * the generic raw-xz otherwise); GCE the tarball holding disk.raw, which composes file as `tar-gz` (and
 * since the kiwi builds as `docker`, so only under its GCE/GCP name); Azure the fixed VHD.
 */
export interface ArtifactRule {
  /** What people call it, in messages. */
  what: string;
  /** The provider's name as people say it. */
  cloud: string;
  /** What the provider's images are made from, for a line saying why a file is not published. */
  madeFrom: string;
  types: readonly string[];
  /** Types a file is taken under only when its name carries the flavour. */
  typesIfFlavoured?: readonly string[];
  flavour: RegExp;
}

export const ARTIFACTS: Record<string, ArtifactRule> = {
  aws: {
    what: 'raw-xz',
    cloud: 'AWS',
    madeFrom: 'the raw-xz disk image',
    types: ['raw-xz'],
    flavour: /-AmazonEC2[.-]/,
  },
  gcp: {
    what: 'GCE tar.gz',
    cloud: 'GCE',
    madeFrom: 'the tar.gz archive of disk.raw',
    types: ['tar-gz'],
    typesIfFlavoured: ['docker'],
    flavour: /-(GCE|GCP)[.-]/,
  },
  azure: {
    what: 'Azure vhdfixed.xz',
    cloud: 'Azure',
    madeFrom: 'the fixed VHD',
    types: ['vhd-compressed'],
    flavour: /-Azure[.-]/,
  },
};

export type SelectedImage = ImageEntry & { variant: string };

const fileName = (i: ImageEntry) => i.path.split('/').pop() ?? '';

/** Whether a file of a compose is of the kind a provider publishes (whatever its image type and arch). */
export function isArtifactOf(i: ImageEntry, artifact: ArtifactRule): boolean {
  return (
    artifact.types.includes(i.type) ||
    (artifact.typesIfFlavoured?.includes(i.type) === true && artifact.flavour.test(fileName(i)))
  );
}

/**
 * Choose the one file a provider publishes for an image type and arch. A compose holds raw-xz images of many
 * variants and arches, qcow2 and Vagrant files, tarballs and VHDs: select on variant, subvariant, type and
 * arch, never "the first raw-xz"; prefer the provider's own build where the compose has one. A compose
 * without the file is an error that says what the compose does hold, not a silent skip.
 */
export function selectArtifact(
  images: ImagesJson,
  imageType: string,
  arch: string,
  provider: string,
): SelectedImage {
  const rule = IMAGE_TYPES[imageType];
  if (!rule)
    throw new PlumeError(
      'usage',
      `unknown image type ${JSON.stringify(imageType)}`,
      `choose one of: ${Object.keys(IMAGE_TYPES).join(', ')}`,
    );
  const artifact = ARTIFACTS[provider];
  if (!artifact) throw new PlumeError('usage', `fedora does not publish to ${provider}`);
  const ofType = (i: ImageEntry) => isArtifactOf(i, artifact);
  const all = allImages(images);
  const candidates = all.filter(
    (i) =>
      rule.variants.includes(i.variant) &&
      rule.subvariants.includes(i.subvariant) &&
      ofType(i) &&
      i.arch === arch,
  );
  const preferred = candidates.filter((i) => artifact.flavour.test(fileName(i)));
  const pool = preferred.length > 0 ? preferred : candidates;
  if (pool.length === 1) return pool[0]!;
  const compose = images.payload.compose.id;
  if (pool.length > 1)
    throw new PlumeError(
      'input',
      `compose ${compose} has ${pool.length} ${imageType} ${artifact.what} images for ${arch}: ${pool.map((i) => i.path).join(', ')}`,
      'plume will not guess; report the compose layout change',
    );
  const same = all.filter(ofType).map((i) => `${i.variant}/${i.subvariant}/${i.arch}`);
  throw new PlumeError(
    'input',
    `compose ${compose} has no ${imageType} ${artifact.what} image for ${arch}`,
    same.length > 0
      ? `its ${artifact.what} images are: ${[...new Set(same)].sort().join(', ')}`
      : `it has no ${artifact.what} image at all`,
  );
}

/** The raw disk AWS publishes (see selectArtifact). */
export function selectImage(images: ImagesJson, imageType: string, arch: string): SelectedImage {
  return selectArtifact(images, imageType, arch, 'aws');
}

/** `Fedora-Cloud-Base-30-20190611.0.x86_64.raw.xz` → `Fedora-Cloud-Base-30-20190611.0.x86_64`. */
export function buildName(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.replace(/\.(raw\.xz|tar\.gz|vhdfixed\.xz|vhd\.xz)$/, '').replace(/\.(raw|img|vhd)$/, '');
}

/** The AMI name scheme the Fedora websites and fedimg used: `{build}-hvm-{region}-{voltype}-{respin}`. */
export function amiName(build: string, region: string, volumeType: string, respin: number): string {
  return `${build}-hvm-${region}-${volumeType}-${respin}`;
}
