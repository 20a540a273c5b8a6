import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { protos } from '@google-cloud/compute';
import { PlumeError, errorMessage } from '../../../shared/errors.js';
import { retry } from '../../../shared/retry.js';
import type { TargetPlan } from '../../plan.js';
import { checkImageData, checkVolumeSize, type DiskImage } from '../../source/image.js';
import type {
  DiskRef,
  Problem,
  Provider,
  ProviderContext,
  PublishedImage,
  TargetOutcome,
  UploadSkipped,
  VerifyReport,
} from '../types.js';
import {
  GcpClients,
  call,
  describeGcpError,
  gcpFailure,
  isNotFound,
  type GcpClientSettings,
} from './clients.js';
import { LABEL_RELEASE, labelsFor, releaseLabel } from './labels.js';
import { gcpImage, type GcpImage } from './settings.js';
import { inspectTarball } from './tarball.js';
import { uploadObject } from './upload.js';

type Image = protos.google.cloud.compute.v1.IImage;
type Operation = protos.google.cloud.compute.v1.IOperation;

const GiB = 2 ** 30;
/**
 * globalOperations.wait answers when the operation is done or as it nears two minutes: its call needs a
 * deadline past that, whatever the configured request timeout, or a long insert would look like a timeout.
 */
const WAIT_CALL_MS = 150_000;
/** Who may create instances from an image: what "public" means for a GCE image. */
export const IMAGE_USER = 'roles/compute.imageUser';
export const ALL_USERS = 'allAuthenticatedUsers';

export interface GcpProviderSettings {
  client: GcpClientSettings;
  /** Bytes per resumable-upload request. */
  chunkBytes: number;
  operationTimeoutMs: number;
  pollMinMs: number;
  pollMaxMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
}

/** The Cloud Storage object a target's tarball is staged in, until its image exists. */
function objectName(plan: TargetPlan): string {
  return `plume/${releaseLabel(plan.key)}/${basename(new URL(plan.source.url).pathname)}`;
}

/**
 * A request id for a call that creates something, from what the call means: GCE answers a retry of the same
 * request with the first one's operation, so a retry after a lost response cannot create twice.
 */
export function requestId(...parts: (string | number)[]): string {
  const h = createHash('sha256').update(parts.join('\0')).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-8${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

/** `projects/P/global/images/N`: how a GCE image is named in records and messages. */
export function imagePath(project: string, name: string): string {
  return `projects/${project}/global/images/${name}`;
}

/**
 * Google Compute Engine: the disk is the image's tarball in Cloud Storage (uploaded as it is, resumable
 * and checksummed), an image is global (one per target, its data kept in the configured storage
 * locations), made usable by all authenticated users (or listed principals) on release, and the family's
 * previous image is deprecated in favour of it, as mantle's GCE release did.
 */
export class GcpProvider implements Provider {
  readonly name = 'gcp';
  private readonly clients = new Map<string, GcpClients>();

  constructor(readonly settings: GcpProviderSettings) {}

  /** One set of clients per project and credentials (a target's key file, or Application Default Credentials). */
  clientsFor(s: Pick<GcpImage, 'project' | 'jsonKey'>): GcpClients {
    const key = `${s.project}\0${s.jsonKey ?? ''}`;
    let c = this.clients.get(key);
    if (!c)
      this.clients.set(
        key,
        (c = new GcpClients(
          { ...this.settings.client, ...(s.jsonKey ? { jsonKey: s.jsonKey } : {}) },
          s.project,
        )),
      );
    return c;
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.clients.values()].map((c) => c.close()));
  }

  /** Retry what the network or Google's servers failed (throttling, 5xx, resets); nothing else. */
  async retrying<T>(action: string, fn: () => Promise<T>, ctx: ProviderContext): Promise<T> {
    return retry(() => call(action, fn), {
      attempts: this.settings.client.maxAttempts,
      baseDelayMs: this.settings.retryBaseMs,
      maxDelayMs: this.settings.retryMaxMs,
      retryable: (err) => err instanceof PlumeError && err.retryable && err.kind === 'provider',
      ...(ctx.signal ? { signal: ctx.signal } : {}),
      onRetry: (err, attempt) => ctx.emit({ type: 'retry', what: action, attempt, error: errorMessage(err) }),
    });
  }

  async preflight(plan: TargetPlan, ctx: ProviderContext): Promise<{ account: string }> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    await this.retrying(
      'compute.projects.get',
      () => c.projects.get({ project: s.project }, c.callOptions()),
      ctx,
    );
    await this.retrying('storage.buckets.get', () => c.storage.bucket(s.bucket).getMetadata(), ctx);
    return { account: s.project };
  }

  /** The target's image, if it exists: by name, or for prefixed names the one of this release. */
  private async findImage(plan: TargetPlan, ctx: ProviderContext): Promise<Image | undefined> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const target = plan.images[0]!;
    if (s.namePrefix) {
      const [images] = await this.retrying(
        'compute.images.list',
        () =>
          c.images.list(
            { project: s.project, filter: `labels.${LABEL_RELEASE} = ${releaseLabel(plan.key)}` },
            c.callOptions(),
          ),
        ctx,
      );
      const mine = images.filter((i) => i.name?.startsWith(s.namePrefix!));
      if (mine.length > 1)
        throw new PlumeError(
          'provider',
          `${mine.length} GCE images of ${plan.key}: ${mine.map((i) => i.name).join(', ')}`,
          'delete the extra ones by hand; plume will not guess which one is the release',
        );
      return mine[0];
    }
    try {
      const [image] = await c.images.get({ project: s.project, image: target.name }, c.callOptions());
      return image;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw describeGcpError(err, 'compute.images.get');
    }
  }

  async uploadDisk(
    plan: TargetPlan,
    open: () => Promise<DiskImage>,
    ctx: ProviderContext,
  ): Promise<DiskRef | UploadSkipped> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const existing = await this.findImage(plan, ctx);
    if (existing && existing.status !== 'FAILED') return { skipped: 'the image already exists' };
    const object = objectName(plan);
    const file = c.storage.bucket(s.bucket).file(object);
    const sha256 = plan.source.sha256 ?? 'unverified';
    const id = `gs://${s.bucket}/${object}`;
    let staged: Record<string, unknown> | undefined;
    try {
      [staged] = (await file.getMetadata()) as unknown as [Record<string, unknown>];
    } catch (err) {
      if (!isNotFound(err)) throw describeGcpError(err, 'storage.objects.get');
    }
    const custom = (staged?.metadata ?? {}) as Record<string, string>;
    // A previous run uploaded and checked this very file: the image only needs creating.
    if (staged && custom['plume-source-sha256'] === sha256 && custom['plume-disk-bytes']) {
      ctx.emit({ type: 'disk-ready', location: s.bucket, id, reused: true });
      return {
        location: s.bucket,
        id,
        reused: true,
        sizeGiB: Math.max(1, Math.ceil(Number(custom['plume-disk-bytes']) / GiB)),
      };
    }
    if (staged) {
      ctx.log.warn({ object: id }, 'removing an object left by an interrupted upload');
      await this.retrying('storage.objects.delete', () => file.delete({ ignoreNotFound: true }), ctx);
    }

    const image = await open();
    const source = image.file(ctx.signal);
    const maxBytes = plan.source.volumeGiB ? plan.source.volumeGiB * GiB : undefined;
    const tarball = inspectTarball(source.chunks, (disk) => {
      if (disk.member !== 'disk.raw')
        throw new PlumeError(
          'input',
          `the GCE archive's first member is ${JSON.stringify(disk.member)}, not "disk.raw"`,
          'GCE reads disk.raw only: this is not a GCE image archive',
        );
      // The system's bounds, before a byte goes out: a disk of nothing, or a bomb's worth of volume.
      // (Only the disk's size is known here; the zeros of a sparse archive are not counted.)
      checkVolumeSize(Math.ceil(disk.bytes / GiB), plan.source.maxVolumeGiB, "the GCE archive's disk.raw");
      checkImageData(disk.bytes, plan.source.minDataBytes, "the GCE archive's disk.raw");
      if (maxBytes !== undefined && disk.bytes > maxBytes)
        throw new PlumeError(
          'input',
          `the GCE archive's disk is ${(disk.bytes / GiB).toFixed(2)} GiB, larger than ${plan.source.volumeGiB} GiB`,
          'check that this is the right image, or raise the volume size in the config',
        );
    });
    // A session is saved for the next run only when the source's sha256 is known: that is what tells the
    // next run that the bytes the session holds are the ones it is about to read again.
    const resume =
      ctx.uploadSessions && plan.source.sha256
        ? {
            store: ctx.uploadSessions,
            key: { release: plan.key, target: plan.name, object: id },
            sourceSha256: plan.source.sha256,
            ...(image.info.size !== undefined ? { sourceBytes: image.info.size } : {}),
          }
        : undefined;
    const uploaded = await uploadObject(file, tarball.chunks, {
      chunkBytes: this.settings.chunkBytes,
      metadata: { 'plume-release': plan.key, 'plume-source-sha256': sha256 },
      total: image.info.size,
      emit: ctx.emit,
      log: ctx.log,
      signal: ctx.signal,
      requestTimeoutMs: this.settings.client.requestTimeoutMs,
      retrying: (action, fn) => this.retrying(action, fn, ctx),
      ...(resume ? { resume } : {}),
    });
    let summary: { sha256: string; bytes: number };
    try {
      summary = source.finish();
    } catch (err) {
      // The bytes are not the compose's: the object must not become an image.
      await file.delete({ ignoreNotFound: true }).catch(() => undefined);
      throw err;
    }
    const disk = tarball.disk();
    // Marked checked only now: a run that stopped before this point left an object the next one deletes.
    await this.retrying(
      'storage.objects.patch',
      () => file.setMetadata({ metadata: { 'plume-disk-bytes': String(disk.bytes) } }),
      ctx,
    );
    ctx.emit({ type: 'disk-ready', location: s.bucket, id, reused: false });
    return {
      location: s.bucket,
      id,
      reused: false,
      sizeGiB: Math.max(1, Math.ceil(disk.bytes / GiB)),
      summary: {
        sha256: summary.sha256,
        compressedBytes: summary.bytes,
        bytes: disk.bytes,
        blocks: 0,
        zeroBlocks: 0,
      },
      // What this run sent: the rest only, when it resumed a session a killed run left.
      bytesSent: uploaded.sent,
    };
  }

  /** Wait for a global operation to finish, within the configured deadline; throw what it failed with. */
  async waitOperation(
    s: Pick<GcpImage, 'project' | 'jsonKey'>,
    op: Operation,
    what: string,
    ctx: ProviderContext,
  ): Promise<void> {
    const c = this.clientsFor(s);
    const deadline = Date.now() + this.settings.operationTimeoutMs;
    let current = op;
    for (let poll = 1; current.status !== 'DONE'; poll++) {
      if (Date.now() > deadline)
        throw new PlumeError(
          'provider',
          `${what} did not finish within ${Math.round(this.settings.operationTimeoutMs / 60_000)} min`,
          'run again: the release waits for it',
        );
      if (ctx.signal?.aborted) throw ctx.signal.reason;
      [current] = await this.retrying(
        'compute.globalOperations.wait',
        () =>
          c.operations.wait(
            { project: s.project, operation: current.name! },
            { timeout: Math.max(c.settings.requestTimeoutMs, WAIT_CALL_MS) },
          ),
        ctx,
      );
      if (current.status !== 'DONE')
        await sleep(Math.min(this.settings.pollMaxMs, this.settings.pollMinMs * poll), undefined, {
          signal: ctx.signal,
        });
    }
    const failure = current.error?.errors?.[0];
    if (failure)
      throw new PlumeError(
        'provider',
        `${what} failed: ${failure.code ?? ''}${failure.message ? `: ${failure.message}` : ''}`,
        'check the archive and the project, then run again',
        { retryable: false },
      );
  }

  /** Wait until the image is READY (GCE shows it PENDING while it reads the archive). */
  private async waitReady(plan: TargetPlan, ctx: ProviderContext): Promise<Image> {
    const deadline = Date.now() + this.settings.operationTimeoutMs;
    for (let poll = 1; ; poll++) {
      const image = await this.findImage(plan, ctx);
      if (!image)
        throw new PlumeError('provider', `image ${plan.images[0]!.name} vanished while being created`);
      if (image.status === 'READY') return image;
      if (image.status === 'FAILED' || image.status === 'DELETING')
        throw new PlumeError(
          'provider',
          `image ${image.name} is ${image.status}`,
          'run again to re-create it',
        );
      if (Date.now() > deadline)
        throw new PlumeError(
          'provider',
          `image ${image.name} is still ${image.status}`,
          'run again: it is waited for',
        );
      await sleep(Math.min(this.settings.pollMaxMs, this.settings.pollMinMs * poll), undefined, {
        signal: ctx.signal,
      });
    }
  }

  async createImages(
    plan: TargetPlan,
    disk: DiskRef | undefined,
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const target = plan.images[0]!;
    let image = await this.findImage(plan, ctx);
    let reused = image !== undefined;
    // The id of a FAILED image replaced here: part of the new insert's request id, because GCE answers a
    // request id it has seen with that request's operation, and the first insert's failed.
    let replacing: string | undefined;
    if (image?.status === 'FAILED') {
      replacing = String(image.id);
      ctx.log.warn({ image: image.name }, 'removing an image GCE could not create');
      await this.deleteImage(s, image.name!, ctx);
      image = undefined;
      reused = false;
    }
    if (!image) {
      if (!disk)
        throw new PlumeError('internal', `no archive to create ${target.name} from`, 'run the release again');
      const object = disk.id.replace(/^gs:\/\/[^/]+\//, '');
      const [op] = await this.retrying(
        'compute.images.insert',
        () =>
          c.images.insert(
            {
              project: s.project,
              requestId: requestId(plan.key, target.name, disk.id, ...(replacing ? [replacing] : [])),
              imageResource: {
                name: target.name,
                family: s.family,
                description: plan.description,
                labels: labelsFor(plan),
                architecture: s.architecture,
                guestOsFeatures: s.guestOsFeatures.map((type) => ({ type })),
                storageLocations: s.storageLocations,
                licenses: s.licenses,
                rawDisk: {
                  source: `https://storage.googleapis.com/${s.bucket}/${object}`,
                  containerType: 'TAR',
                },
              },
            },
            c.callOptions(),
          ),
        ctx,
      );
      await this.waitOperation(s, op.latestResponse as Operation, `creating image ${target.name}`, ctx);
    }
    const ready = await this.waitReady(plan, ctx);
    // The archive has served its purpose (this run's, or one a run killed after the insert left behind); a
    // failure to delete it is only worth a warning.
    await c.storage
      .bucket(s.bucket)
      .file(objectName(plan))
      .delete({ ignoreNotFound: true })
      .catch((err: unknown) =>
        ctx.log.warn(
          { object: objectName(plan), err: errorMessage(err) },
          'could not delete the uploaded archive',
        ),
      );
    const id = imagePath(s.project, ready.name!);
    const resolved = { ...target, name: ready.name! };
    ctx.emit({ type: 'image-ready', target: resolved, id, reused, primary: true });
    return [{ target: resolved, id }];
  }

  /** GCE images are global: there is nothing to copy. */
  replicate(): Promise<TargetOutcome[]> {
    return Promise.resolve([]);
  }

  private async deleteImage(s: GcpImage, name: string, ctx: ProviderContext): Promise<void> {
    const c = this.clientsFor(s);
    try {
      const [op] = await c.images.delete({ project: s.project, image: name }, c.callOptions());
      await this.waitOperation(s, op.latestResponse as Operation, `deleting image ${name}`, ctx);
    } catch (err) {
      if (!isNotFound(err)) throw describeGcpError(err, 'compute.images.delete');
    }
  }

  /** The members that must be able to use the image, as the plan's visibility says. */
  private members(plan: TargetPlan): string[] {
    return [...(plan.visibility.public ? [ALL_USERS] : []), ...plan.visibility.accounts];
  }

  private async setUsers(plan: TargetPlan, name: string, ctx: ProviderContext): Promise<void> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const members = this.members(plan);
    await this.retrying(
      'compute.images.setIamPolicy',
      async () => {
        const [policy] = await c.images.getIamPolicy({ project: s.project, resource: name }, c.callOptions());
        const others = (policy.bindings ?? []).filter((b) => b.role !== IMAGE_USER);
        const current = (policy.bindings ?? []).find((b) => b.role === IMAGE_USER)?.members ?? [];
        const wanted = [...new Set([...current, ...members])];
        if (wanted.length === current.length) return;
        await c.images.setIamPolicy(
          {
            project: s.project,
            resource: name,
            globalSetPolicyRequestResource: {
              policy: { bindings: [...others, { role: IMAGE_USER, members: wanted }], etag: policy.etag },
            },
          },
          c.callOptions(),
        );
      },
      ctx,
    );
  }

  /** Older images of the family plume made, not yet deprecated: deprecated in favour of this one. */
  private async deprecatePrevious(plan: TargetPlan, image: Image, ctx: ProviderContext): Promise<void> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const [images] = await this.retrying(
      'compute.images.list',
      () => c.images.list({ project: s.project, filter: `family = ${s.family}` }, c.callOptions()),
      ctx,
    );
    const older = images.filter(
      (i) =>
        i.name !== image.name &&
        i.labels?.[LABEL_RELEASE] !== undefined &&
        !i.deprecated?.state &&
        (i.creationTimestamp ?? '') < (image.creationTimestamp ?? ''),
    );
    for (const old of older) {
      ctx.log.info(
        { image: old.name, replacement: image.name },
        'deprecating the previous image of the family',
      );
      const [op] = await this.retrying(
        'compute.images.deprecate',
        () =>
          c.images.deprecate(
            {
              project: s.project,
              image: old.name!,
              requestId: requestId('deprecate', old.name!, image.name!),
              deprecationStatusResource: { state: 'DEPRECATED', replacement: image.selfLink! },
            },
            c.callOptions(),
          ),
        ctx,
      );
      await this.waitOperation(s, op.latestResponse as Operation, `deprecating ${old.name}`, ctx);
    }
  }

  async publish(plan: TargetPlan, images: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]> {
    const out: TargetOutcome[] = [];
    for (const target of images) {
      try {
        const image = await this.findImage(plan, ctx);
        if (!image) throw new PlumeError('provider', `image ${target.name} vanished`);
        await this.setUsers(plan, image.name!, ctx);
        await this.deprecatePrevious(plan, image, ctx);
        ctx.emit({ type: 'image-published', target, id: target.id });
        out.push({ target, id: target.id });
      } catch (err) {
        const error = errorMessage(err);
        ctx.emit({ type: 'target-failed', target, error });
        out.push({ target, error });
      }
    }
    return out;
  }

  async verify(plan: TargetPlan, ctx: ProviderContext): Promise<VerifyReport> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    const planned = plan.images[0]!;
    const report: VerifyReport = { ok: [], problems: [] };
    const problem = (kind: Problem['kind'], detail: string, target = planned, id?: string) =>
      report.problems.push({ target, kind, detail, ...(id ? { id } : {}) });
    let image: Image | undefined;
    try {
      image = await this.findImage(plan, ctx);
    } catch (err) {
      problem('error', errorMessage(err));
      return report;
    }
    if (!image) {
      problem('missing', `no image named ${planned.name} in ${s.project}`);
      return report;
    }
    const target = { ...planned, name: image.name! };
    const id = imagePath(s.project, image.name!);
    if (image.status === 'FAILED') problem('failed', `image ${image.name} is FAILED`, target, id);
    else if (image.status !== 'READY')
      problem('not-available', `image ${image.name} is ${image.status}`, target, id);
    const wrong: string[] = [];
    const check = (what: string, actual: unknown, expected: unknown) => {
      if (JSON.stringify(actual) !== JSON.stringify(expected))
        wrong.push(`${what} is ${JSON.stringify(actual ?? null)}, expected ${JSON.stringify(expected)}`);
    };
    check('family', image.family, s.family);
    check('architecture', image.architecture, s.architecture);
    check('storage locations', [...(image.storageLocations ?? [])].sort(), [...s.storageLocations].sort());
    const features = new Set((image.guestOsFeatures ?? []).map((f) => f.type));
    const missingFeatures = s.guestOsFeatures.filter((f) => !features.has(f));
    if (missingFeatures.length) wrong.push(`guest OS features lack ${missingFeatures.join(', ')}`);
    if (wrong.length) problem('attributes', wrong.join('; '), target, id);
    const labels = labelsFor(plan);
    const badLabels = Object.entries(labels).filter(([k, v]) => image.labels?.[k] !== v);
    if (badLabels.length)
      problem(
        'tags',
        badLabels
          .map(([k, v]) => `label ${k} is ${JSON.stringify(image.labels?.[k] ?? null)}, expected ${v}`)
          .join('; '),
        target,
        id,
      );
    try {
      const [policy] = await this.retrying(
        'compute.images.getIamPolicy',
        () => c.images.getIamPolicy({ project: s.project, resource: image.name! }, c.callOptions()),
        ctx,
      );
      const users = new Set((policy.bindings ?? []).find((b) => b.role === IMAGE_USER)?.members ?? []);
      const missing = this.members(plan).filter((m) => !users.has(m));
      if (missing.length)
        problem(
          'not-public',
          missing.includes(ALL_USERS) ? 'image is not public' : `image not shared with ${missing.join(', ')}`,
          target,
          id,
        );
      if (!plan.visibility.public && users.has(ALL_USERS))
        problem('public', 'image is public but the release is private', target, id);
    } catch (err) {
      problem('error', errorMessage(err), target, id);
    }
    if (!report.problems.length) report.ok.push({ ...target, id });
    return report;
  }

  async repair(plan: TargetPlan, problems: Problem[], ctx: ProviderContext): Promise<void> {
    const s = gcpImage(plan);
    const c = this.clientsFor(s);
    for (const p of problems) {
      ctx.log.warn({ image: p.target.name, problem: p.kind, detail: p.detail }, 'repairing');
      switch (p.kind) {
        case 'tags': {
          await this.retrying(
            'compute.images.setLabels',
            async () => {
              const [image] = await c.images.get(
                { project: s.project, image: p.target.name },
                c.callOptions(),
              );
              const [op] = await c.images.setLabels(
                {
                  project: s.project,
                  resource: p.target.name,
                  globalSetLabelsRequestResource: {
                    labels: { ...image.labels, ...labelsFor(plan) },
                    labelFingerprint: image.labelFingerprint,
                  },
                },
                c.callOptions(),
              );
              await this.waitOperation(s, op.latestResponse as Operation, `labelling ${p.target.name}`, ctx);
            },
            ctx,
          );
          break;
        }
        case 'not-public':
          await this.setUsers(plan, p.target.name, ctx);
          break;
        case 'not-available':
          await this.waitReady(plan, ctx);
          break;
        case 'public':
          throw new PlumeError(
            'provider',
            `${p.target.name}: ${p.detail}`,
            'plume never withdraws an image: if it must be private, remove allAuthenticatedUsers from its IAM policy by hand',
          );
        default:
          throw new PlumeError(
            'provider',
            `${p.target.name}: ${p.kind}: ${p.detail}`,
            p.kind === 'missing' || p.kind === 'failed'
              ? 'run the release again: it uploads the archive anew and creates the image'
              : 'inspect the image by hand',
          );
      }
    }
  }

  listLocations(primary: string): Promise<string[]> {
    return Promise.resolve([primary]);
  }

  async listRelease(plan: TargetPlan, ctx: ProviderContext): Promise<PublishedImage[]> {
    const image = await this.findImage(plan, ctx);
    return image
      ? [{ ...plan.images[0]!, name: image.name!, id: imagePath(gcpImage(plan).project, image.name!) }]
      : [];
  }
}

export { gcpFailure };
