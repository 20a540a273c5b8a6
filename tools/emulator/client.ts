import type { CallRecord, EmulatorControl, FaultRule, FaultStat, SnapshotStats } from './types.js';

/**
 * Drives any emulator running in another process through the common part of its /__emulator/ control API
 * (control.ts): faults, call log, reset.
 */
export class ControlClient {
  readonly endpoint: string;

  /** `endpoint`: the HTTP front that serves /__emulator/ (the AWS proxy, the Azure blob proxy). */
  constructor(endpoint: string) {
    this.endpoint = endpoint.replace(/\/+$/, '');
  }

  protected async call<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await fetch(`${this.endpoint}/__emulator/${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const value = (await res.json()) as T & { error?: string };
    if (!res.ok) throw new Error(`emulator ${method} ${path}: ${value.error ?? `HTTP ${res.status}`}`);
    return value;
  }

  async health(): Promise<boolean> {
    return (await this.call<{ ok: boolean }>('GET', 'health')).ok;
  }

  async reset(): Promise<void> {
    await this.call('POST', 'reset');
  }

  async addFault(rule: FaultRule): Promise<string> {
    return (await this.call<{ id: string }>('POST', 'faults', rule)).id;
  }

  async removeFault(id: string): Promise<boolean> {
    return (await this.call<{ removed: boolean }>('DELETE', `faults/${encodeURIComponent(id)}`)).removed;
  }

  async clearFaults(): Promise<void> {
    await this.call('DELETE', 'faults');
  }

  faultStats(): Promise<FaultStat[]> {
    return this.call('GET', 'faults');
  }

  calls(): Promise<CallRecord[]> {
    return this.call('GET', 'calls');
  }

  async clearCalls(): Promise<void> {
    await this.call('DELETE', 'calls');
  }
}

/**
 * Drives the AWS emulator running in another process through its /__emulator/ control API. Same operations
 * as the in-process handle, all async.
 */
export class EmulatorClient extends ControlClient implements EmulatorControl {
  async snapshotStats(id: string): Promise<SnapshotStats | undefined> {
    const res = await fetch(`${this.endpoint}/__emulator/snapshots/${encodeURIComponent(id)}`);
    if (res.status === 404) {
      await res.arrayBuffer();
      return undefined;
    }
    if (!res.ok) throw new Error(`emulator GET snapshots/${id}: HTTP ${res.status}`);
    return (await res.json()) as SnapshotStats;
  }

  async setPendingMs(ms: number, region?: string): Promise<void> {
    await this.call('POST', 'pending', region === undefined ? { ms } : { ms, region });
  }
}
