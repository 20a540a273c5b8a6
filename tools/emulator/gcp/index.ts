import type { IncomingMessage, ServerResponse } from 'node:http';
import { CallLog } from '../calls.js';
import type { ChildServer } from '../child-server.js';
import { handleControl, type ControlTarget, type ExtraRoutes } from '../control.js';
import { FaultEngine } from '../faults.js';
import type { CallRecord, FaultRule, FaultStat } from '../types.js';
import { HttpUpstream } from '../upstream.js';
import { Buckets } from './buckets.js';
import { ComputeApi } from './compute.js';
import { ComputeFront } from './compute-front.js';
import { DEFAULTS } from './config.js';
import { startFirebaseStorage } from './firebase.js';
import { ImageSources } from './image-source.js';
import { Images } from './images.js';
import { TokenIssuer } from './oauth.js';
import { Operations } from './operations.js';
import { ResumableSessions, type UploadStat } from './resumable.js';
import { createServiceAccount } from './service-account.js';
import { StorageProxy } from './storage-proxy.js';
import type { GcpEmulatorOptions, GcpEndpoints } from './types.js';

export type * from './types.js';
export type { UploadStat } from './resumable.js';
export { GcpEmulatorClient } from './client.js';

/** The operation whose result is an image: what `image-failed` rules apply to. */
const IMAGE_OPERATIONS = ['images.insert'];

/** Google's Cloud Storage emulator behind its proxy, the Compute Engine fake and the token endpoint, in this process. */
export interface GcpEmulator extends GcpEndpoints {
  /** Make a bucket in the project (Cloud Storage's multi-region US unless told). */
  createBucket(name: string, location?: string): void;
  /** A valid access token, as the token endpoint would grant the service account (for raw HTTP checks). */
  accessToken(): string;
  addFault(rule: FaultRule): string;
  removeFault(id: string): boolean;
  clearFaults(): void;
  faultStats(): FaultStat[];
  calls(): CallRecord[];
  clearCalls(): void;
  /** Every resumable upload session and the data requests it received (not cleared with the calls). */
  uploads(): UploadStat[];
  /** How long images stay PENDING once their archive was read, from now on. */
  setPendingMs(ms: number): void;
  /** Images, operations, buckets, objects, sessions, rules and call log back to the start. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startGcpEmulator(opts: GcpEmulatorOptions = {}): Promise<GcpEmulator> {
  const project = opts.project ?? DEFAULTS.project;
  const projectNumber = String(100_000_000_000 + Math.floor(Math.random() * 899_999_999_999));
  const stack: { close(): Promise<void> | void }[] = [];
  let computeBase = '';
  const account = createServiceAccount(project, DEFAULTS.serviceAccount);
  stack.push({ close: () => account.remove() });
  try {
    const firebase: ChildServer = await startFirebaseStorage(project);
    stack.push({ close: () => firebase.stop() });
    const engine = new FaultEngine(opts.seed ?? DEFAULTS.seed, IMAGE_OPERATIONS);
    const log = new CallLog();
    const issuer = new TokenIssuer(account, () => `${computeBase}/token`);
    const buckets = new Buckets(projectNumber);
    const sessions = new ResumableSessions();
    stack.push({ close: () => sessions.close() });
    const images = new Images(project);
    const ops = new Operations(project, account.email);
    let pendingMs = opts.pendingMs ?? DEFAULTS.pendingMs;
    const upstream = new HttpUpstream(firebase.port);

    const target: ControlTarget = {
      faults: engine,
      calls: () => log.list(),
      clearCalls: () => log.clear(),
      async reset() {
        for (const b of buckets.list()) await deleteObjects(upstream, b.name);
        buckets.clear();
        sessions.clear();
        images.clear();
        ops.clear();
        engine.reset();
        log.clear();
        pendingMs = opts.pendingMs ?? DEFAULTS.pendingMs;
      },
    };
    const extra: ExtraRoutes = (route, _id, input) => {
      const body = (input ?? {}) as { name?: string; location?: string; ms?: number };
      switch (route) {
        case 'POST buckets':
          buckets.create(String(body.name), body.location ?? DEFAULTS.bucketLocation);
          return [200, { ok: true }];
        case 'POST token':
          return [200, { access_token: issuer.issue() }];
        case 'POST pending':
          pendingMs = Number(body.ms);
          return [200, { ok: true }];
        default:
          return undefined;
      }
    };
    const control = (req: IncomingMessage, res: ServerResponse, url: URL) =>
      handleControl(target, req, res, url, extra);

    const storage = new StorageProxy({
      engine,
      log,
      issuer,
      firebase: upstream,
      buckets,
      sessions,
      project,
      control,
    });
    const storagePort = await storage.listen(opts.storagePort ?? 0);
    stack.push(storage);
    // The Compute fake's own reads of archives: a connection of their own, closed at stop.
    const sourceReads = new HttpUpstream(firebase.port);
    stack.push({ close: () => sourceReads.close() });
    const api = new ComputeApi({
      project,
      projectNumber,
      images,
      ops,
      sources: new ImageSources(sourceReads, buckets),
      buckets,
      pendingMs: () => pendingMs,
      listPageSize: opts.listPageSize ?? DEFAULTS.listPageSize,
    });
    const compute = new ComputeFront({ engine, log, api, issuer, project, control });
    const computePort = await compute.listen(opts.computePort ?? 0);
    stack.push(compute);
    computeBase = `http://127.0.0.1:${computePort}`;
    // The key file names the token endpoint, known only now that the front listens.
    account.setTokenUri(`${computeBase}/token`);

    const endpoints: GcpEndpoints = {
      project,
      keyFilePath: account.keyFilePath,
      clientEmail: account.email,
      endpoints: {
        compute: computeBase,
        storage: `http://127.0.0.1:${storagePort}`,
        computeClient: { apiEndpoint: '127.0.0.1', port: computePort, protocol: 'http', fallback: true },
        token: `${computeBase}/token`,
        firebaseStorage: firebase.endpoint,
      },
      controlEndpoint: computeBase,
    };
    let stopped = false;
    return {
      ...endpoints,
      createBucket: (name, location = DEFAULTS.bucketLocation) => void buckets.create(name, location),
      accessToken: () => issuer.issue(),
      addFault: (rule) => engine.add(rule),
      removeFault: (id) => engine.remove(id),
      clearFaults: () => engine.clear(),
      faultStats: () => engine.stats(),
      calls: () => log.list(),
      clearCalls: () => log.clear(),
      uploads: () => sessions.stats(),
      setPendingMs: (ms) => void (pendingMs = ms),
      reset: () => target.reset(),
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const s of stack.reverse()) await s.close();
      },
    };
  } catch (e) {
    for (const s of stack.reverse()) await Promise.resolve(s.close()).catch(() => undefined);
    throw e;
  }
}

/** Empty a bucket in Firebase (reset): list, then delete each object. */
async function deleteObjects(upstream: HttpUpstream, bucket: string): Promise<void> {
  const list = await upstream.buffered({
    method: 'GET',
    path: `/b/${encodeURIComponent(bucket)}/o`,
    headers: {},
  });
  const items = (JSON.parse(list.body.toString('utf8')) as { items?: { name: string }[] }).items ?? [];
  for (const o of items)
    await upstream.buffered({
      method: 'DELETE',
      path: `/b/${encodeURIComponent(bucket)}/o/${encodeURIComponent(o.name)}`,
      headers: {},
    });
}
