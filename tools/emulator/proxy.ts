import type { IncomingMessage, ServerResponse } from 'node:http';
import { awsControlRoutes } from './aws-control.js';
import { CallLog } from './calls.js';
import { buffersBody, credentialScope, ebsRoute, queryOperation, s3Operation } from './classify.js';
import { Timing, type Call, type HandlerDeps } from './context.js';
import { handleControl } from './control.js';
import { EbsModel } from './ebs.js';
import { Ec2Handler } from './ec2.js';
import { Ec2Model } from './ec2-model.js';
import { serveFaulted } from './faulted.js';
import { FaultEngine } from './faults.js';
import { FrontServer } from './http-server.js';
import { errorReply, faultError, jsonReply, sendReply, type Reply } from './replies.js';
import type { CallRecord } from './types.js';
import { readAll, type Upstream } from './upstream.js';

export interface ProxyOptions {
  upstream: Upstream;
  blockSize: number;
  pendingMs: number;
  seed: number;
}

/** Operations whose result is an image, the only ones `image-failed` can apply to. */
const IMAGE_OPERATIONS = ['RegisterImage', 'CopyImage'];

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
  private readonly log = new CallLog();
  private readonly server: FrontServer;

  constructor(private readonly opts: ProxyOptions) {
    this.faults = new FaultEngine(opts.seed, IMAGE_OPERATIONS);
    this.timing = new Timing(opts.pendingMs);
    this.ebs = new EbsModel(opts.blockSize, this.timing);
    this.ec2 = new Ec2Model(this.timing, this.ebs);
    this.deps = { upstream: opts.upstream };
    this.ec2Handler = new Ec2Handler(this.ec2, this.ebs, this.deps);
    this.server = new FrontServer('emulator', (req, res) => this.onRequest(req, res));
  }

  listen(port = 0): Promise<number> {
    return this.server.listen(port);
  }

  async close(): Promise<void> {
    await this.server.close();
    this.opts.upstream.close();
  }

  /** moto and every piece of proxy state back to a fresh start (rules, log, models, pending times). */
  async reset(): Promise<void> {
    await this.opts.upstream.reset();
    this.faults.reset();
    this.timing.reset();
    this.ebs.reset();
    this.ec2.reset();
    this.log.clear();
  }

  calls(): CallRecord[] {
    return this.log.list();
  }

  clearCalls(): void {
    this.log.clear();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');

    if (url.pathname.startsWith('/__emulator/')) {
      return handleControl(this, req, res, url, awsControlRoutes(this));
    }
    if (url.pathname === '/moto-api/reset' && method === 'POST') {
      await this.reset();
      return sendReply(res, jsonReply(200, { status: 'ok' }));
    }
    if (url.pathname.startsWith('/moto-api')) {
      return sendReply(
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

    await serveFaulted({
      engine: this.faults,
      log: this.log,
      key: { service, operation: call.operation, region },
      req,
      res,
      at,
      faultReply: (rule) => errorReply(service, faultError(service, rule), method),
      dispatch: (imageFailure) => {
        if (imageFailure) call.imageFailure = imageFailure;
        return this.dispatch(call);
      },
      internalError: (e) => {
        console.error(`[emulator] ${service} ${call.operation} failed:`, e);
        const message = e instanceof Error ? e.message : String(e);
        return errorReply(
          service,
          { code: 'InternalError', message: `emulator: ${message}`, status: 500 },
          method,
        );
      },
    });
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
