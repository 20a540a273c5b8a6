import type { CallRecord } from './types.js';

/** Keep the call log bounded for long soaks; tests clear it far more often than this. */
const MAX_CALLS = 500_000;

/** Every call an emulator front answered (or dropped), oldest first. */
export class CallLog {
  private log: CallRecord[] = [];

  record(entry: CallRecord): void {
    this.log.push(entry);
    if (this.log.length > MAX_CALLS) this.log.splice(0, this.log.length - MAX_CALLS);
  }

  list(): CallRecord[] {
    return this.log.slice();
  }

  clear(): void {
    this.log = [];
  }
}
