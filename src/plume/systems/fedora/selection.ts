import { PlumeError } from '../../../shared/errors.js';
import { IMAGE_TYPES, selectImage, type SelectedImage } from './images.js';
import { LAST_ATOMIC_RELEASE, type FedoraImageType } from './meaning.js';
import { allImages, type ImagesJson } from './productmd.js';

/** The arches AWS runs, in Fedora's names. */
export const FEDORA_ARCHES = ['x86_64', 'aarch64'] as const;

/** What a compose's cloud images come to: the images to publish, and every other one with the reason. */
export interface CloudImagePlan {
  publish: { imageType: FedoraImageType; arch: string; image: SelectedImage }[];
  /** Every other image of the cloud variants, once each: the path and why it is not published. */
  skipped: { path: string; reason: string }[];
  /** Image types and arches the compose should hold and does not (each a one-line reason). */
  missing: string[];
}

export interface CloudImageScope {
  channel: string;
  version: string;
  /** The image types a compose of this kind is released as (composeMeaning). */
  imageTypes: readonly FedoraImageType[];
  arches: readonly string[];
  /** The image types watched; all when absent. */
  watchedTypes?: readonly string[];
}

const CLOUD_VARIANTS = new Set(Object.values(IMAGE_TYPES).flatMap((r) => r.variants));

function imageTypeOf(variant: string, subvariant: string): FedoraImageType | undefined {
  for (const [type, rule] of Object.entries(IMAGE_TYPES))
    if (rule.variants.includes(variant) && rule.subvariants.includes(subvariant))
      return type as FedoraImageType;
  return undefined;
}

const fileName = (path: string) => path.split('/').pop() ?? path;

/**
 * Decide, for every image a compose files under its cloud variants, whether it is published and if not
 * why (fedimg published every raw-xz image of the Cloud and AtomicHost variants; what plume leaves out
 * must be said, image by image, never silently). Pure.
 */
export function planCloudImages(images: ImagesJson, scope: CloudImageScope): CloudImagePlan {
  const wantedTypes = scope.imageTypes.filter((t) => !scope.watchedTypes || scope.watchedTypes.includes(t));
  const wantedArches = FEDORA_ARCHES.filter((a) => scope.arches.includes(a));
  const publish: CloudImagePlan['publish'] = [];
  const missing: string[] = [];
  /** Per image type and arch: the image chosen, or why none could be. */
  const outcome = new Map<string, { chosen?: SelectedImage; error?: string }>();
  for (const imageType of wantedTypes)
    for (const arch of wantedArches) {
      try {
        const image = selectImage(images, imageType, arch);
        publish.push({ imageType, arch, image });
        outcome.set(`${imageType}/${arch}`, { chosen: image });
      } catch (err) {
        if (!(err instanceof PlumeError) || err.kind !== 'input') throw err;
        missing.push(err.oneLine());
        outcome.set(`${imageType}/${arch}`, { error: err.message });
      }
    }

  const skipped: CloudImagePlan['skipped'] = [];
  for (const image of allImages(images)) {
    if (!CLOUD_VARIANTS.has(image.variant)) continue;
    const type = imageTypeOf(image.variant, image.subvariant);
    const o = type ? outcome.get(`${type}/${image.arch}`) : undefined;
    if (o?.chosen?.path === image.path) continue;
    let reason: string;
    if (!type) reason = `its subvariant ${image.subvariant} is neither a Cloud-Base nor an AtomicHost image`;
    else if (!(FEDORA_ARCHES as readonly string[]).includes(image.arch))
      reason = `AWS runs no ${image.arch} images`;
    else if (image.type !== 'raw-xz')
      reason = `it is a ${image.type} file; AWS images are made from the raw-xz disk image`;
    else if (!scope.imageTypes.includes(type))
      reason =
        type === 'AtomicHost' && Number(scope.version) > LAST_ATOMIC_RELEASE
          ? `Atomic Host ended with Fedora ${LAST_ATOMIC_RELEASE}`
          : `${type} images of ${scope.channel} composes are not released`;
    else if (!wantedTypes.includes(type)) reason = `${type} is not among the watched image types`;
    else if (!(wantedArches as readonly string[]).includes(image.arch))
      reason = `${image.arch} is not among the watched arches`;
    else if (o?.chosen) reason = `the dedicated AWS image ${fileName(o.chosen.path)} is published instead`;
    else reason = o?.error ?? 'no image of its kind could be chosen';
    skipped.push({ path: image.path, reason });
  }
  return { publish, skipped, missing };
}
