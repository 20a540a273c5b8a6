import type { Logger } from '../../shared/log.js';
import type { ReleasePlan, Visibility } from '../plan.js';
import type { ReleaseRecord } from '../record.js';
import type { SourcePolicy } from '../source/policy.js';

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
  extra?: Record<string, string>;
}

/** Where and how to publish: from the config file, the channel and the command line, in that order. */
export interface TargetSettings {
  /**
   * Which publication target of a release this is (e.g. `aws`, `aws-govcloud`), when a channel has several;
   * it keeps their plans, records and journal entries apart.
   */
  name?: string;
  primaryLocation: string;
  locations: string[];
  variants: string[];
  visibility: Visibility;
  /** Days after publication when images are marked deprecated; none when absent. */
  deprecateAfterDays?: number;
  partition: string;
  profile?: string;
  /** Require IMDSv2 on instances launched from the images. */
  imdsV2?: boolean;
  /** Fixed root volume size; by default the image's own size, rounded up to whole GiB. */
  volumeGiB?: number;
}

export interface LocateContext {
  policy: SourcePolicy;
  log: Logger;
  signal?: AbortSignal;
  /** The system's own section of the config file (`[systems.NAME]`), for the system to validate and read. */
  settings?: Record<string, unknown>;
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
  channels(): ChannelInfo[];
  arches(): string[];
  imageTypes(): string[];
  /** Hosts this system's images come from, added to the fetch policy's allow list. */
  sourceHosts(): string[];
  /**
   * Where a channel publishes, on top of the config file: one entry per publication target (e.g. AWS
   * commercial and GovCloud, each with its own profile, base region and regions). One plan runs per entry.
   */
  channelTargets?(
    channel: string,
    environment: string | undefined,
    config: Record<string, unknown>,
  ): Partial<TargetSettings>[];
  /** Validate the request and gather what the plan needs (compose metadata, version files). */
  locate(request: ReleaseRequest, ctx: LocateContext): Promise<SourceFacts>;
  /** Pure: the whole release, from the facts and the settings. */
  plan(facts: SourceFacts, settings: TargetSettings): ReleasePlan;
  /**
   * Check the downloaded, still compressed image before anything is uploaded, for systems whose plans carry
   * a signature (`plan.source.signatureUrl`). The runner refuses such a plan when the system cannot check it.
   */
  verifySource?(plan: ReleasePlan, file: string, ctx: LocateContext): Promise<void>;
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
