/**
 * What a release asks of a cloud, in words every cloud shares. A *location* is where an image lives (an
 * AWS region, a GCE project, an Azure region), a *variant* is one flavour of the same image in a location
 * (AWS: the root volume type). Cloud-specific words stay inside each provider's folder.
 */
import type { Logger } from '../../shared/log.js';
import type { DiskImage, ReadSummary } from '../source/image.js';
import type { ReleasePlan } from '../plan.js';

export interface ImageTarget {
  location: string;
  variant: string;
  name: string;
}

export interface PublishedImage extends ImageTarget {
  id: string;
}

/** One thing wrong with one target, as found by verification. */
export interface Problem {
  target: ImageTarget;
  kind:
    | 'missing'
    | 'duplicate'
    | 'not-available'
    | 'failed'
    | 'attributes'
    | 'not-public'
    /** Public (or its snapshot is) while the release is private: never repaired automatically. */
    | 'public'
    | 'tags'
    /** The plan deprecates the image and it has no deprecation time. */
    | 'deprecation'
    | 'error';
  detail: string;
  id?: string;
}

export interface VerifyReport {
  ok: PublishedImage[];
  problems: Problem[];
}

/** Progress and milestones, for progress bars, logs and metrics. Never the source of truth. */
export type ReleaseEvent =
  | { type: 'step'; step: string; state: 'started' | 'done' | 'skipped'; detail?: string }
  | {
      type: 'upload-progress';
      rawBytes: number;
      totalBytes: number;
      blocksSent: number;
      zeroBlocks: number;
      bytesSent: number;
    }
  | { type: 'disk-ready'; location: string; id: string; reused: boolean }
  | {
      type: 'image-ready';
      target: ImageTarget;
      id: string;
      reused: boolean;
      primary: boolean;
      sourceId?: string;
    }
  | { type: 'image-published'; target: ImageTarget; id: string }
  | { type: 'target-failed'; target: ImageTarget; error: string }
  | { type: 'retry'; what: string; attempt: number; error: string };

export interface ProviderContext {
  log: Logger;
  emit: (event: ReleaseEvent) => void;
  signal?: AbortSignal;
}

export interface DiskRef {
  location: string;
  id: string;
  reused: boolean;
  /** Size of the volume the disk restores to. */
  sizeGiB: number;
  /** Set when this run uploaded the disk. */
  summary?: ReadSummary;
  bytesSent?: number;
  blocksSent?: number;
}

export interface TargetOutcome {
  target: ImageTarget;
  id?: string;
  error?: string;
}

/**
 * A cloud that can hold a release. Every method is idempotent: it first looks for what a previous run left
 * (by name or tag) and only creates what is missing, so a release stopped anywhere resumes cleanly.
 */
export interface Provider {
  readonly name: string;
  /** Check credentials and reachability before anything is fetched; returns the account identity. */
  preflight(plan: ReleasePlan, ctx: ProviderContext): Promise<{ account: string }>;
  /** The primary images already there, by variant; when all exist the upload can be skipped. */
  findPrimaryImages(plan: ReleasePlan, ctx: ProviderContext): Promise<Map<string, PublishedImage>>;
  /** Upload the disk, or find the completed one a previous run left; clears half-finished leftovers. */
  uploadDisk(plan: ReleasePlan, open: () => Promise<DiskImage>, ctx: ProviderContext): Promise<DiskRef>;
  /** Create the primary-location images (one per variant) from the disk. */
  createPrimaryImages(
    plan: ReleasePlan,
    disk: DiskRef | undefined,
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]>;
  /** Copy the primary images to every other location and wait until each is ready (private). */
  replicate(plan: ReleasePlan, primary: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]>;
  /** Apply the plan's visibility to the given images (and whatever backs them). */
  publish(plan: ReleasePlan, images: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]>;
  /** Check every target of the plan. */
  verify(plan: ReleasePlan, ctx: ProviderContext): Promise<VerifyReport>;
  /** Try to fix what verification found; `round` makes retried creations distinct (idempotency tokens). */
  repair(plan: ReleasePlan, problems: Problem[], ctx: ProviderContext, round: number): Promise<void>;
  /** Every location the account can publish to (for `regions = "all"`). */
  listLocations(primary: string, ctx: ProviderContext): Promise<string[]>;
  /** Everything this provider holds for a release key (for `plume list` and cleanup). */
  listRelease(plan: ReleasePlan, ctx: ProviderContext): Promise<PublishedImage[]>;
}
