import type { IncomingMessage, ServerResponse } from 'node:http';
import type { CallLog } from '../calls.js';
import { serveFaulted, type TerminalRule } from '../faulted.js';
import type { FaultEngine } from '../faults.js';
import { FrontServer } from '../http-server.js';
import { faultErrorFrom, jsonReply, type BufferedReply, type Reply } from '../replies.js';
import { readAll, readBounded, type HttpUpstream } from '../upstream.js';
import type { Buckets } from './buckets.js';
import { MAX_COMPUTE_BODY } from './config.js';
import { ApiFailure, fail, GCP_FAULT_ERRORS, googleErrorReply } from './errors.js';
import type { TokenIssuer } from './oauth.js';
import { parseContentRange, type ResumableSessions, type Session } from './resumable.js';
import { storageCall, type StorageCall } from './storage-classify.js';

export interface StorageProxyOptions {
  engine: FaultEngine;
  log: CallLog;
  issuer: TokenIssuer;
  /** The Firebase Storage emulator. */
  firebase: HttpUpstream;
  buckets: Buckets;
  sessions: ResumableSessions;
  project: string;
  /** Requests under /__emulator/: the emulator's control API. */
  control(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void>;
}

/** The IAM permission each method needs, for the access-denied fault's message. */
const PERMISSIONS: Record<string, string> = {
  'buckets.get': 'storage.buckets.get',
  'buckets.list': 'storage.buckets.list',
  'buckets.insert': 'storage.buckets.create',
  'objects.get': 'storage.objects.get',
  'objects.list': 'storage.objects.list',
  'objects.patch': 'storage.objects.update',
  'objects.delete': 'storage.objects.delete',
  'objects.insert': 'storage.objects.create',
  'objects.insert.chunk': 'storage.objects.create',
  'objects.insert.cancel': 'storage.objects.create',
};

/** Calls that a resumable session's URI authorizes by itself, as Cloud Storage's do: no token needed. */
const SESSION_CALLS = new Set(['objects.insert.chunk', 'objects.insert.cancel']);

function objectPath(bucket: string, name: string): string {
  return `/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(name)}`;
}

/**
 * Cloud Storage's JSON API endpoint clients use: every request needs an access token the emulator issued
 * (except a resumable session's own PUTs, which its URI authorizes), is named after its API method, may
 * meet a fault, and is served by the Firebase Storage emulator where it serves it as Cloud Storage does.
 * What Firebase lacks is served here: buckets (buckets.get/list/insert; an object call into an unknown
 * bucket is a 404), chunked resumable uploads (resumable.ts; the finished object is handed to Firebase in
 * one piece), `ifGenerationMatch` on uploads, and the final chunk's X-Goog-Hash check. Links in Firebase's
 * answers are rewritten to this endpoint.
 */
export class StorageProxy {
  private readonly server: FrontServer;
  private base = '';

  constructor(private readonly opts: StorageProxyOptions) {
    this.server = new FrontServer('gcp-storage', (req, res) => this.onRequest(req, res));
  }

  async listen(port = 0): Promise<number> {
    const p = await this.server.listen(port);
    this.base = `http://127.0.0.1:${p}`;
    return p;
  }

  async close(): Promise<void> {
    await this.server.close();
    this.opts.firebase.close();
  }

  private async onRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const at = Date.now();
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://emulator');
    if (url.pathname.startsWith('/__emulator/')) return this.opts.control(req, res, url);
    const call = storageCall(method, url);
    const bucket = call.bucket ? this.opts.buckets.get(call.bucket) : undefined;
    await serveFaulted({
      engine: this.opts.engine,
      log: this.opts.log,
      key: {
        service: 'storage',
        operation: call.operation,
        region: bucket?.location.toLowerCase() ?? 'global',
      },
      req,
      res,
      at,
      faultReply: (rule) => this.faultReply(rule, call),
      dispatch: () =>
        this.dispatch(call, method, url, req).catch((e: unknown) => {
          if (e instanceof ApiFailure) return googleErrorReply(e.error);
          throw e;
        }),
      internalError: (e) => {
        console.error(`[gcp-storage] ${call.operation} failed:`, e);
        return googleErrorReply({
          status: 500,
          reason: 'backendError',
          message: `emulator: ${e instanceof Error ? e.message : String(e)}`,
        });
      },
    });
  }

  private faultReply(rule: TerminalRule, call: StorageCall): BufferedReply {
    const err = faultErrorFrom(GCP_FAULT_ERRORS, 'storage', rule);
    const permission = PERMISSIONS[call.operation] ?? 'storage.objects.get';
    const message =
      err.message ||
      `${this.opts.issuer.user} does not have ${permission} access to the Google Cloud Storage object. Permission '${permission}' denied on resource (or it may not exist).`;
    return googleErrorReply({ status: err.status, reason: err.code, message });
  }

  private async dispatch(call: StorageCall, method: string, url: URL, req: IncomingMessage): Promise<Reply> {
    if (!SESSION_CALLS.has(call.operation)) {
      const denied = this.opts.issuer.check(req.headers.authorization);
      if (denied) {
        await readAll(req);
        fail(denied.status, denied.reason, denied.message);
      }
    }
    const { buckets } = this.opts;
    switch (call.operation) {
      case 'buckets.list':
        await readAll(req);
        this.checkProject(url);
        return jsonReply(200, {
          kind: 'storage#buckets',
          items: buckets.list().map((b) => buckets.resource(b, this.base)),
        });
      case 'buckets.insert': {
        this.checkProject(url);
        const body = await this.jsonBody(req);
        const name = typeof body.name === 'string' ? body.name : fail(400, 'required', 'Required');
        const location = typeof body.location === 'string' ? body.location : 'US';
        return jsonReply(200, buckets.resource(buckets.create(name, location), this.base));
      }
      case 'buckets.get':
        await readAll(req);
        return jsonReply(200, buckets.resource(buckets.require(call.bucket!), this.base));
      case 'objects.insert':
        buckets.require(call.bucket!);
        return url.searchParams.get('uploadType') === 'resumable'
          ? this.startSession(call.bucket!, url, req)
          : this.simpleUpload(call.bucket!, url, req);
      case 'objects.insert.chunk':
        return this.chunk(url, req);
      case 'objects.insert.cancel': {
        await readAll(req);
        const session = this.session(url);
        session.cancelled = true;
        this.opts.sessions.release(session);
        return { status: 499, headers: { 'content-length': 0 }, body: Buffer.alloc(0) };
      }
      case 'objects.get':
      case 'objects.list':
      case 'objects.patch':
      case 'objects.delete': {
        buckets.require(call.bucket!);
        const path = `${call.firebasePath!}${url.search}`;
        const headers = { ...req.headers };
        delete headers.authorization;
        if (call.operation === 'objects.get' && url.searchParams.get('alt') === 'media')
          return this.opts.firebase.stream({ method, path, headers, body: req });
        return this.rewritten(await this.opts.firebase.buffered({ method, path, headers, body: req }));
      }
      default: {
        // What neither Firebase nor the proxy serves: Firebase's own answer (501) tells.
        const headers = { ...req.headers };
        delete headers.authorization;
        return this.opts.firebase.buffered({
          method,
          path: `${url.pathname}${url.search}`,
          headers,
          body: req,
        });
      }
    }
  }

  private checkProject(url: URL): void {
    const project = url.searchParams.get('project');
    if (project !== null && project !== this.opts.project)
      fail(
        403,
        'forbidden',
        `${this.opts.issuer.user} does not have storage.buckets.list access to the Google Cloud project.`,
      );
  }

  private async jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
    const raw = await readBounded(req, MAX_COMPUTE_BODY);
    if (!raw) return fail(413, 'uploadTooLarge', 'The request body is too large.');
    if (!raw.length) return {};
    try {
      const value: unknown = JSON.parse(raw.toString('utf8'));
      if (typeof value === 'object' && value !== null && !Array.isArray(value))
        return value as Record<string, unknown>;
    } catch {
      /* answered below */
    }
    return fail(400, 'parseError', 'Parse Error');
  }

  /** Firebase's JSON answers, with its own address in links replaced by this endpoint's. */
  private rewritten(reply: BufferedReply): BufferedReply {
    if (!String(reply.headers['content-type'] ?? '').includes('json')) return reply;
    const body = Buffer.from(reply.body.toString('utf8').split(this.opts.firebase.endpoint).join(this.base));
    return { ...reply, headers: { ...reply.headers, 'content-length': body.length }, body };
  }

  /** The object's resource in Firebase, or undefined when there is none. */
  private async existing(bucket: string, name: string): Promise<Record<string, unknown> | undefined> {
    const reply = await this.opts.firebase.buffered({
      method: 'GET',
      path: objectPath(bucket, name),
      headers: {},
    });
    if (reply.status === 404) return undefined;
    if (reply.status !== 200)
      fail(500, 'backendError', `emulator: Firebase answered ${reply.status} for ${bucket}/${name}`);
    return JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
  }

  /** `ifGenerationMatch`: 0 means "only if there is no such object"; otherwise the live generation. */
  private async checkPrecondition(bucket: string, name: string, match: string | null | undefined) {
    if (match === null || match === undefined) return;
    const current = await this.existing(bucket, name);
    const holds = match === '0' ? current === undefined : current?.generation === match;
    if (!holds)
      fail(412, 'conditionNotMet', 'At least one of the pre-conditions you specified did not hold.');
  }

  private async startSession(bucket: string, url: URL, req: IncomingMessage): Promise<Reply> {
    const resource = await this.jsonBody(req);
    const name =
      url.searchParams.get('name') ?? (typeof resource.name === 'string' ? resource.name : undefined);
    if (!name) fail(400, 'required', 'Required');
    const contentType = req.headers['x-upload-content-type'];
    if (typeof contentType === 'string' && resource.contentType === undefined)
      resource.contentType = contentType;
    const match = url.searchParams.get('ifGenerationMatch');
    await this.checkPrecondition(bucket, name, match);
    const session = this.opts.sessions.start(bucket, name, { ...resource, name }, match ?? undefined);
    const location = new URL(`${this.base}/upload/storage/v1/b/${encodeURIComponent(bucket)}/o`);
    const host = req.headers.host;
    if (host) location.host = host;
    location.searchParams.set('uploadType', 'resumable');
    location.searchParams.set('name', name);
    location.searchParams.set('upload_id', session.id);
    return {
      status: 200,
      headers: { location: location.toString(), 'x-guploader-uploadid': session.id, 'content-length': 0 },
      body: Buffer.alloc(0),
    };
  }

  private async simpleUpload(bucket: string, url: URL, req: IncomingMessage): Promise<Reply> {
    const name = url.searchParams.get('name');
    if (name) await this.checkPrecondition(bucket, name, url.searchParams.get('ifGenerationMatch'));
    const headers = { ...req.headers };
    delete headers.authorization;
    return this.rewritten(
      await this.opts.firebase.buffered({
        method: 'POST',
        path: `${url.pathname}${url.search}`,
        headers,
        body: req,
      }),
    );
  }

  private session(url: URL): Session {
    const session = this.opts.sessions.get(url.searchParams.get('upload_id') ?? '');
    if (!session || session.cancelled) return fail(404, 'notFound', 'No such upload session.');
    return session;
  }

  private async chunk(url: URL, req: IncomingMessage): Promise<Reply> {
    const session = this.session(url);
    if (session.result) {
      await readAll(req);
      return jsonReply(200, session.result);
    }
    // A chunk held by a latency fault whose client has since gone (killed): its body is lost with the
    // connection, as it would be on Cloud Storage, and nothing is persisted.
    if (req.destroyed) fail(499, 'clientClosedRequest', 'Client Closed Request');
    const range = parseContentRange(req.headers['content-range']);
    let complete: boolean;
    if (range.kind === 'query') {
      await readAll(req);
      complete = range.total !== undefined && this.opts.sessions.complete(session, range.total);
    } else
      complete = await this.opts.sessions.write(session, range, req).catch((e: unknown) => {
        // The client went away mid-body: nothing of this request is persisted, and there is no one to tell.
        if (
          req.destroyed ||
          (e as { code?: string }).code === 'ECONNRESET' ||
          (e as Error).message === 'aborted'
        )
          fail(499, 'clientClosedRequest', 'Client Closed Request');
        throw e;
      });
    if (!complete) {
      const headers: Record<string, string | number> = {
        'content-length': 0,
        'x-guploader-uploadid': session.id,
      };
      if (session.persisted > 0) headers.range = `bytes=0-${session.persisted - 1}`;
      return { status: 308, headers, body: Buffer.alloc(0) };
    }
    return this.finish(session, req.headers['x-goog-hash']);
  }

  /** All bytes are in: check what the client said they hash to, the precondition, then make the object. */
  private async finish(session: Session, hashHeader: string | string[] | undefined): Promise<Reply> {
    const sums = await this.opts.sessions.hashes(session);
    for (const part of [hashHeader ?? []].flat().join(',').split(',')) {
      const m = /^\s*(crc32c|md5)=(\S+)\s*$/.exec(part);
      if (!m) continue;
      const [kind, given] = [m[1] as 'crc32c' | 'md5', m[2]!];
      const calculated = kind === 'md5' ? sums.md5 : sums.crc32c;
      if (given !== calculated) {
        const what = kind === 'md5' ? 'MD5' : 'CRC32C';
        fail(
          400,
          'invalid',
          `Provided ${what} hash "${given}" doesn't match calculated ${what} hash "${calculated}".`,
        );
      }
    }
    await this.checkPrecondition(session.bucket, session.name, session.ifGenerationMatch);
    const start = await this.opts.firebase.buffered({
      method: 'POST',
      path: `/upload/storage/v1/b/${encodeURIComponent(session.bucket)}/o?uploadType=resumable&name=${encodeURIComponent(session.name)}`,
      headers: { 'content-type': 'application/json' },
      body: Buffer.from(JSON.stringify(session.resource)),
    });
    const location = start.headers.location;
    if (start.status !== 200 || typeof location !== 'string')
      fail(500, 'backendError', `emulator: Firebase refused the upload of ${session.name} (${start.status})`);
    const target = new URL(location);
    const made = await this.opts.firebase.buffered({
      method: 'PUT',
      path: `${target.pathname}${target.search}`,
      headers: { 'content-type': 'application/octet-stream', 'content-length': String(session.persisted) },
      body: this.opts.sessions.read(session),
    });
    if (made.status !== 200)
      fail(
        500,
        'backendError',
        `emulator: Firebase answered ${made.status} to the upload of ${session.name}`,
      );
    const reply = this.rewritten(made);
    session.result = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    this.opts.sessions.release(session);
    return reply;
  }
}
