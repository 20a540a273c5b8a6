import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallLog } from '../calls.js';
import { serveFaulted, type TerminalRule } from '../faulted.js';
import type { FaultEngine } from '../faults.js';
import { FrontServer } from '../http-server.js';
import { faultErrorFrom, type BufferedReply } from '../replies.js';
import { readBounded } from '../upstream.js';
import type { ComputeApi } from './compute.js';
import { computeOperation, computePermission, computeRoute, type ComputeRoute } from './compute-routes.js';
import { MAX_COMPUTE_BODY } from './config.js';
import { GCP_FAULT_ERRORS, googleErrorReply, oauthErrorReply } from './errors.js';
import type { TokenIssuer } from './oauth.js';

export interface ComputeFrontOptions {
  engine: FaultEngine;
  log: CallLog;
  api: ComputeApi;
  issuer: TokenIssuer;
  project: string;
  /** Requests under /__emulator/: the emulator's control API. */
  control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

function parseJson(raw: Buffer): Record<string, unknown> | undefined {
  if (!raw.length) return {};
  try {
    const v: unknown = JSON.parse(raw.toString('utf8'));
    // The REST transport sends `""` as the body of a POST that has none (globalOperations.wait).
    if (v === '') return {};
    return typeof v === 'object' && v !== null && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The HTTP front that plays Google's OAuth 2.0 token endpoint (`POST /token`, call-log operation `token`,
 * service `oauth2`) and Compute Engine's v1 API (`/compute/v1/projects/...`, service `compute`, operations
 * named after the API's methods). Every Compute call needs a token the emulator issued (401 otherwise), may
 * meet a fault, and is logged with region `global`.
 */
export class ComputeFront {
  private readonly server: FrontServer;

  constructor(private readonly opts: ComputeFrontOptions) {
    this.server = new FrontServer('gcp-compute', (req, res) => this.onRequest(req, res));
  }

  listen(port = 0): Promise<number> {
    return this.server.listen(port);
  }

  close(): Promise<void> {
    return this.server.close();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname.startsWith('/__emulator/')) return this.opts.control(req, res, url);
    const raw = await readBounded(req, MAX_COMPUTE_BODY);
    const common = { engine: this.opts.engine, log: this.opts.log, req, res, at };

    if (url.pathname === '/token') {
      return serveFaulted({
        ...common,
        key: { service: 'oauth2', operation: 'token', region: 'global' },
        faultReply: (rule) => {
          const err = faultErrorFrom(GCP_FAULT_ERRORS, 'oauth', rule);
          return oauthErrorReply(err.status, err.code, err.message);
        },
        dispatch: () => {
          if (method !== 'POST') return Promise.resolve(oauthErrorReply(405, 'invalid_request', 'POST only'));
          return Promise.resolve(this.opts.issuer.handle(new URLSearchParams(raw?.toString('utf8') ?? '')));
        },
        internalError: () => oauthErrorReply(500, 'internal_failure', 'Internal error.'),
      });
    }

    const route = computeRoute(url.pathname);
    const operation = computeOperation(route, method);
    await serveFaulted({
      ...common,
      key: { service: 'compute', operation, region: 'global' },
      faultReply: (rule) => this.faultReply(rule, route, operation),
      dispatch: (imageFailure) => {
        const denied = this.opts.issuer.check(req.headers.authorization);
        if (denied) return Promise.resolve(googleErrorReply(denied));
        if (!raw)
          return Promise.resolve(
            googleErrorReply({ status: 413, reason: 'invalid', message: 'The request body is too large.' }),
          );
        const body = parseJson(raw);
        if (!body)
          return Promise.resolve(
            googleErrorReply({
              status: 400,
              reason: 'parseError',
              message: 'Invalid JSON payload received.',
            }),
          );
        return this.opts.api.handle({
          route,
          operation,
          url,
          body,
          ...(imageFailure ? { imageFailure } : {}),
        });
      },
      internalError: (e) => {
        console.error(`[gcp-compute] ${operation} failed:`, e);
        return googleErrorReply({
          status: 500,
          reason: 'backendError',
          message: 'Internal error. Please try again or contact Google Support.',
        });
      },
    });
  }

  private faultReply(rule: TerminalRule, route: ComputeRoute, operation: string): BufferedReply {
    const err = faultErrorFrom(GCP_FAULT_ERRORS, 'compute', rule);
    const resource =
      route.kind === 'image'
        ? `projects/${route.project}/global/images/${route.image}`
        : route.kind === 'unknown'
          ? `projects/${this.opts.project}`
          : `projects/${route.project}`;
    const message = err.message || `Required '${computePermission(operation)}' permission for '${resource}'`;
    return googleErrorReply({ status: err.status, reason: err.code, message });
  }
}
