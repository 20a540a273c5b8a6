import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallLog } from '../calls.js';
import { serveFaulted, type TerminalRule } from '../faulted.js';
import type { FaultEngine } from '../faults.js';
import { readBounded } from '../upstream.js';
import { FrontServer, type ServerTls } from '../http-server.js';
import { faultErrorFrom, type BufferedReply } from '../replies.js';
import { armAction, armOperation, armRoute, type ArmRoute } from './arm-routes.js';
import type { ComputeApi } from './compute.js';
import { MAX_ARM_BODY } from './config.js';
import { armErrorReply, AZURE_FAULT_ERRORS, identityErrorReply } from './errors.js';
import { identityOperation, type TokenIssuer } from './identity.js';
import type { Store } from './model.js';

export interface ArmFrontOptions {
  engine: FaultEngine;
  log: CallLog;
  tls: ServerTls;
  api: ComputeApi;
  issuer: TokenIssuer;
  store: Store;
  retryAfterSeconds: number;
}

/**
 * The HTTPS front that plays both Entra ID (token endpoint under /{tenant}/) and Resource Manager
 * (/subscriptions/...). Each call is named (GetToken, Galleries_Get, GalleryImageVersions_CreateOrUpdate...),
 * may meet a fault, and is logged with the gallery's region (or `global`).
 */
export class ArmFront {
  private readonly server: FrontServer;

  constructor(private readonly opts: ArmFrontOptions) {
    this.server = new FrontServer('azure-arm', (req, res) => this.onRequest(req, res), opts.tls);
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
    const url = new URL(req.url ?? '/', 'https://emulator');
    const body = await readBounded(req, MAX_ARM_BODY);

    const identity = identityOperation(method, url.pathname);
    if (identity) {
      const form = new URLSearchParams(body?.toString('utf8') ?? '');
      return serveFaulted({
        ...this.common(req, res, at),
        key: { service: 'identity', operation: identity, region: 'global' },
        faultReply: (rule) => {
          const err = faultErrorFrom(AZURE_FAULT_ERRORS, 'identity', rule);
          return identityErrorReply(err.status, err.code, err.message);
        },
        dispatch: () => Promise.resolve(this.opts.issuer.handle(identity, url.pathname, form)),
        internalError: () =>
          identityErrorReply(500, 'server_error', 'AADSTS90033: A transient error has occurred.'),
      });
    }

    const route = armRoute(url.pathname);
    const operation = armOperation(route, method, url);
    await serveFaulted({
      ...this.common(req, res, at),
      key: { service: 'arm', operation, region: this.regionOf(route) },
      faultReply: (rule) => this.faultReply(rule, route, method, url),
      dispatch: (imageFailure) => {
        if (!body) {
          return Promise.resolve(
            armErrorReply({
              status: 413,
              code: 'RequestEntityTooLarge',
              message: `The request body is larger than ${MAX_ARM_BODY} bytes.`,
            }),
          );
        }
        return Promise.resolve(
          this.opts.api.handle({
            route,
            method,
            url,
            authorization: req.headers.authorization,
            body,
            imageFailure,
          }),
        );
      },
      internalError: (e) => {
        console.error(`[azure-arm] ${operation} failed:`, e);
        return armErrorReply({
          status: 500,
          code: 'InternalServerError',
          message: 'Encountered internal server error. Please try again.',
        });
      },
    });
  }

  private common(req: IncomingMessage, res: ServerResponse, at: number) {
    return { engine: this.opts.engine, log: this.opts.log, req, res, at };
  }

  /** Fault rules select ARM calls by the region of the gallery they address; others are `global`. */
  private regionOf(route: ArmRoute): string {
    if ('gallery' in route) return this.opts.store.gallery(route.rg, route.gallery)?.location ?? 'global';
    if (route.kind === 'operation') return route.location.toLowerCase();
    return 'global';
  }

  private faultReply(rule: TerminalRule, route: ArmRoute, method: string, url: URL): BufferedReply {
    const err = faultErrorFrom(AZURE_FAULT_ERRORS, 'arm', rule);
    const { clientId } = this.opts.issuer.app;
    const message =
      err.message ||
      `The client '${clientId}' with object id '${clientId}' does not have authorization to perform action ` +
        `'${armAction(route, method)}' over scope '${url.pathname}' or the scope is invalid. If access was ` +
        'recently granted, please refresh your credentials.';
    const extra = err.status === 429 ? { 'retry-after': String(this.opts.retryAfterSeconds) } : {};
    return armErrorReply({ status: err.status, code: err.code, message }, extra);
  }
}
