import type { IncomingMessage } from 'node:http';
import type { FaultRule } from './types.js';
import type { Upstream } from './upstream.js';

/** One AWS request as the proxy understood it. */
export interface Call {
  req: IncomingMessage;
  method: string;
  url: URL;
  service: string;
  region: string;
  operation: string;
  accessKeyId: string;
  /** The whole body, for services the proxy buffers (everything but S3). */
  body?: Buffer;
  /** Form parameters of query-protocol calls (EC2, STS). */
  params?: URLSearchParams;
  /** Set when an `image-failed` rule fired for this call. */
  imageFailure?: FaultRule;
}

/**
 * How long things stay `pending`: a default and per-region overrides (setting the default leaves the
 * overrides). Read when a state is asked for, not fixed at creation, so lowering it releases what waits.
 */
export class Timing {
  private defaultMs: number;
  private readonly byRegion = new Map<string, number>();

  constructor(private readonly initialMs: number) {
    this.defaultMs = initialMs;
  }

  pendingMs(region: string): number {
    return this.byRegion.get(region) ?? this.defaultMs;
  }

  set(ms: number, region?: string): void {
    if (!Number.isFinite(ms) || ms < 0) throw new Error('pendingMs must be a non-negative number');
    if (region) this.byRegion.set(region, ms);
    else this.defaultMs = ms;
  }

  reset(): void {
    this.defaultMs = this.initialMs;
    this.byRegion.clear();
  }
}

export interface HandlerDeps {
  upstream: Upstream;
}

/** The request as moto should receive it: same method, path and headers, body as buffered. */
export function forwardOf(call: Call, body?: Buffer) {
  return {
    method: call.method,
    path: call.req.url ?? '/',
    headers: call.req.headers,
    body: body ?? call.body,
  };
}
