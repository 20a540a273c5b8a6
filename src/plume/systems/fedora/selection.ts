import { PlumeError } from '../../../shared/errors.js';
import { ARTIFACTS, IMAGE_TYPES, isArtifactOf, selectArtifact, type SelectedImage } from './images.js';
import { LAST_ATOMIC_RELEASE, type FedoraImageType } from './meaning.js';
import { allImages, type ImagesJson } from './productmd.js';

/** The arches AWS runs, in Fedora's names. */
export const FEDORA_ARCHES = ['x86_64', 'aarch64'] as const;

/** What a compose's cloud images come to: the images to publish, and every other one with the reason. */
export interface CloudImagePlan {
  /** Per image type and arch, each provider's file; providers without one are in `unserved`. */
  publish: {
    imageType: FedoraImageType;
    arch: string;
    images: Record<string, SelectedImage>;
    /** Providers the compose has no file for, for this image type and arch, with why. */
    unserved: { provider: string; reason: string }[];
  }[];
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
  /** The providers published to (each takes its own file of a compose). */
  providers: readonly string[];
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
  const providers = scope.providers.filter((p) => ARTIFACTS[p]);
  const publish: CloudImagePlan['publish'] = [];
  const missing: string[] = [];
  /** Per image type and arch: the files chosen (by path), or why none could be. */
  const outcome = new Map<string, { chosen: Map<string, string>; error?: string }>();
  for (const imageType of wantedTypes)
    for (const arch of wantedArches) {
      const chosen: Record<string, SelectedImage> = {};
      const unserved: { provider: string; reason: string }[] = [];
      for (const provider of providers)
        try {
          chosen[provider] = selectArtifact(images, imageType, arch, provider);
        } catch (err) {
          if (!(err instanceof PlumeError) || err.kind !== 'input') throw err;
          unserved.push({ provider, reason: err.oneLine() });
        }
      const paths = new Map(Object.entries(chosen).map(([p, i]) => [i.path, p]));
      if (paths.size > 0) publish.push({ imageType, arch, images: chosen, unserved });
      else missing.push(unserved[0]?.reason ?? `no provider publishes ${imageType} images`);
      outcome.set(`${imageType}/${arch}`, { chosen: paths, error: unserved[0]?.reason });
    }

  const skipped: CloudImagePlan['skipped'] = [];
  const served = (i: SelectedImage) => providers.filter((p) => isArtifactOf(i, ARTIFACTS[p]!));
  const madeFrom = providers.map(
    (p) => `${ARTIFACTS[p]!.cloud} images are made from ${ARTIFACTS[p]!.madeFrom}`,
  );
  for (const image of allImages(images)) {
    if (!CLOUD_VARIANTS.has(image.variant)) continue;
    const type = imageTypeOf(image.variant, image.subvariant);
    const o = type ? outcome.get(`${type}/${image.arch}`) : undefined;
    if (o?.chosen.has(image.path)) continue;
    const takers = served(image);
    const other = Object.entries(ARTIFACTS).find(
      ([p, a]) => !providers.includes(p) && isArtifactOf(image, a),
    );
    let reason: string;
    if (!type) reason = `its subvariant ${image.subvariant} is neither a Cloud-Base nor an AtomicHost image`;
    else if (!(FEDORA_ARCHES as readonly string[]).includes(image.arch))
      reason = `${providers.length === 1 ? ARTIFACTS[providers[0]!]!.cloud : 'no provider'} runs no ${image.arch} images`;
    else if (takers.length === 0)
      reason = other
        ? `it is the ${other[1].cloud} image, and ${other[0]} is not published to`
        : `it is a ${image.type} file; ${madeFrom.join('; ')}`;
    else if (!scope.imageTypes.includes(type))
      reason =
        type === 'AtomicHost' && Number(scope.version) > LAST_ATOMIC_RELEASE
          ? `Atomic Host ended with Fedora ${LAST_ATOMIC_RELEASE}`
          : `${type} images of ${scope.channel} composes are not released`;
    else if (!wantedTypes.includes(type)) reason = `${type} is not among the watched image types`;
    else if (!(wantedArches as readonly string[]).includes(image.arch))
      reason = `${image.arch} is not among the watched arches`;
    else {
      const instead = [...(o?.chosen ?? [])].find(([, p]) => takers.includes(p));
      reason = instead
        ? `the dedicated ${ARTIFACTS[instead[1]]!.cloud} image ${fileName(instead[0])} is published instead`
        : (o?.error ?? 'no image of its kind could be chosen');
    }
    skipped.push({ path: image.path, reason });
  }
  return { publish, skipped, missing };
}
