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

const HEAD = ['fault', 'injected', 'outcome', 'lost', 'duplicates'];
const cellsOf = (r: FaultRow) => [
  r.fault,
  String(r.injected),
  r.outcome,
  String(r.lost),
  String(r.duplicates),
];

/** The rows as aligned text, for a terminal. */
export function plainTable(rows: FaultRow[]): string {
  const cells = rows.map(cellsOf);
  const widths = HEAD.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(HEAD), line(widths.map((w) => '-'.repeat(w))), ...cells.map(line)].join('\n');
}

/** The rows as a Markdown table, with the re-sends (copies under an already delivered id) last. */
export function markdownTable(rows: FaultRow[]): string {
  const head = [...HEAD, 're-sent (same id)'];
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => (i === 1 || i >= 3 ? '--:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${[...cellsOf(r), String(r.resent ?? 0)].map(esc).join(' | ')} |`),
  ].join('\n');
}
