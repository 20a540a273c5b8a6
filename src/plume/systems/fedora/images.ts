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

const AWS_FLAVOUR = /-AmazonEC2[.-]/;

export type SelectedImage = ImageEntry & { variant: string };

/**
 * Choose the one image to publish for an image type and arch. A compose holds raw-xz images of many
 * variants and arches, qcow2 and Vagrant files and a GCP tarball: select on variant, subvariant, type and
 * arch, never "the first raw-xz"; prefer the dedicated AmazonEC2 build where the compose has one. A compose
 * without the image is an error that says what the compose does hold, not a silent skip.
 */
export function selectImage(images: ImagesJson, imageType: string, arch: string): SelectedImage {
  const rule = IMAGE_TYPES[imageType];
  if (!rule)
    throw new PlumeError(
      'usage',
      `unknown image type ${JSON.stringify(imageType)}`,
      `choose one of: ${Object.keys(IMAGE_TYPES).join(', ')}`,
    );
  const all = allImages(images);
  const candidates = all.filter(
    (i) =>
      rule.variants.includes(i.variant) &&
      rule.subvariants.includes(i.subvariant) &&
      i.type === 'raw-xz' &&
      i.arch === arch,
  );
  const preferred = candidates.filter((i) => AWS_FLAVOUR.test(i.path.split('/').pop() ?? ''));
  const pool = preferred.length > 0 ? preferred : candidates;
  if (pool.length === 1) return pool[0]!;
  const compose = images.payload.compose.id;
  if (pool.length > 1)
    throw new PlumeError(
      'input',
      `compose ${compose} has ${pool.length} ${imageType} raw-xz images for ${arch}: ${pool.map((i) => i.path).join(', ')}`,
      'plume will not guess; report the compose layout change',
    );
  const rawXz = all.filter((i) => i.type === 'raw-xz').map((i) => `${i.variant}/${i.subvariant}/${i.arch}`);
  throw new PlumeError(
    'input',
    `compose ${compose} has no ${imageType} raw-xz image for ${arch}`,
    rawXz.length > 0
      ? `its raw-xz images are: ${[...new Set(rawXz)].sort().join(', ')}`
      : 'it has no raw-xz image at all',
  );
}

/** `Fedora-Cloud-Base-30-20190611.0.x86_64.raw.xz` → `Fedora-Cloud-Base-30-20190611.0.x86_64`. */
export function buildName(path: string): string {
  const base = path.split('/').pop() ?? path;
  return base.replace(/\.raw\.xz$/, '').replace(/\.(raw|img)$/, '');
}

/** The AMI name scheme the Fedora websites and fedimg used: `{build}-hvm-{region}-{voltype}-{respin}`. */
export function amiName(build: string, region: string, volumeType: string, respin: number): string {
  return `${build}-hvm-${region}-${volumeType}-${respin}`;
}
