import { appendFileSync } from 'node:fs';

/**
 * One row of the reliability table: a fault, how often it was injected, what became of the work, and
 * the two numbers that must stay 0. Scenario tests and the soak produce them; docs/reliability.md is
 * generated from them (tools/reliability-report.ts), never typed by hand.
 */
export interface FaultRow {
  fault: string;
  injected: number;
  outcome: string;
  /** Announcements an undisturbed run makes that never arrived (by distinct message id). */
  lost: number;
  /** The same announcement under two message ids: what a consumer cannot deduplicate. */
  duplicates: number;
  /** Extra deliveries of a message id already delivered (the documented AMQP window). */
  resent?: number;
}

export interface ScenarioResult extends FaultRow {
  /** The test that produced it: file and name. */
  test: string;
  durationMs: number;
  at: string;
}

/**
 * Scenario tests call this at the end of each scenario; with RELIABILITY_RESULTS set to a file, one JSON
 * line per scenario is appended there (tools/reliability-report.ts reads it). Otherwise nothing happens.
 */
export function recordScenario(result: Omit<ScenarioResult, 'at'>): void {
  const file = process.env.RELIABILITY_RESULTS;
  if (!file) return;
  appendFileSync(file, `${JSON.stringify({ ...result, at: new Date().toISOString() })}\n`);
}
