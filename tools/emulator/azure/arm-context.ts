import { jsonReply, type BufferedReply } from '../replies.js';
import { armHeaders, fail } from './errors.js';
import type { GalleryRecord, ImageRecord, Store } from './model.js';
import { image as findImage, version as findVersion } from './model.js';
import type { Operations } from './operations.js';
import type { Replication } from './replication.js';
import type { SourceReader } from './source.js';
import type { FaultRule } from '../types.js';
import type { Json } from './validate.js';

/** Everything an ARM handler works with, for one request. */
export interface ArmContext {
  store: Store;
  ops: Operations;
  replication: Replication;
  sources: SourceReader;
  subscriptionId: string;
  /** https://127.0.0.1:PORT */
  baseUrl: string;
  apiVersion: string;
  url: URL;
  pageSize: number;
  retryAfterSeconds: number;
  /** The parsed body of PUT, PATCH and POST. */
  body?: Json;
  /** An `image-failed` fault rule that fired for this call. */
  imageFailure?: FaultRule;
}

export function galleryId(ctx: ArmContext, g: GalleryRecord): string {
  return `/subscriptions/${ctx.subscriptionId}/resourceGroups/${g.rg}/providers/Microsoft.Compute/galleries/${g.name}`;
}

export function ok(value: unknown, status = 200): BufferedReply {
  return jsonReply(status, value, armHeaders());
}

/** DELETE of a resource that is not there: 204, nothing to do. */
export function noContent(): BufferedReply {
  return { status: 204, headers: armHeaders({ 'content-length': 0 }), body: Buffer.alloc(0) };
}

function operationUrl(ctx: ArmContext, location: string, id: string, monitor: boolean): string {
  const base = `${ctx.baseUrl}/subscriptions/${ctx.subscriptionId}/providers/Microsoft.Compute/locations/${location}/capsOperations/${id}`;
  return `${base}?${monitor ? 'monitor=true&' : ''}api-version=${ctx.apiVersion}`;
}

/**
 * The answer that starts a long-running operation, as Compute gives it: 201 (created) or 200 (updated)
 * with the resource and `Azure-AsyncOperation` for a PUT; 202 with `Azure-AsyncOperation` and `Location`
 * for a DELETE or an action; `Retry-After` on both.
 */
export function started(
  ctx: ArmContext,
  status: 200 | 201 | 202,
  location: string,
  operationId: string,
  body?: unknown,
): BufferedReply {
  const headers = armHeaders({
    'azure-asyncoperation': operationUrl(ctx, location, operationId, false),
    'retry-after': String(ctx.retryAfterSeconds),
    ...(status === 202 ? { location: operationUrl(ctx, location, operationId, true) } : {}),
  });
  if (body === undefined)
    return { status, headers: { ...headers, 'content-length': 0 }, body: Buffer.alloc(0) };
  return jsonReply(status, body, headers);
}

export function operationHeaders(ctx: ArmContext, location: string, id: string) {
  return { location: operationUrl(ctx, location, id, true), 'retry-after': String(ctx.retryAfterSeconds) };
}

/** A page of a list: `value` and, when more remain, a `nextLink` carrying a $skiptoken. */
export function page(ctx: ArmContext, items: unknown[]): BufferedReply {
  const raw = ctx.url.searchParams.get('$skiptoken');
  const start = raw && /^\d{1,9}$/.test(raw) ? Number(raw) : 0;
  const value = items.slice(start, start + ctx.pageSize);
  const body: Json = { value };
  if (start + ctx.pageSize < items.length) {
    const next = new URL(ctx.url.pathname, ctx.baseUrl);
    next.searchParams.set('api-version', ctx.apiVersion);
    next.searchParams.set('$skiptoken', String(start + ctx.pageSize));
    body.nextLink = next.toString();
  }
  return ok(body);
}

export function galleryOr404(ctx: ArmContext, rg: string, name: string): GalleryRecord {
  const g = ctx.store.gallery(rg, name);
  if (!g) {
    fail(
      404,
      'ResourceNotFound',
      `The Resource 'Microsoft.Compute/galleries/${name}' under resource group '${rg}' was not found. ` +
        'For more details please go to https://aka.ms/ARMResourceNotFoundFix',
    );
  }
  return g;
}

export function imageOr404(g: GalleryRecord, name: string): ImageRecord {
  const i = findImage(g, name);
  if (!i)
    fail(404, 'NotFound', `The gallery image definition '${name}' was not found in gallery '${g.name}'.`);
  return i;
}

export function versionOr404(g: GalleryRecord, i: ImageRecord, name: string) {
  const v = findVersion(i, name);
  if (!v) {
    fail(
      404,
      'NotFound',
      `The gallery image version '${name}' was not found in image definition '${i.name}' of gallery '${g.name}'.`,
    );
  }
  return v;
}
