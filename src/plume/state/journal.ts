import type { TargetPlan } from '../plan.js';
import type { TargetRecord } from '../record.js';

export type StepName = 'preflight' | 'upload' | 'register' | 'replicate' | 'publish' | 'verify' | 'record';
export const STEPS: StepName[] = [
  'preflight',
  'upload',
  'register',
  'replicate',
  'publish',
  'verify',
  'record',
];

export interface StepState {
  step: StepName;
  status: 'running' | 'done' | 'failed' | 'skipped';
  startedAt: string;
  finishedAt?: string;
  detail?: unknown;
  error?: string;
}

export interface ReleaseState {
  key: string;
  plan: TargetPlan;
  status: 'running' | 'complete' | 'partial' | 'failed';
  attempts: number;
  startedAt: string;
  updatedAt: string;
  steps: StepState[];
  record?: TargetRecord;
  error?: string;
}

/**
 * Where a release's progress is written down. AWS is the truth (every step finds what exists by name or
 * tag), so the journal is for people and resumption: which step ran, how long it took, what failed, and
 * the final record. The CLI keeps it in SQLite; joystick keeps it beside its jobs.
 */
export interface Journal {
  /** Begin or resume a release; returns the state before this attempt. */
  begin(plan: TargetPlan): ReleaseState | undefined;
  step(
    key: string,
    step: StepName,
    status: StepState['status'],
    extra?: { detail?: unknown; error?: string },
  ): void;
  finish(key: string, status: ReleaseState['status'], record?: TargetRecord, error?: string): void;
  get(key: string): ReleaseState | undefined;
  list(limit?: number): ReleaseState[];
}

/** A journal that keeps nothing, for dry runs and callers that record elsewhere. */
export class MemoryJournal implements Journal {
  private readonly states = new Map<string, ReleaseState>();

  begin(plan: TargetPlan): ReleaseState | undefined {
    const before = this.states.get(plan.key);
    const now = new Date().toISOString();
    this.states.set(plan.key, {
      key: plan.key,
      plan,
      status: 'running',
      attempts: (before?.attempts ?? 0) + 1,
      startedAt: before?.startedAt ?? now,
      updatedAt: now,
      steps: before?.steps ?? [],
    });
    return before && structuredClone(before);
  }

  step(
    key: string,
    step: StepName,
    status: StepState['status'],
    extra?: { detail?: unknown; error?: string },
  ): void {
    const s = this.states.get(key);
    if (!s) return;
    const now = new Date().toISOString();
    const existing = s.steps.find((x) => x.step === step);
    const next: StepState = {
      step,
      status,
      startedAt: status === 'running' || !existing ? now : existing.startedAt,
      ...(status !== 'running' ? { finishedAt: now } : {}),
      ...(extra?.detail !== undefined ? { detail: extra.detail } : {}),
      ...(extra?.error ? { error: extra.error } : {}),
    };
    s.steps = [...s.steps.filter((x) => x.step !== step), next];
    s.updatedAt = now;
  }

  finish(key: string, status: ReleaseState['status'], record?: TargetRecord, error?: string): void {
    const s = this.states.get(key);
    if (!s) return;
    s.status = status;
    s.record = record;
    s.error = error;
    s.updatedAt = new Date().toISOString();
  }

  get(key: string): ReleaseState | undefined {
    return this.states.get(key);
  }

  list(limit = 50): ReleaseState[] {
    return [...this.states.values()].sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).slice(0, limit);
  }
}
