import type { Compression } from './source/decompress.js';

/**
 * The cloud-neutral vocabulary of a release. A release is one image of one system (channel, version,
 * architecture), published to one or more *targets*: each target is one provider's part of the release
 * (AWS commercial, AWS GovCloud, GCE, Azure...), with the artifact of the compose that provider takes, the
 * names its images get, where they go and how they are made public. Words of one cloud (AMI, snapshot,
 * family, gallery) stay in that cloud's settings and inside its provider's folder.
 *
 * Systems (systems/) decide everything here from source facts and settings; providers (providers/) carry
 * a target out. Neither imports the other: both import this module, which imports neither.
 */

/** Architectures in the neutral vocabulary (the kernel's names); each provider maps them to its own. */
export type Architecture = 'x86_64' | 'aarch64';
export const ARCHITECTURES: readonly Architecture[] = ['x86_64', 'aarch64'];

export interface Visibility {
  public: boolean;
  /** Principals to share with besides (or instead of) the public, in the provider's terms (AWS accounts). */
  accounts: string[];
}

/** The file a target publishes, and what is known about it before it is read. */
export interface SourceSpec {
  url: string;
  sha256?: string;
  compression: Compression;
  size?: number;
  /** Volume size when the raw size cannot be read from the file. */
  fallbackVolumeGiB?: number;
  minVolumeGiB?: number;
  /** Fixed volume size; the image must fit. */
  volumeGiB?: number;
  /** Least data (bytes in blocks that are not all zeros) an image must hold to be published (policy). */
  minDataBytes?: number;
  /** Largest volume an image may need (policy): a larger one is refused before anything is created. */
  maxVolumeGiB?: number;
  /** Detached signature, for systems that sign instead of publishing checksums. */
  signatureUrl?: string;
  /** Public key file(s) the signature must verify against; checked before anything is uploaded. */
  signatureKey?: string;
}

/** One image that must exist when a target is done: where, which flavour, under which name. */
export interface ImageTarget {
  /** Where the image lives: an AWS region, a GCE storage location, an Azure region. */
  location: string;
  /** One flavour of the same image in a location (AWS: the root volume type). */
  variant: string;
  name: string;
}

/**
 * Where and how one provider publishes, as the config file, the system's channel and the command line
 * say (in that order): the input of a system's plan for that provider.
 */
export interface TargetSettings {
  /** Which provider carries the target out (`aws`, `gcp`, `azure`). */
  provider: string;
  /** The target's name within the release: the provider's, or e.g. `aws-govcloud` beside `aws`. */
  name: string;
  primaryLocation: string;
  /** Every location, the primary first; empty means "all the provider has" until resolved. */
  locations: string[];
  variants: string[];
  visibility: Visibility;
  /** Days after the build date when images are marked deprecated; none when absent. */
  deprecateAfterDays?: number;
  /** Fixed volume size; by default the image's own size, rounded up to whole GiB. */
  volumeGiB?: number;
  /** The provider's own settings (account, credentials profile, ...), validated by the provider. */
  settings: Record<string, unknown>;
}

/**
 * A table of target settings as a config file writes them (`[aws]`'s keys for AWS), from a system's
 * environments, channels or partitions: the provider validates and applies it.
 */
export interface SettingsLayer {
  /** Where the table comes from, as the config file spells it (`systems.NAME.environments.staging`). */
  where: string;
  table: Record<string, unknown>;
  /** The name of the target the layer defines, when a channel publishes to several of one provider. */
  name?: string;
}

/** Later layers win; visibility and the provider's own settings are merged key by key. */
export function mergeTargetSettings<T extends Partial<TargetSettings>>(
  base: T,
  ...layers: Partial<TargetSettings>[]
): T {
  let out = base;
  for (const layer of layers)
    out = {
      ...out,
      ...layer,
      ...(out.visibility || layer.visibility
        ? { visibility: { ...out.visibility, ...layer.visibility } as Visibility }
        : {}),
      ...(out.settings || layer.settings ? { settings: { ...out.settings, ...layer.settings } } : {}),
    };
  return out;
}

/** One provider's part of a release: everything it will do, computed before anything is touched. */
export interface TargetPlan {
  /** Identity of this part: tagged or labelled on everything it creates, so a rerun finds it. */
  key: string;
  provider: string;
  name: string;
  architecture: Architecture;
  /** Build name: the image's name without location or variant. */
  build: string;
  description: string;
  /** Facts about the release every image carries (as tags, labels, ...: the provider's way). */
  tags: Record<string, string>;
  source: SourceSpec;
  primaryLocation: string;
  /** Every image that must exist when the target is done, the primary location's included. */
  images: ImageTarget[];
  visibility: Visibility;
  /** ISO time after which the images are marked deprecated. */
  deprecateAt?: string;
  /** The provider's own section: the system's decisions and the config's, validated by the provider. */
  settings: Record<string, unknown>;
}

/**
 * Everything a release will do: `plume release --dry-run` prints it, the runner executes it (each target
 * at once, so the release takes as long as its slowest provider), the record reports against it.
 */
export interface ReleasePlan {
  /** Identity of the release; each target's key starts from it. */
  key: string;
  system: string;
  channel: string;
  /** The system's name for the architecture or board (x86_64, aarch64, amd64-usr). */
  arch: string;
  imageType?: string;
  version: string;
  compose?: string;
  respin?: number;
  date?: string;
  label?: string;
  build: string;
  targets: TargetPlan[];
  /** Providers the release leaves out, and why (e.g. the compose has no artifact for them). */
  skipped: { provider: string; reason: string }[];
}

/**
 * A target's key: the release's own for the target that had it before releases had several (AWS keeps
 * finding what earlier runs tagged), the release's plus the target's name for every other one.
 */
export function targetPlanKey(releaseKey: string, name: string, bare: boolean): string {
  return bare ? releaseKey : `${releaseKey}/${name}`;
}

export function locations(plan: Pick<TargetPlan, 'images'>): string[] {
  return [...new Set(plan.images.map((t) => t.location))];
}

export function variants(plan: Pick<TargetPlan, 'images'>): string[] {
  return [...new Set(plan.images.map((t) => t.variant))];
}

export function primaryImages(plan: Pick<TargetPlan, 'images' | 'primaryLocation'>): ImageTarget[] {
  return plan.images.filter((t) => t.location === plan.primaryLocation);
}

/** `location/variant`: how an image target is named in logs, progress and problems. */
export function imageKey(t: { location: string; variant: string }): string {
  return `${t.location}/${t.variant}`;
}

/** The ISO time `days` after a build date (`YYYY-MM-DD` or epoch ms), for deprecation. */
export function deprecationTime(buildDate: string | number | undefined, days: number | undefined) {
  if (!days || buildDate === undefined) return undefined;
  const t = typeof buildDate === 'number' ? buildDate : Date.parse(buildDate);
  return Number.isNaN(t) ? undefined : new Date(t + days * 86_400_000).toISOString();
}
