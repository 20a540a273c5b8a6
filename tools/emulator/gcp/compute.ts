import { setTimeout as sleep } from 'node:timers/promises';
import { jsonReply, type BufferedReply } from '../replies.js';
import type { FaultRule } from '../types.js';
import { OPERATION_WAIT_MS } from './config.js';
import type { ComputeRoute } from './compute-routes.js';
import { ApiFailure, fail, googleErrorReply, invalidField, notFound } from './errors.js';
import type { ImageSources, SourceObject } from './image-source.js';
import { newImage, type ImageRecord, type Images } from './images.js';
import { labelFingerprint, validLabels } from './labels.js';
import { parseFilter } from './list-filter.js';
import type { Operations, OperationResource } from './operations.js';
import { COMPUTE_BASE, selfLink } from './resources.js';
import type { Buckets } from './buckets.js';

export interface ComputeApiOptions {
  project: string;
  projectNumber: string;
  images: Images;
  ops: Operations;
  sources: ImageSources;
  buckets: Buckets;
  /** How long an image stays PENDING once its archive was read. */
  pendingMs: () => number;
  listPageSize: number;
}

export interface ComputeCall {
  route: ComputeRoute;
  operation: string;
  url: URL;
  body: Record<string, unknown>;
  /** Set when an `image-failed` rule fired for an images.insert. */
  imageFailure?: FaultRule;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEPRECATION_STATES = new Set(['ACTIVE', 'DEPRECATED', 'OBSOLETE', 'DELETED']);
const IMAGE_PATH = /^projects\/[^/]+\/global\/images\/[^/]+$/;

function requestId(url: URL): string | null {
  const id = url.searchParams.get('requestId');
  if (id !== null && (!UUID.test(id) || /^[0-]+$/.test(id)))
    invalidField(
      'requestId',
      id,
      'The request ID must be a valid UUID with the exception that zero UUID is not supported.',
    );
  return id;
}

/** A copy for the wire, so a later change to the model never shows in an answer already given. */
function snapshot<T>(v: T): T {
  return structuredClone(v);
}

/**
 * Compute Engine's images, global operations and project, as the v1 REST API serves them (what
 * @google-cloud/compute's REST transport and gcloud send). images.insert reads the archive from the
 * storage emulator in the background: the image is PENDING and its operation RUNNING until it has been
 * read and `pendingMs` more has passed, then READY (or FAILED, with the operation's error saying why).
 */
export class ComputeApi {
  constructor(private readonly opts: ComputeApiOptions) {}

  async handle(call: ComputeCall): Promise<BufferedReply> {
    try {
      return jsonReply(200, snapshot(await this.serve(call)));
    } catch (e) {
      if (e instanceof ApiFailure) return googleErrorReply(e.error);
      throw e;
    }
  }

  private async serve(call: ComputeCall): Promise<unknown> {
    const { route, url, body } = call;
    if (route.kind === 'unknown')
      return fail(404, 'notFound', `The requested URL ${url.pathname} was not found on this server.`);
    if (route.project !== this.opts.project) return notFound(`projects/${route.project}`);
    const { images, ops } = this.opts;
    switch (call.operation) {
      case 'projects.get':
        return this.projectResource();
      case 'images.insert':
        return this.insert(body, url, call.imageFailure);
      case 'images.list':
        return this.list(url);
      case 'images.get':
        return images.require((route as { image: string }).image).resource;
      case 'images.getFromFamily':
        return this.fromFamily((route as { family: string }).family);
      case 'images.delete':
        return this.remove((route as { image: string }).image, url);
      case 'images.deprecate':
        return this.deprecate((route as { image: string }).image, body, url);
      case 'images.setLabels':
        return this.setLabels((route as { image: string }).image, body, url);
      case 'images.getIamPolicy':
        return images.require((route as { image: string }).image).iam.get();
      case 'images.setIamPolicy':
        return images.require((route as { image: string }).image).iam.set(body.policy ?? body);
      case 'globalOperations.get':
        return ops.get((route as { operation: string }).operation);
      case 'globalOperations.wait':
        return ops.wait((route as { operation: string }).operation, OPERATION_WAIT_MS);
      case 'globalOperations.list':
        return {
          kind: 'compute#operationList',
          id: `projects/${this.opts.project}/global/operations`,
          items: ops.list(),
          selfLink: selfLink(`projects/${this.opts.project}/global/operations`),
        };
      case 'globalOperations.delete':
        ops.delete((route as { operation: string }).operation);
        return {};
      default:
        return fail(400, 'badRequest', `emulator: ${call.operation} is not served`);
    }
  }

  private projectResource() {
    const { project, projectNumber } = this.opts;
    return {
      kind: 'compute#project',
      id: projectNumber,
      creationTimestamp: '2024-01-01T00:00:00.000-07:00',
      name: project,
      commonInstanceMetadata: { kind: 'compute#metadata', fingerprint: '42WmSpB8rSM=' },
      quotas: [{ metric: 'IMAGES', limit: 2000, usage: this.opts.images.list().length }],
      selfLink: selfLink(`projects/${project}`),
      defaultServiceAccount: `${projectNumber}-compute@developer.gserviceaccount.com`,
      xpnProjectStatus: 'UNSPECIFIED_XPN_PROJECT_STATUS',
      defaultNetworkTier: 'PREMIUM',
    };
  }

  private target(record: ImageRecord) {
    return { path: this.opts.images.path(record.resource.name), id: String(record.resource.id) };
  }

  private insert(body: Record<string, unknown>, url: URL, imageFailure?: FaultRule): OperationResource {
    const rid = requestId(url);
    const earlier = this.opts.ops.forRequest(rid);
    if (earlier) return earlier;
    const raw = (body.rawDisk ?? {}) as { source?: unknown };
    const where = this.opts.sources.locate(raw.source);
    const bucket = this.opts.buckets.require(where.bucket);
    const resource = newImage(this.opts.project, body, bucket.location.toLowerCase());
    const record = this.opts.images.add(resource);
    const op = this.opts.ops.start('insert', this.target(record), rid, true);
    void this.create(record, where, op, imageFailure);
    return op;
  }

  /** Read the archive, wait out the pending time, then READY or FAILED; the operation ends with it. */
  private async create(
    record: ImageRecord,
    where: SourceObject,
    op: OperationResource,
    imageFailure?: FaultRule,
  ) {
    const image = record.resource;
    try {
      const checked = await this.opts.sources.check(where);
      await sleep(this.opts.pendingMs());
      if (this.opts.images.get(image.name) !== record) return this.opts.ops.end(op);
      if (imageFailure || !checked.ok) {
        const error = imageFailure
          ? {
              code: imageFailure.code ?? 'IMAGE_CREATION_FAILED',
              message: imageFailure.message ?? 'emulator: image-failed fault',
            }
          : { code: (checked as { code: string }).code, message: (checked as { message: string }).message };
        image.status = 'FAILED';
        this.opts.ops.end(op, error);
        return;
      }
      if (checked.ok) {
        image.archiveSizeBytes = String(checked.archiveBytes);
        image.diskSizeGb = String(Math.max(1, Math.ceil(checked.diskBytes / 2 ** 30)));
      }
      image.status = 'READY';
      this.opts.ops.end(op);
    } catch (e) {
      image.status = 'FAILED';
      this.opts.ops.end(op, { code: 'INTERNAL_ERROR', message: `emulator: ${String(e)}`, httpStatus: 500 });
    }
  }

  private list(url: URL) {
    const { project, listPageSize } = this.opts;
    const matches = parseFilter(url.searchParams.get('filter'));
    let items = this.opts.images
      .list()
      .map((r) => r.resource)
      .filter((r) => matches(r));
    const orderBy = url.searchParams.get('orderBy');
    if (orderBy === 'creationTimestamp desc')
      items = items.sort((a, b) => (String(a.creationTimestamp) < String(b.creationTimestamp) ? 1 : -1));
    else if (orderBy !== null && orderBy !== 'name')
      invalidField('orderBy', orderBy, "Only 'name' and 'creationTimestamp desc' are supported.");
    const max = Number(url.searchParams.get('maxResults') ?? listPageSize);
    if (!Number.isInteger(max) || max < 0 || max > 500)
      invalidField('maxResults', max, 'Must be between 0 and 500.');
    const pageSize = Math.min(max || 500, listPageSize);
    const token = url.searchParams.get('pageToken');
    const start = token ? Number(Buffer.from(token, 'base64url').toString('utf8')) : 0;
    if (!Number.isInteger(start) || start < 0) invalidField('pageToken', token, 'Invalid page token.');
    const page = items.slice(start, start + pageSize);
    const next =
      start + pageSize < items.length
        ? Buffer.from(String(start + pageSize)).toString('base64url')
        : undefined;
    return {
      kind: 'compute#imageList',
      id: `projects/${project}/global/images`,
      items: page,
      ...(next ? { nextPageToken: next } : {}),
      selfLink: selfLink(`projects/${project}/global/images`),
    };
  }

  /** The newest READY image of the family that is not deprecated. */
  private fromFamily(family: string) {
    const candidates = this.opts.images
      .list()
      .map((r) => r.resource)
      .filter((i) => i.family === family && i.status === 'READY')
      .filter((i) => {
        const state = (i.deprecated as { state?: string } | undefined)?.state;
        return !state || state === 'ACTIVE';
      })
      .sort((a, b) => (String(a.creationTimestamp) < String(b.creationTimestamp) ? 1 : -1));
    return candidates[0] ?? notFound(`projects/${this.opts.project}/global/images/family/${family}`);
  }

  private remove(name: string, url: URL) {
    const rid = requestId(url);
    const earlier = this.opts.ops.forRequest(rid);
    if (earlier) return earlier;
    const record = this.opts.images.require(name);
    const op = this.opts.ops.start('delete', this.target(record), rid);
    this.opts.images.delete(name);
    this.opts.ops.end(op);
    return op;
  }

  private deprecate(name: string, body: Record<string, unknown>, url: URL) {
    const rid = requestId(url);
    const earlier = this.opts.ops.forRequest(rid);
    if (earlier) return earlier;
    const record = this.opts.images.require(name);
    const state = body.state ?? 'ACTIVE';
    if (typeof state !== 'string' || !DEPRECATION_STATES.has(state))
      invalidField('deprecationStatus.state', state, 'Must be one of ACTIVE, DEPRECATED, OBSOLETE, DELETED.');
    const status: Record<string, unknown> = { state };
    if (body.replacement !== undefined && body.replacement !== '') {
      const r = typeof body.replacement === 'string' ? body.replacement : JSON.stringify(body.replacement);
      const path = r.startsWith(COMPUTE_BASE) ? r.slice(COMPUTE_BASE.length) : r;
      if (!IMAGE_PATH.test(path)) invalidField('deprecationStatus.replacement', r, 'Must be an image URL.');
      status.replacement = `${COMPUTE_BASE}${path}`;
    }
    for (const when of ['deprecated', 'obsolete', 'deleted'] as const) {
      const v = body[when];
      if (v === undefined || v === '') continue;
      if (typeof v !== 'string' || Number.isNaN(Date.parse(v)))
        invalidField(`deprecationStatus.${when}`, v, 'Must be an RFC 3339 timestamp.');
      status[when] = v;
    }
    const op = this.opts.ops.start('deprecate', this.target(record), rid);
    if (state === 'ACTIVE') delete record.resource.deprecated;
    else record.resource.deprecated = status;
    this.opts.ops.end(op);
    return op;
  }

  private setLabels(name: string, body: Record<string, unknown>, url: URL) {
    const rid = requestId(url);
    const earlier = this.opts.ops.forRequest(rid);
    if (earlier) return earlier;
    const record = this.opts.images.require(name);
    const labels = validLabels(body.labels, 'labels');
    if (typeof body.labelFingerprint !== 'string' || !body.labelFingerprint)
      fail(400, 'required', "Required field 'labelFingerprint' not specified");
    if (body.labelFingerprint !== record.resource.labelFingerprint)
      fail(412, 'conditionNotMet', 'Labels fingerprint either invalid or resource labels have changed');
    const op = this.opts.ops.start('setLabels', this.target(record), rid);
    if (Object.keys(labels).length) record.resource.labels = labels;
    else delete record.resource.labels;
    record.resource.labelFingerprint = labelFingerprint(labels);
    this.opts.ops.end(op);
    return op;
  }
}
