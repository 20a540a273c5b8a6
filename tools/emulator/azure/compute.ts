import { jsonReply, type Reply } from '../replies.js';
import type { FaultRule } from '../types.js';
import { ok, operationHeaders, type ArmContext } from './arm-context.js';
import { armOperation, type ArmRoute } from './arm-routes.js';
import { API_VERSIONS } from './config.js';
import { armErrorBody, armErrorReply, armHeaders, ArmFailure, fail } from './errors.js';
import { deleteGallery, getGallery, listGalleries, putGallery, share } from './galleries.js';
import type { TokenIssuer } from './identity.js';
import { deleteImage, getImage, listImages, putImage } from './images.js';
import type { Store } from './model.js';
import type { Operations } from './operations.js';
import type { Replication } from './replication.js';
import type { SourceReader } from './source.js';
import { parseBody } from './validate.js';
import { deleteVersion, getVersion, listVersions, putVersion } from './versions.js';

export interface ComputeOptions {
  store: Store;
  ops: Operations;
  replication: Replication;
  sources: SourceReader;
  issuer: TokenIssuer;
  subscriptionId: string;
  baseUrl: () => string;
  pageSize: number;
  retryAfterSeconds: number;
}

export interface ArmRequest {
  route: ArmRoute;
  method: string;
  url: URL;
  authorization?: string;
  body: Buffer;
  imageFailure?: FaultRule;
}

/**
 * Microsoft.Compute's gallery API behind Resource Manager: authentication, api-version and subscription
 * checks as ARM does them, then the gallery, definition, version and operation resources.
 */
export class ComputeApi {
  constructor(private readonly opts: ComputeOptions) {}

  handle(req: ArmRequest): Reply {
    try {
      return this.route(req);
    } catch (e) {
      if (e instanceof ArmFailure) return armErrorReply(e.error);
      throw e;
    }
  }

  private route(req: ArmRequest): Reply {
    const denied = this.opts.issuer.check(req.authorization);
    if (denied) return armErrorReply(denied);
    const { route, method, url } = req;
    const apiVersion = url.searchParams.get('api-version');
    if (!apiVersion) {
      fail(
        400,
        'MissingApiVersionParameter',
        'The api-version query parameter (?api-version=) is required for all requests.',
      );
    }
    if (!(API_VERSIONS as readonly string[]).includes(apiVersion)) {
      fail(
        400,
        'NoRegisteredProviderFound',
        `No registered resource provider found for API version '${apiVersion}' and type 'galleries'. The supported api-versions are '${API_VERSIONS.join(', ')}'.`,
      );
    }
    if (route.kind === 'unknown') {
      fail(
        404,
        'InvalidResourceType',
        `The resource type could not be found in the namespace 'Microsoft.Compute' for path '${url.pathname}'.`,
      );
    }
    if (route.sub.toLowerCase() !== this.opts.subscriptionId.toLowerCase()) {
      fail(404, 'SubscriptionNotFound', `The subscription '${route.sub}' could not be found.`);
    }
    if ('rg' in route && route.rg !== undefined && !this.opts.store.resourceGroup(route.rg)) {
      fail(404, 'ResourceGroupNotFound', `Resource group '${route.rg}' could not be found.`);
    }
    const notAllowed = () =>
      fail(405, 'MethodNotAllowed', `The emulator does not serve ${method} on '${url.pathname}'.`);
    if (armOperation(route, method, url) === 'Unknown') notAllowed();
    const ctx: ArmContext = {
      store: this.opts.store,
      ops: this.opts.ops,
      replication: this.opts.replication,
      sources: this.opts.sources,
      subscriptionId: this.opts.subscriptionId,
      baseUrl: this.opts.baseUrl(),
      apiVersion,
      url,
      pageSize: this.opts.pageSize,
      retryAfterSeconds: this.opts.retryAfterSeconds,
      imageFailure: req.imageFailure,
      body: ['PUT', 'PATCH', 'POST'].includes(method) ? parseBody(req.body) : undefined,
    };
    switch (route.kind) {
      case 'galleries':
        return method === 'GET' ? listGalleries(ctx, route.rg) : notAllowed();
      case 'gallery':
        if (method === 'GET') return getGallery(ctx, route.rg, route.gallery);
        if (method === 'PUT' || method === 'PATCH')
          return putGallery(ctx, route.rg, route.gallery, method === 'PATCH');
        if (method === 'DELETE') return deleteGallery(ctx, route.rg, route.gallery);
        return notAllowed();
      case 'share':
        return method === 'POST' ? share(ctx, route.rg, route.gallery) : notAllowed();
      case 'images':
        return method === 'GET' ? listImages(ctx, route.rg, route.gallery) : notAllowed();
      case 'image':
        if (method === 'GET') return getImage(ctx, route.rg, route.gallery, route.image);
        if (method === 'PUT' || method === 'PATCH')
          return putImage(ctx, route.rg, route.gallery, route.image, method === 'PATCH');
        if (method === 'DELETE') return deleteImage(ctx, route.rg, route.gallery, route.image);
        return notAllowed();
      case 'versions':
        return method === 'GET' ? listVersions(ctx, route.rg, route.gallery, route.image) : notAllowed();
      case 'version':
        if (method === 'GET') return getVersion(ctx, route.rg, route.gallery, route.image, route.version);
        if (method === 'PUT' || method === 'PATCH') {
          return putVersion(ctx, route.rg, route.gallery, route.image, route.version, method === 'PATCH');
        }
        if (method === 'DELETE')
          return deleteVersion(ctx, route.rg, route.gallery, route.image, route.version);
        return notAllowed();
      case 'operation':
        return method === 'GET' ? this.operation(ctx, route.location, route.id) : notAllowed();
    }
  }

  /**
   * capsOperations/{id}: the Azure-AsyncOperation status resource (always 200 with the status), or with
   * monitor=true the Location resource (202 while running, then the result: 200 with a body or 204).
   */
  private operation(ctx: ArmContext, location: string, id: string): Reply {
    const op = this.opts.ops.get(id);
    if (!op) fail(404, 'ResourceNotFound', `The operation '${id}' was not found.`);
    if (ctx.url.searchParams.get('monitor') === 'true') {
      if (op.status === 'InProgress') {
        return {
          status: 202,
          headers: armHeaders({ ...operationHeaders(ctx, location, id), 'content-length': 0 }),
          body: Buffer.alloc(0),
        };
      }
      if (op.status === 'Succeeded') {
        return op.result === undefined
          ? { status: 204, headers: armHeaders({ 'content-length': 0 }), body: Buffer.alloc(0) }
          : ok(op.result);
      }
      return jsonReply(
        400,
        armErrorBody(op.error ?? { code: 'OperationCanceled', message: 'The operation was canceled.' }),
        armHeaders(),
      );
    }
    return ok({
      name: op.id,
      startTime: op.startTime,
      ...(op.endTime ? { endTime: op.endTime } : {}),
      status: op.status,
      ...(op.error ? { error: op.error } : {}),
    });
  }
}
