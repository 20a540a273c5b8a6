import { startMoto, type MotoServer } from './moto.js';
import { EmulatorProxy } from './proxy.js';
import type {
  CallRecord,
  EmulatorControl,
  EmulatorOptions,
  FaultRule,
  FaultStat,
  SnapshotStats,
} from './types.js';
import { Upstream } from './upstream.js';

export type * from './types.js';
export { EmulatorClient } from './client.js';

/** moto plus the proxy in front of it, in this process. */
export interface Emulator extends EmulatorControl {
  /** The proxy URL: what clients use as `endpoint` and AWS_ENDPOINT_URL is set to. */
  readonly endpoint: string;
  /** moto itself, bypassing every emulation and fault (for debugging). */
  readonly motoEndpoint: string;
  reset(): Promise<void>;
  addFault(rule: FaultRule): string;
  removeFault(id: string): boolean;
  clearFaults(): void;
  faultStats(): FaultStat[];
  calls(): CallRecord[];
  clearCalls(): void;
  snapshotStats(id: string): SnapshotStats | undefined;
  /** How long new and existing images / completed snapshots stay pending; per region when given. */
  setPendingMs(ms: number, region?: string): void;
  stop(): Promise<void>;
}

export async function startEmulator(opts: EmulatorOptions = {}): Promise<Emulator> {
  const moto: MotoServer = await startMoto();
  const proxy = new EmulatorProxy({
    upstream: new Upstream(moto.port),
    blockSize: opts.blockSize ?? 524288,
    pendingMs: opts.pendingMs ?? 0,
    seed: opts.seed ?? 1,
  });
  let port: number;
  try {
    port = await proxy.listen(opts.port ?? 0);
  } catch (e) {
    await moto.stop();
    throw e;
  }
  let stopped = false;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    motoEndpoint: moto.endpoint,
    reset: () => proxy.reset(),
    addFault: (rule) => proxy.faults.add(rule),
    removeFault: (id) => proxy.faults.remove(id),
    clearFaults: () => proxy.faults.clear(),
    faultStats: () => proxy.faults.stats(),
    calls: () => proxy.calls(),
    clearCalls: () => proxy.clearCalls(),
    snapshotStats: (id) => proxy.ebs.stats(id),
    setPendingMs: (ms, region) => proxy.timing.set(ms, region),
    async stop() {
      if (stopped) return;
      stopped = true;
      await proxy.close();
      await moto.stop();
    },
  };
}
