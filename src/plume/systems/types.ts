import type { Logger } from '../../shared/log.js';
import type { ReleasePlan, SettingsLayer, TargetPlan, TargetSettings } from '../plan.js';
import type { ReleaseRecord } from '../record.js';
import type { LifecyclePolicyToml } from '../lifecycle/policy.js';

export type { TargetSettings } from '../plan.js';

/**
 * What someone asks to release, in the words of plume's command line. Systems read the fields that mean
 * something to them and ignore the rest; `extra` carries flags a system defines itself.
 */
export interface ReleaseRequest {
  system: string;
  channel: string;
  arch?: string;
  imageType?: string;
  /** Compose location (the `compose/` directory a Pungi message names), for systems built from composes. */
  compose?: string;
  composeId?: string;
  version?: string;
  timestamp?: string;
  respin?: number;
  board?: string;
  label?: string;
  environment?: string;
  /** OpenPGP public key file(s) a signed source must verify against, for systems that sign images. */
  verifyKey?: string;
  /** Providers to publish to (mantle's `--platform`); every one the system and config enable when absent. */
  platforms?: string[];
  extra?: Record<string, string>;
}

/**
 * How a system reads its sources: given to it, so systems decide and never fetch on their own terms. Every
 * location goes through the source policy (allowed hosts, http(s) only, local files only from the command
 * line) and every document is fetched within its deadlines and size bounds.
 */
export interface SourceAccess {
  /** Parse a location and check it against the policy; the URL to use, or an error saying why not. */
  check(location: string): URL;
  /** Fetch a small document whole (compose metadata, a checksum list, a signature). */
  document(url: string | URL): Promise<Buffer>;
}

export interface LocateContext {
  source: SourceAccess;
  log: Logger;
  signal?: AbortSignal;
  /** The system's own section of the config file (`[systems.NAME]`), for the system to validate and read. */
  settings?: Record<string, unknown>;
  /** The providers the release is for: a system finds each one's artifact and says why one has none. */
  providers: readonly string[];
}

/** Facts about one source image, found by a system (I/O) and turned into a plan (pure). */
export interface SourceFacts {
  request: ReleaseRequest;
  [key: string]: unknown;
}

export interface ChannelInfo {
  name: string;
  description: string;
}

/** A file a system writes from the records of a release (AMI lists and the like). */
export interface OutputFile {
  /** Relative path, under the output directory. */
  path: string;
  contents: string;
  /** `image-list`: what `--write-image-list` writes (plume's old list of the images a release made). */
  kind?: 'image-list';
}

/**
 * A system is everything plume knows about one distribution: its channels, architectures, where its
 * images are and how they are checked, how its images are named and tagged. Adding one is adding a module
 * and registering it; nothing outside `systems/` knows a system by name.
 */
export interface System {
  readonly name: string;
  /** Other names accepted on the command line (plume's old `--distro` values). */
  readonly aliases?: readonly string[];
  readonly description: string;
  /** The providers this system publishes to (each with its own artifact and names). */
  providers(): string[];
  channels(): ChannelInfo[];
  arches(): string[];
  imageTypes(): string[];
  /** Hosts this system's images come from, added to the fetch policy's allow list. */
  sourceHosts(): string[];
  /**
   * What an image of this system must be, where it knows better than the project's defaults (`[images]`);
   * the config's `[images.systems.NAME]` overrides it.
   */
  /**
   * The lifecycle policy of each channel when the config says nothing (`[lifecycle.SYSTEM.CHANNEL]`
   * overrides it key by key): what `plume prune` deprecates and deletes.
   */
  lifecycleDefaults?(): Record<string, LifecyclePolicyToml>;
  imageLimits?(): { minDataMiB?: number; maxVolumeGiB?: number };
  /**
   * Where a channel publishes with one provider, on top of the provider's section of the config: one list
   * of settings tables per target (e.g. AWS commercial and GovCloud, each with its own profile, base region
   * and regions), for the provider to validate and apply; `[[]]` (one target, nothing to add) when absent.
   */
  channelTargets?(
    channel: string,
    environment: string | undefined,
    config: Record<string, unknown>,
    provider: string,
  ): SettingsLayer[][];
  /** Validate the request and gather what the plan needs (compose metadata, version files). */
  locate(request: ReleaseRequest, ctx: LocateContext): Promise<SourceFacts>;
  /**
   * Pure: the whole release, from the facts and the settings of every target (a provider whose artifact
   * the facts lack is left out, in `skipped`, with the reason).
   */
  plan(facts: SourceFacts, targets: TargetSettings[]): ReleasePlan;
  /**
   * Check the downloaded, still compressed file before anything is uploaded, for systems whose plans carry
   * a signature (`source.signatureUrl`). The runner refuses such a plan when the system cannot check it.
   */
  verifySource?(target: TargetPlan, file: string, ctx: LocateContext): Promise<void>;
  /**
   * Extra files a release writes, from the records of all its targets together (one AMI list for the
   * commercial and GovCloud partitions, as plume always wrote it). Pure.
   */
  outputs?(records: ReleaseRecord[]): OutputFile[];
  /**
   * For systems released from composes (joystick): what a finished compose calls for. Reads the compose's
   * metadata; a compose of a watched channel with nothing publishable is `broken`, never silently ignored.
   */
  releasesForCompose?(
    compose: ComposeFacts,
    watch: ComposeWatch,
    ctx: LocateContext,
  ): Promise<ComposeDecision>;
  /** How the successor of fedimg (fedora-image-uploader) names this release, for its announcement. */
  uploaderAnnouncement?(
    plan: ReleasePlan,
  ): { imageName: string; subvariant: string; release: number } | undefined;
}

/** A finished compose as a bus message describes it; what the message lacks is derived from the compose. */
export interface ComposeFacts {
  id: string;
  location: string;
  status: string;
  date?: string;
  type?: string;
  respin?: number;
  label?: string;
  releaseShort?: string;
  releaseVersion?: string;
  releaseType?: string;
}

/** What the controller watches: channels, arches and (optionally) image types. */
export interface ComposeWatch {
  channels: readonly string[];
  arches: readonly string[];
  imageTypes?: readonly string[];
  environment?: string;
}

export type ComposeDecision =
  /** Not this system's compose, or a channel nobody watches. */
  | { kind: 'ignore'; reason: string }
  | { kind: 'release'; channel: string; requests: ReleaseRequest[] }
  /** Ours and watched, but nothing can be published: report it loudly. */
  | { kind: 'broken'; channel: string; reason: string };
