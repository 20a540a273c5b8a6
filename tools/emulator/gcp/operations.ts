import { setTimeout as sleep } from 'node:timers/promises';
import { notFound } from './errors.js';
import { resourceId, selfLink, timestamp } from './resources.js';
import { randomBytes } from 'node:crypto';

/** A global operation as Compute Engine answers it (`compute#operation`). */
export type OperationResource = Record<string, unknown> & { name: string; status: string };

interface Entry {
  resource: OperationResource;
  done: Promise<void>;
  finish: () => void;
}

/** Operations remembered (oldest forgotten first): far more than any client polls at once. */
const MAX_OPERATIONS = 50_000;

/**
 * The project's global operations: started PENDING/RUNNING, ended DONE (with `error` when the work failed),
 * and the requestIds that started them, so a retried request gets the first one's operation back.
 */
export class Operations {
  private readonly ops = new Map<string, Entry>();
  private readonly byRequest = new Map<string, string>();

  constructor(
    private readonly project: string,
    private readonly user: string,
  ) {}

  /** The operation a request id already started, if any. */
  forRequest(requestId: string | null): OperationResource | undefined {
    if (!requestId) return undefined;
    const name = this.byRequest.get(requestId);
    return name ? this.ops.get(name)?.resource : undefined;
  }

  start(
    operationType: string,
    target: { path: string; id: string },
    requestId: string | null,
    running = false,
  ): OperationResource {
    const hex = randomBytes(16).toString('hex');
    const name = `operation-${Date.now()}-${hex.slice(0, 13)}-${hex.slice(13, 21)}-${hex.slice(21, 29)}`;
    const now = timestamp();
    const resource: OperationResource = {
      kind: 'compute#operation',
      id: resourceId(),
      name,
      operationType,
      targetLink: selfLink(target.path),
      targetId: target.id,
      status: running ? 'RUNNING' : 'PENDING',
      user: this.user,
      progress: 0,
      insertTime: now,
      startTime: now,
      selfLink: selfLink(`projects/${this.project}/global/operations/${name}`),
    };
    let finish!: () => void;
    const done = new Promise<void>((resolve) => (finish = resolve));
    this.ops.set(name, { resource, done, finish });
    if (requestId) this.byRequest.set(requestId, name);
    if (this.ops.size > MAX_OPERATIONS) {
      const oldest = this.ops.keys().next().value!;
      this.ops.delete(oldest);
    }
    return resource;
  }

  running(op: OperationResource): void {
    if (op.status === 'PENDING') op.status = 'RUNNING';
  }

  /** End the operation, with the error its work failed with (`httpStatus` as GCE reports it). */
  end(op: OperationResource, error?: { code: string; message: string; httpStatus?: number }): void {
    const entry = this.ops.get(op.name);
    op.status = 'DONE';
    op.progress = 100;
    op.endTime = timestamp();
    if (error) {
      op.error = { errors: [{ code: error.code, message: error.message }] };
      op.httpErrorStatusCode = error.httpStatus ?? 400;
      op.httpErrorMessage = (error.httpStatus ?? 400) >= 500 ? 'INTERNAL SERVER ERROR' : 'BAD REQUEST';
    }
    entry?.finish();
  }

  get(name: string): OperationResource {
    return this.ops.get(name)?.resource ?? notFound(`projects/${this.project}/global/operations/${name}`);
  }

  list(): OperationResource[] {
    return [...this.ops.values()].map((e) => e.resource);
  }

  delete(name: string): void {
    if (!this.ops.delete(name)) notFound(`projects/${this.project}/global/operations/${name}`);
  }

  /** globalOperations.wait: the operation once DONE, or as it is after `maxMs`. */
  async wait(name: string, maxMs: number): Promise<OperationResource> {
    const entry = this.ops.get(name);
    if (!entry) return notFound(`projects/${this.project}/global/operations/${name}`);
    const ac = new AbortController();
    await Promise.race([entry.done, sleep(maxMs, undefined, { signal: ac.signal }).catch(() => undefined)]);
    ac.abort();
    return entry.resource;
  }

  clear(): void {
    for (const e of this.ops.values()) e.finish();
    this.ops.clear();
    this.byRequest.clear();
  }
}
