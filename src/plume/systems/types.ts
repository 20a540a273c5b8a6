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
  extra?: Record<string, string>;
}

/** Where and how to publish: from the config file, the channel and the command line, in that order. */
export interface TargetSettings {
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

/** An output a system writes from a release record (e.g. Container Linux's AMI lists). */
export interface OutputFile {
  path: string;
  contents: string;
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
  /** Check the downloaded (compressed) image before anything is uploaded, for systems that sign images. */
  verifySource?(plan: ReleasePlan, file: string, ctx: LocateContext): Promise<void>;
  /** Extra files a release of this system writes (AMI lists and the like). */
  outputs?(record: ReleaseRecord): OutputFile[];
}
