/**
 * What a release asks of a cloud, in words every cloud shares (osbuild's pkg/cloud and mantle's
 * platform/api split): a provider carries out one target of a release (plan.ts), step by step, each step
 * idempotent. A *location* is where an image lives (an AWS region, a GCE storage location, an Azure
 * region), a *variant* one flavour of the same image in a location (AWS: the root volume type).
 * Cloud-specific words stay inside each provider's folder.
 */
import type { Logger } from '../../shared/log.js';
import type { DiskImage, ReadSummary } from '../source/image.js';
import type { ImageTarget, TargetPlan } from '../plan.js';
import type { UploadSessionStore } from '../state/upload-sessions.js';

export type { ImageTarget } from '../plan.js';

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

/**
 * Progress and milestones, for progress bars, logs and metrics. Never the source of truth. The runner adds
 * `targetName` (which target of the release an event is about) to what a provider emits.
 */
export type ReleaseEvent = EventBody & { targetName?: string };

type EventBody =
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
  /**
   * Where resumable upload sessions are kept across runs (the CLI's state database), so a run killed
   * mid-upload lets the next one send only the rest; absent, a killed upload starts over.
   */
  uploadSessions?: UploadSessionStore;
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

/** Why the upload step had nothing to do: every primary image already exists. */
export interface UploadSkipped {
  skipped: string;
}

/**
 * A cloud that can hold a release. Every method is idempotent: it first looks for what a previous run left
 * (by name, tag or label) and only creates what is missing, so a release stopped anywhere resumes cleanly.
 */
export interface Provider {
  readonly name: string;
  /** Check credentials and reachability before anything is fetched; returns the account identity. */
  preflight(plan: TargetPlan, ctx: ProviderContext): Promise<{ account: string }>;
  /**
   * Upload the disk the images are made from, or find the one a previous run left (clearing half-finished
   * leftovers); nothing when every primary image already exists. `open` is called only to upload.
   */
  uploadDisk(
    plan: TargetPlan,
    open: () => Promise<DiskImage>,
    ctx: ProviderContext,
  ): Promise<DiskRef | UploadSkipped>;
  /** Create the primary location's images (one per variant) from the disk, or find them. */
  createImages(plan: TargetPlan, disk: DiskRef | undefined, ctx: ProviderContext): Promise<TargetOutcome[]>;
  /** Bring the primary images to every other location and wait until each is ready (still private). */
  replicate(plan: TargetPlan, primary: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]>;
  /** Apply the plan's visibility (and deprecation) to the given images and whatever backs them. */
  publish(plan: TargetPlan, images: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]>;
  /** Check every image of the plan. */
  verify(plan: TargetPlan, ctx: ProviderContext): Promise<VerifyReport>;
  /** Try to fix what verification found; `round` makes retried creations distinct (idempotency tokens). */
  repair(plan: TargetPlan, problems: Problem[], ctx: ProviderContext, round: number): Promise<void>;
  /** Every location the account can publish to (for `regions = "all"` and checking names). */
  listLocations(primary: string, ctx: ProviderContext): Promise<string[]>;
  /** What this provider holds for a target (for `plume status` and cleanup). */
  listRelease(plan: TargetPlan, ctx: ProviderContext): Promise<PublishedImage[]>;
}

export function isSkipped(upload: DiskRef | UploadSkipped): upload is UploadSkipped {
  return 'skipped' in upload;
}

/**
 * One stream's images, as `plume prune` asks for them: a system's channel, optionally narrowed to an
 * architecture and an image type. Providers find them by the tags or labels plume put on them (its release
 * key starts with `SYSTEM/CHANNEL/`), never by name.
 */
export interface StreamSelector {
  system: string;
  channel: string;
  /** The neutral architecture (x86_64, aarch64), or every one. */
  arch?: string;
  imageType?: string;
}

/** An image plume created, with the facts the lifecycle policy decides on. */
export interface OwnedImage {
  provider: string;
  location: string;
  id: string;
  name: string;
  variant?: string;
  /** The release (build) it belongs to: plume's release key, tagged or labelled on it. */
  release: string;
  /** The stream it belongs to: `SYSTEM/CHANNEL/ARCH[/IMAGE-TYPE]` (see streamKey in lifecycle/decide.ts). */
  stream: string;
  /** Build date of its release (ms), what the policy's ages count from. */
  builtAt: number;
  /** Deprecation time set on it (ms), past or future; absent when none. */
  deprecatedAt?: number;
  public: boolean;
  /** Accounts (projects, subscriptions) it is shared with by name, besides the public. */
  sharedWith: string[];
  /** When an instance was last launched from it, where the cloud says (AWS: lastLaunchedTime). */
  lastLaunchedAt?: number;
  /** What deleting it also deletes (AWS: its root snapshot), for the plan and the journal. */
  backing: string[];
}

/** The result of deleting one image: whether its backing went too or stays because something uses it. */
export interface DeleteOutcome {
  /** Backing resources deleted now, or already gone. */
  deleted: string[];
  /** Backing resources kept, and why (AWS: another image still uses the snapshot). */
  kept: { id: string; reason: string }[];
}

/**
 * What `plume prune` asks of a cloud, apart from Provider so a provider adds it when it can (AWS now; GCE and
 * Azure later). Every method is idempotent: deleting what is gone, or deprecating what is deprecated, is
 * success, so an interrupted prune resumes by running again.
 */
export interface ImagePruner {
  readonly name: string;
  /** Every location to look in (AWS: every region the account has). */
  pruneLocations(primary: string, ctx: ProviderContext): Promise<string[]>;
  /** Images plume created for the stream in one location; never anything without plume's release tag. */
  listOwned(location: string, stream: StreamSelector, ctx: ProviderContext): Promise<OwnedImage[]>;
  /** Mark one image deprecated from `at` (AWS: EnableImageDeprecation; GCE: DEPRECATED; Azure: endOfLifeDate). */
  deprecate(image: OwnedImage, at: Date, ctx: ProviderContext): Promise<void>;
  /** Delete one image and then its backing (AWS: deregister, then delete the snapshot unless still used). */
  deleteImage(image: OwnedImage, ctx: ProviderContext): Promise<DeleteOutcome>;
  /** Delete one backing resource left by an interrupted delete (the image is gone); gone already is fine. */
  deleteBacking(location: string, id: string, ctx: ProviderContext): Promise<DeleteOutcome>;
}

export function isPruner(p: unknown): p is ImagePruner {
  return (
    typeof p === 'object' &&
    p !== null &&
    typeof (p as ImagePruner).listOwned === 'function' &&
    typeof (p as ImagePruner).deleteImage === 'function'
  );
}
