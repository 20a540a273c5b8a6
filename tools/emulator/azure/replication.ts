import { REGIONS } from './config.js';

/** How a region replicates new versions: after this many ms, never, or by failing. */
export type ReplicationMode = 'never' | 'fail' | number;

export type RegionState = 'Replicating' | 'Completed' | 'Failed';

export interface RegionStatus {
  region: string;
  state: RegionState;
  details: string;
  progress: number;
}

/** ARM's normalised region name ("East US" -> "eastus"), or undefined for a region Azure does not have. */
export function regionName(input: string): string | undefined {
  const name = input.replace(/\s+/g, '').toLowerCase();
  return name in REGIONS ? name : undefined;
}

export function displayName(region: string): string {
  return REGIONS[region] ?? region;
}

export function validMode(mode: unknown): mode is ReplicationMode {
  return (
    mode === 'never' || mode === 'fail' || (typeof mode === 'number' && Number.isFinite(mode) && mode >= 0)
  );
}

/**
 * Per-region replication behaviour, read when a state is asked for (not fixed when a version is created),
 * so a test can hold a region back and release it later. A region that has completed or failed stays so.
 */
export class Replication {
  private readonly byRegion = new Map<string, ReplicationMode>();

  constructor(private readonly defaultMs: number) {}

  set(region: string, mode: ReplicationMode): void {
    const name = regionName(region);
    if (!name) throw new Error(`unknown Azure region ${region}`);
    if (!validMode(mode))
      throw new Error("replication mode must be 'never', 'fail' or a non-negative number of ms");
    this.byRegion.set(name, mode);
  }

  reset(): void {
    this.byRegion.clear();
  }

  /** The state of `region` for a version whose source was ready at `since`; `final` memoises the outcome. */
  status(region: string, since: number, final: Map<string, RegionStatus>, now = Date.now()): RegionStatus {
    const done = final.get(region);
    if (done) return done;
    const mode = this.byRegion.get(region) ?? this.defaultMs;
    const shown = displayName(region);
    if (mode === 'fail') {
      const failed: RegionStatus = {
        region: shown,
        state: 'Failed',
        details: `Replication to region '${shown}' failed.`,
        progress: 0,
      };
      final.set(region, failed);
      return failed;
    }
    if (mode === 'never') return { region: shown, state: 'Replicating', details: '', progress: 0 };
    const elapsed = now - since;
    if (elapsed >= mode) {
      const completed: RegionStatus = { region: shown, state: 'Completed', details: '', progress: 100 };
      final.set(region, completed);
      return completed;
    }
    return { region: shown, state: 'Replicating', details: '', progress: Math.floor((elapsed * 100) / mode) };
  }
}
