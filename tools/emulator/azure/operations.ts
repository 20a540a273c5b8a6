import { randomUUID } from 'node:crypto';
import { MAX_OPERATIONS } from './config.js';

export type OperationStatus = 'InProgress' | 'Succeeded' | 'Failed' | 'Canceled';

export interface OperationOutcome {
  status: OperationStatus;
  error?: { code: string; message: string };
  /** What the operation's Location answers once it has succeeded (a share's SharingUpdate). */
  result?: unknown;
}

interface Entry {
  id: string;
  startTime: string;
  poll: () => OperationOutcome;
  final?: OperationOutcome & { endTime: string };
}

/**
 * Long-running operations, as Compute reports them under .../locations/{location}/capsOperations/{id}.
 * Each is a function of the resource it watches, asked when polled; its first final answer is kept.
 */
export class Operations {
  private entries = new Map<string, Entry>();

  start(poll: () => OperationOutcome): string {
    const id = randomUUID();
    this.entries.set(id, { id, startTime: new Date().toISOString(), poll });
    // A long soak starts many: forget the oldest (a Map iterates in insertion order).
    for (const old of this.entries.keys()) {
      if (this.entries.size <= MAX_OPERATIONS) break;
      this.entries.delete(old);
    }
    return id;
  }

  /** A finished operation: answered Succeeded from the first poll. */
  done(result?: unknown): string {
    return this.start(() => ({ status: 'Succeeded', result }));
  }

  get(id: string): (OperationOutcome & { id: string; startTime: string; endTime?: string }) | undefined {
    const entry = this.entries.get(id);
    if (!entry) return undefined;
    if (!entry.final) {
      const outcome = entry.poll();
      if (outcome.status !== 'InProgress') entry.final = { ...outcome, endTime: new Date().toISOString() };
      else return { id, startTime: entry.startTime, ...outcome };
    }
    return { id, startTime: entry.startTime, ...entry.final };
  }

  clear(): void {
    this.entries.clear();
  }
}
