import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { finished } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { buffersBody, credentialScope, ebsRoute, queryOperation, s3Operation } from './classify.js';
import { Timing, type Call, type HandlerDeps } from './context.js';
import { handleControl } from './control.js';
import { EbsModel } from './ebs.js';
import { Ec2Handler } from './ec2.js';
import { Ec2Model } from './ec2-model.js';
import { FaultEngine } from './faults.js';
import { errorReply, faultError, isStream, jsonReply, type Reply } from './replies.js';
import type { CallRecord, FaultKind } from './types.js';
import { readAll, type Upstream } from './upstream.js';

export interface ProxyOptions {
  upstream: Upstream;
  blockSize: number;
  pendingMs: number;
  seed: number;
}

/** Keep the call log bounded for long soaks; tests clear it far more often than this. */
const MAX_CALLS = 500_000;

/**
 * The HTTP front of the emulator: every AWS request goes through here, is classified, may meet a fault,
 * is handled by the EC2/EBS emulation or passed to moto, and is logged.
 */
export class EmulatorProxy {
  readonly faults: FaultEngine;
  readonly timing: Timing;
  readonly ebs: EbsModel;
  readonly ec2: Ec2Model;
  private readonly ec2Handler: Ec2Handler;
  private readonly deps: HandlerDeps;
  private log: CallRecord[] = [];
  private readonly server: Server;

  constructor(private readonly opts: ProxyOptions) {
    this.faults = new FaultEngine(opts.seed);
    this.timing = new Timing(opts.pendingMs);
    this.ebs = new EbsModel(opts.blockSize, this.timing);
    this.ec2 = new Ec2Model(this.timing, this.ebs);
    this.deps = { upstream: opts.upstream };
    this.ec2Handler = new Ec2Handler(this.ec2, this.ebs, this.deps);
    this.server = createServer((req, res) => {
      this.onRequest(req, res).catch((e: unknown) => {
        // A client that hung up mid-request (an SDK timeout, a test ending) is not the emulator's problem.
        if (!req.destroyed && !req.socket.destroyed) console.error('[emulator] request failed:', e);
        if (!res.headersSent) res.writeHead(500).end();
        else res.destroy();
      });
    });
    // The SDK keeps connections alive; a server closing an idle one just as the client reuses it would
    // show up as a spurious ECONNRESET retry, so idle connections are kept far longer than a test pause.
    this.server.keepAliveTimeout = 120_000;
    this.server.headersTimeout = 125_000;
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    return (this.server.address() as AddressInfo).port;
  }

  async close(): Promise<void> {
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    await closed;
    this.opts.upstream.close();
  }

  /** moto and every piece of proxy state back to a fresh start (rules, log, models, pending times). */
  async reset(): Promise<void> {
    await this.opts.upstream.reset();
    this.faults.reset();
    this.timing.reset();
    this.ebs.reset();
    this.ec2.reset();
    this.log = [];
  }

  calls(): CallRecord[] {
    return this.log.slice();
  }

  clearCalls(): void {
    this.log = [];
  }

  private record(entry: CallRecord): void {
    this.log.push(entry);
    if (this.log.length > MAX_CALLS) this.log.splice(0, this.log.length - MAX_CALLS);
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');

    if (url.pathname.startsWith('/__emulator/')) return handleControl(this, req, res, url);
    if (url.pathname === '/moto-api/reset' && method === 'POST') {
      await this.reset();
      return send(res, jsonReply(200, { status: 'ok' }));
    }
    if (url.pathname.startsWith('/moto-api')) {
      return send(
        res,
        await this.opts.upstream.stream({ method, path: req.url ?? '/', headers: req.headers, body: req }),
      );
    }

    const scope = credentialScope(req.headers, url);
    const service = scope?.service ?? 'unknown';
    const region = scope?.region ?? 'us-east-1';
    const body = buffersBody(service) ? await readAll(req) : undefined;
    const call: Call = {
      req,
      method,
      url,
      service,
      region,
      operation: 'Unknown',
      accessKeyId: scope?.accessKeyId ?? 'AKIDEMULATOR',
      body,
    };
    classify(call);

    const done = (status: number, fault?: FaultKind) =>
      this.record({
        service,
        operation: call.operation,
        region,
        status,
        at,
        durationMs: Date.now() - at,
        ...(fault ? { fault } : {}),
      });

    const decision = this.faults.decide({ service, operation: call.operation, region });
    if (decision.delayMs > 0) await sleep(decision.delayMs);
    if (decision.imageFailure) call.imageFailure = decision.imageFailure;
    const fault = decision.terminal;

    if (fault?.kind === 'drop') {
      req.socket.destroy();
      return done(0, 'drop');
    }

    let reply: Reply;
    if (fault && fault.kind !== 'drop-after') {
      reply = errorReply(service, faultError(service, fault), method);
    } else {
      reply = await this.dispatch(call).catch((e: unknown) => {
        console.error(`[emulator] ${service} ${call.operation} failed:`, e);
        const message = e instanceof Error ? e.message : String(e);
        return errorReply(
          service,
          { code: 'InternalError', message: `emulator: ${message}`, status: 500 },
          method,
        );
      });
    }

    if (fault?.kind === 'drop-after') {
      // The work is done; the client just never hears about it.
      if (isStream(reply)) await readAll(reply.stream);
      req.socket.destroy();
      return done(reply.status, 'drop-after');
    }

    const status = reply.status;
    await send(res, reply).catch(() => undefined);
    done(status, fault?.kind ?? (decision.imageFailure ? 'image-failed' : undefined));
  }

  private dispatch(call: Call): Promise<Reply> {
    switch (call.service) {
      case 'ec2':
        return this.ec2Handler.handle(call);
      case 'ebs':
        return this.ebs.handle(call, this.deps);
      default:
        return this.opts.upstream.stream({
          method: call.method,
          path: call.req.url ?? '/',
          headers: call.req.headers,
          body: call.body ?? call.req,
        });
    }
  }
}

/** Fill in the operation (and form parameters) from what the service's protocol puts where. */
function classify(call: Call): void {
  const { req, url, service, body } = call;
  if (service === 'ebs') {
    call.operation = ebsRoute(call.method, url.pathname).operation;
    return;
  }
  if (service === 's3') {
    call.operation = s3Operation(call.method, url, req.headers);
    return;
  }
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') {
    call.operation = target.slice(target.lastIndexOf('.') + 1);
    return;
  }
  const contentType = req.headers['content-type'] ?? '';
  const params = new URLSearchParams(url.search);
  if (body && contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params.append(k, v);
  }
  call.params = params;
  call.operation = queryOperation(params);
}

async function send(res: ServerResponse, reply: Reply): Promise<void> {
  res.writeHead(reply.status, reply.headers);
  if (isStream(reply)) reply.stream.pipe(res);
  else res.end(reply.body);
  await finished(res);
}
