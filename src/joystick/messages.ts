import type { TargetRecord } from '../plume/record.js';
import { BASE_SCHEMA, ERROR, INFO } from './bus/index.js';
import type { OutboxItem } from './store/job-store.js';

/**
 * The messages joystick announces, built exactly as fedimg built them (the Fedora websites' get-amis
 * scripts and the release tooling parse these field by field) and as fedora-image-uploader builds its
 * successor message. Pure functions of a job and its release record; each message has a stable key so it
 * is stored, and sent, once however often it is produced.
 *
 * A key names the announcement, not the code path that makes it: an image published is announced once,
 * whatever retried it; a failure is announced once per attempt that ended the job, and again after every
 * retry a person asked for (the retry round is in its key), so a second failure is never swallowed as a
 * copy of the first.
 */

export const UPLOADER_SCHEMA = 'fedora_image_uploader.published.v1.aws';
export const UPLOADER_GCP_SCHEMA = 'fedora_image_uploader.published.v1.gcp';
export const UPLOADER_AZURE_SCHEMA = 'fedora_image_uploader.published.v1.azure';

/** What a job is about, for the messages. */
export interface ImageFacts {
  jobId: string;
  /** The job's retry round (`joystick retry`); 0 before any. */
  round?: number;
  composeId: string;
  /** URL of the compressed image the upload read. */
  imageUrl: string;
  /** fedimg's image_name: the build name without region or volume suffix. */
  build: string;
  /**
   * Fedora's name for the architecture (x86_64, aarch64): what fedora-image-uploader's messages carry, in
   * the body and the topic (the websites file AMIs under it), and joystick's own.
   */
  architecture: string;
  /**
   * The AMI's architecture as EC2 names it, for fedimg's copy and publish messages: fedimg read it from the
   * image it had registered, so it gave AWS's name for aarch64, and the consumers of those messages (the
   * websites' older AMI script files them under the two EC2 names) expect exactly that.
   */
  ec2Architecture: string;
  channel: string;
  /** The provider the job publishes to (aws, gcp, azure): joystick's own messages name it. */
  provider?: string;
  /** For the fedora-image-uploader message: absent when the system has no such name for the image. */
  uploader?: { imageName: string; subvariant: string; release: number };
  statusUrl?: string;
}

/** The part of a failure's key that tells retry rounds apart (none in the first round, as before rounds). */
function roundPart(round: number | undefined): string {
  return round ? `:retry${round}` : '';
}

const SERVICE = 'EC2';
const VIRT = 'hvm';

function item(
  key: string,
  topic: string,
  body: Record<string, unknown>,
  severity: number = INFO,
  schema = BASE_SCHEMA,
): OutboxItem {
  return { key, topic, body, severity, schema };
}

/** `fedimg.image.upload` status `started`, one per volume type, when a job first starts. */
export function uploadStarted(
  f: ImageFacts,
  primaryRegion: string,
  variants: readonly string[],
): OutboxItem[] {
  return variants.map((vol) =>
    item(`${f.jobId}:upload:started:${vol}`, 'fedimg.image.upload', {
      image_url: f.imageUrl,
      image_name: f.build,
      destination: primaryRegion,
      service: SERVICE,
      status: 'started',
      compose: f.composeId,
      extra: { virt_type: VIRT, vol_type: vol },
    }),
  );
}

/**
 * `fedimg.image.upload` status `failed` (severity ERROR): the upload or registration never succeeded. With
 * exactly fedimg's fields: the reason goes in joystick.release.failed, sent with it.
 */
export function uploadFailed(
  f: ImageFacts,
  primaryRegion: string,
  variants: readonly string[],
  attempt: number,
): OutboxItem[] {
  return variants.map((vol) =>
    item(
      `${f.jobId}${roundPart(f.round)}:upload:failed:${vol}:${attempt}`,
      'fedimg.image.upload',
      {
        image_url: f.imageUrl,
        image_name: f.build,
        destination: primaryRegion,
        service: SERVICE,
        status: 'failed',
        compose: f.composeId,
        extra: { virt_type: VIRT, vol_type: vol },
      },
      ERROR,
    ),
  );
}

export interface AnnounceOptions {
  fedimg: boolean;
  uploader: boolean;
}

/**
 * Everything a finished target announces, by its provider: AWS's fedimg and fedora-image-uploader messages,
 * GCE's and Azure's fedora-image-uploader messages; then, for every provider, an ERROR message naming each
 * location that is missing.
 */
export function releaseAnnouncements(
  f: ImageFacts,
  record: TargetRecord,
  opts: AnnounceOptions,
): OutboxItem[] {
  const published = PUBLISHED[record.provider]?.(f, record, opts) ?? [];
  return record.problems.length > 0 ? [...published, releaseProblems(f, record)] : published;
}

/** What a target of each provider announces when its images are there. */
const PUBLISHED: Record<
  string,
  (f: ImageFacts, record: TargetRecord, opts: AnnounceOptions) => OutboxItem[]
> = {
  aws: awsPublished,
  gcp: gcpPublished,
  azure: azurePublished,
};

/**
 * AWS: upload completed (base region), copy (each other region), publish (every region and volume type that
 * verified), as fedimg announced them; and fedora-image-uploader's message.
 */
function awsPublished(f: ImageFacts, record: TargetRecord, opts: AnnounceOptions): OutboxItem[] {
  const out: OutboxItem[] = [];
  const primary = new Map(
    record.images.filter((i) => i.location === record.primaryLocation).map((i) => [i.variant, i]),
  );
  if (opts.fedimg) {
    for (const [vol, image] of primary)
      out.push(
        item(`${f.jobId}:upload:completed:${vol}`, 'fedimg.image.upload', {
          image_url: f.imageUrl,
          image_name: f.build,
          destination: record.primaryLocation,
          service: SERVICE,
          status: 'completed',
          compose: f.composeId,
          extra: { virt_type: VIRT, vol_type: vol, id: image.id },
        }),
      );
    for (const image of record.images.filter((i) => i.location !== record.primaryLocation))
      out.push(
        item(`${f.jobId}:copy:${image.location}:${image.variant}`, 'fedimg.image.copy', {
          // The build name, as in every fedimg message: fedimg cut the copy's AMI name back to it.
          image_name: f.build,
          destination: image.location,
          architecture: f.ec2Architecture,
          service: SERVICE,
          compose_id: f.composeId,
          extra: {
            id: image.id,
            virt_type: VIRT,
            vol_type: image.variant,
            source_image_id: primary.get(image.variant)?.id ?? null,
          },
        }),
      );
    if (record.mode === 'release')
      for (const image of record.images)
        out.push(
          item(`${f.jobId}:publish:${image.location}:${image.variant}`, 'fedimg.image.publish', {
            image_name: f.build,
            image_url: image.location === record.primaryLocation ? f.imageUrl : null,
            architecture: f.ec2Architecture,
            destination: image.location,
            service: SERVICE,
            compose: f.composeId,
            extra: { id: image.id, virt_type: VIRT, vol_type: image.variant },
          }),
        );
  }
  if (opts.uploader && f.uploader && record.mode === 'release' && record.images.length > 0) {
    // One AMI per region, as fedora-image-uploader publishes: the first configured volume type.
    const preferred = record.plan.images[0]?.variant ?? 'gp3';
    const regions: Record<string, string> = {};
    for (const image of record.images.filter((i) => i.variant === preferred))
      regions[image.location] = image.id;
    const u = f.uploader;
    // A later retry that adds regions announces again, under a key naming how many regions it covers.
    out.push(
      item(
        `${f.jobId}:uploader:${Object.keys(regions).length}`,
        `fedora_image_uploader.published.v1.aws.${u.subvariant}.${u.release}.${f.architecture}`,
        {
          architecture: f.architecture,
          compose_id: f.composeId,
          image_name: u.imageName,
          regions,
          release: u.release,
          subvariant: u.subvariant,
        },
        INFO,
        UPLOADER_SCHEMA,
      ),
    );
  }
  return out;
}

/** Whether a target published anything fedora-image-uploader's messages can name. */
function uploaderFacts(f: ImageFacts, record: TargetRecord, opts: AnnounceOptions) {
  return opts.uploader && f.uploader && record.mode === 'release' && record.images.length > 0
    ? f.uploader
    : undefined;
}

/**
 * GCE: fedora-image-uploader's `published.v1.gcp`: the image, its family, where its data is kept, and its
 * URL (the API's self link of the image).
 */
function gcpPublished(f: ImageFacts, record: TargetRecord, opts: AnnounceOptions): OutboxItem[] {
  const u = uploaderFacts(f, record, opts);
  const image = record.images[0];
  if (!u || !image) return [];
  const settings = record.plan.settings as { family?: string; storageLocations?: string[] };
  return [
    item(
      `${f.jobId}:uploader:gcp:${image.name}`,
      UPLOADER_GCP_SCHEMA,
      {
        architecture: f.architecture,
        compose_id: f.composeId,
        release: u.release,
        subvariant: u.subvariant,
        family: settings.family ?? '',
        image_name: image.name,
        image_url: `https://www.googleapis.com/compute/v1/${image.id}`,
        storage_locations: settings.storageLocations ?? [],
      },
      INFO,
      UPLOADER_GCP_SCHEMA,
    ),
  ];
}

/**
 * Azure: fedora-image-uploader's `published.v1.azure`: the gallery image definition and version, the
 * version's resource id (the community gallery's, when it is shared with the community) and the regions
 * it was replicated to.
 */
function azurePublished(f: ImageFacts, record: TargetRecord, opts: AnnounceOptions): OutboxItem[] {
  const u = uploaderFacts(f, record, opts);
  const first = record.images[0];
  if (!u || !first) return [];
  const settings = record.plan.settings as { definition?: string };
  const regions = [...new Set(record.images.map((i) => i.location))].sort();
  // A later retry that adds regions announces again, under a key naming how many it covers.
  return [
    item(
      `${f.jobId}:uploader:azure:${first.name}:${regions.length}`,
      UPLOADER_AZURE_SCHEMA,
      {
        architecture: f.architecture,
        compose_id: f.composeId,
        image_definition_name: settings.definition ?? '',
        image_version_name: first.name,
        image_resource_id: first.id,
        regions,
        release: u.release,
        subvariant: u.subvariant,
      },
      INFO,
      UPLOADER_AZURE_SCHEMA,
    ),
  ];
}

/** A release that left regions missing or wrong: ERROR severity, every region named, so someone is paged. */
export function releaseProblems(f: ImageFacts, record: TargetRecord): OutboxItem {
  const missing = record.problems.map((p) => `${p.location}/${p.variant}`).sort();
  return item(
    `${f.jobId}:problems:${missing.join(',')}:${record.finishedAt}`,
    `joystick.release.${record.status === 'failed' ? 'failed' : 'partial'}`,
    {
      compose_id: f.composeId,
      image_name: f.build,
      architecture: f.architecture,
      channel: f.channel,
      provider: f.provider ?? record.provider,
      status: record.status,
      published: record.images.length,
      failed: record.problems.map((p) => ({
        region: p.location,
        vol_type: p.variant,
        problem: p.kind,
        reason: p.detail,
      })),
      regions: [...new Set(record.problems.map((p) => p.location))].sort(),
      status_url: f.statusUrl ?? null,
    },
    ERROR,
  );
}

/** A job that failed before any image existed (bad image, no credentials...). */
export function jobFailed(
  f: Omit<ImageFacts, 'uploader' | 'ec2Architecture'>,
  reason: string,
  attempt: number,
): OutboxItem {
  return item(
    `${f.jobId}${roundPart(f.round)}:failed:${attempt}`,
    'joystick.release.failed',
    {
      compose_id: f.composeId,
      image_name: f.build,
      image_url: f.imageUrl,
      architecture: f.architecture,
      channel: f.channel,
      provider: f.provider ?? null,
      status: 'failed',
      reason,
      status_url: f.statusUrl ?? null,
    },
    ERROR,
  );
}

/** A finished compose of a watched channel that cannot be published: the failure fedimg kept silent. */
export function composeFailed(
  composeId: string,
  location: string,
  channel: string | undefined,
  reason: string,
  statusUrl?: string,
  round = 0,
): OutboxItem {
  return item(
    `compose:${composeId}:failed${roundPart(round)}`,
    'joystick.compose.failed',
    { compose_id: composeId, location, channel: channel ?? null, reason, status_url: statusUrl ?? null },
    ERROR,
  );
}

/** What an image-lifecycle announcement says about the image (from plume's prune journal). */
export interface PrunedImage {
  kind: 'deprecate' | 'delete';
  image: {
    provider: string;
    location: string;
    id: string;
    name: string;
    release: string;
    stream: string;
  };
  reason: string;
  /** Deprecation time asked for (ISO). */
  at?: string;
  outcome?: { deleted: string[]; kept: { id: string; reason: string }[] };
}

/**
 * `joystick.image.deprecated` / `joystick.image.deleted`: one per image the lifecycle policy changed, keyed
 * by the image so a resumed prune announces it once. The stream is `SYSTEM/CHANNEL/ARCH[/IMAGE-TYPE]`.
 */
export function imagePruned(a: PrunedImage): OutboxItem {
  const [, channel, architecture] = a.image.stream.split('/');
  const common = {
    provider: a.image.provider,
    location: a.image.location,
    image_id: a.image.id,
    image_name: a.image.name,
    release: a.image.release,
    stream: a.image.stream,
    channel: channel ?? null,
    architecture: architecture ?? null,
    reason: a.reason,
  };
  if (a.kind === 'deprecate')
    return item(
      `lifecycle:${a.image.provider}:${a.image.location}:${a.image.id}:deprecated`,
      'joystick.image.deprecated',
      { ...common, deprecate_at: a.at ?? null },
    );
  return item(
    `lifecycle:${a.image.provider}:${a.image.location}:${a.image.id}:deleted`,
    'joystick.image.deleted',
    {
      ...common,
      backing_deleted: a.outcome?.deleted ?? [],
      backing_kept: (a.outcome?.kept ?? []).map((k) => k.id),
    },
  );
}
