/**
 * Shapes shared by the emulator proxy, its in-process handle and its HTTP control API. Everything here is
 * plain JSON so a separate process (demo, joystick child, soak script) sees exactly what a test sees.
 */

/** A selector field: one value or any of several. */
export type OneOrMany = string | readonly string[];

export type FaultKind =
  /** The service's throttling error (EC2 RequestLimitExceeded 503, EBS ThrottlingException 429, ...). */
  | 'throttle'
  /** HTTP 500 in the service's error format. */
  | 'server-error'
  /** Delay by `latencyMs`, then carry on (other rules still apply). */
  | 'latency'
  /** Destroy the client socket before forwarding: the call never happened. */
  | 'drop'
  /** Forward (the call happens), then destroy the client socket instead of answering. */
  | 'drop-after'
  /** The service's authorization error (EC2 UnauthorizedOperation 403, ...). */
  | 'access-denied'
  /** Any error: `code`, `status` (default 400) and `message` from the rule. */
  | 'error'
  /** RegisterImage / CopyImage succeed, but the image ends in state `failed` instead of `available`. */
  | 'image-failed';

export interface FaultRule {
  service?: OneOrMany;
  operation?: OneOrMany;
  region?: OneOrMany;
  kind: FaultKind;
  /** Fire at most this many times (default: unlimited). */
  times?: number;
  /** Let the first N matching calls through untouched. */
  skip?: number;
  /** Fire with this probability (0..1), drawn from the emulator's seeded RNG. */
  probability?: number;
  /** Delay before acting; for `latency` the delay itself (default 1000). */
  latencyMs?: number;
  /** Override the error code (or the StateReason code for `image-failed`). */
  code?: string;
  /** Override the HTTP status of an error. */
  status?: number;
  /** Override the error message (or the StateReason message for `image-failed`). */
  message?: string;
}

export interface FaultStat {
  id: string;
  rule: FaultRule;
  /** Calls that matched the selectors, fired or not. */
  matched: number;
  /** Times the fault was applied. */
  fired: number;
}

export interface CallRecord {
  service: string;
  operation: string;
  region: string;
  /** HTTP status the client saw; 0 when the connection was dropped before any response. */
  status: number;
  /** Epoch milliseconds when the request arrived. */
  at: number;
  durationMs: number;
  /** The fault applied to this call, if any. */
  fault?: FaultKind;
}

export interface SnapshotStats {
  snapshotId: string;
  region: string;
  volumeSize: number;
  blockSize: number;
  /** Accepted PutSnapshotBlock calls (a block put twice counts twice). */
  blocksPut: number;
  /** Bytes of accepted PutSnapshotBlock bodies. */
  bytesPut: number;
  /** Distinct block indexes written, ascending. */
  blockIndexes: number[];
  /** PutSnapshotBlock calls refused by validation. */
  rejectedPuts: number;
  completed: boolean;
  /** What DescribeSnapshots shows now. */
  status: 'pending' | 'completed';
}

export interface EmulatorOptions {
  /** BlockSize StartSnapshot reports (default 524288, what AWS returns). */
  blockSize?: number;
  /** How long registered/copied images and completed snapshots stay `pending` (default 0). */
  pendingMs?: number;
  /** Proxy port (default: a free one). */
  port?: number;
  /** Seed for fault probabilities (default 1). */
  seed?: number;
}

/** What both the in-process handle and the HTTP client offer, so callers can take either. */
export interface EmulatorControl {
  readonly endpoint: string;
  reset(): Promise<void>;
  addFault(rule: FaultRule): string | Promise<string>;
  removeFault(id: string): boolean | Promise<boolean>;
  clearFaults(): void | Promise<void>;
  faultStats(): FaultStat[] | Promise<FaultStat[]>;
  calls(): CallRecord[] | Promise<CallRecord[]>;
  clearCalls(): void | Promise<void>;
  snapshotStats(id: string): SnapshotStats | undefined | Promise<SnapshotStats | undefined>;
  setPendingMs(ms: number, region?: string): void | Promise<void>;
}
