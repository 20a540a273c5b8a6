import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { PlumeError } from '../../shared/errors.js';
import { keepSqlitePrivate } from '../../shared/secret-file.js';
import type { TargetPlan } from '../plan.js';
import type { TargetRecord } from '../record.js';
import type { Journal, ReleaseState, StepName, StepState } from './journal.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS releases (
  key TEXT PRIMARY KEY,
  plan TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL,
  record TEXT,
  error TEXT
);
CREATE TABLE IF NOT EXISTS release_steps (
  key TEXT NOT NULL REFERENCES releases(key) ON DELETE CASCADE,
  step TEXT NOT NULL,
  status TEXT NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT,
  detail TEXT,
  error TEXT,
  PRIMARY KEY (key, step)
);
`;

interface ReleaseRow {
  key: string;
  plan: string;
  status: ReleaseState['status'];
  attempts: number;
  started_at: string;
  updated_at: string;
  record: string | null;
  error: string | null;
}

interface StepRow {
  step: StepName;
  status: StepState['status'];
  started_at: string;
  finished_at: string | null;
  detail: string | null;
  error: string | null;
}

/**
 * The state database at `path` (its folder made private if missing), in WAL mode so `plume status` can
 * read while a release or a prune writes, waiting up to 10 s for another writer. The file is made readable
 * by its owner only: besides the journal it holds resumable upload session URIs, which let whoever reads
 * them write the object (SQLite gives its -wal and -shm files the database file's mode).
 */
export function openStateDatabase(path: string): Database.Database {
  let db: Database.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    db = new Database(path);
  } catch (err) {
    throw new PlumeError(
      'usage',
      `cannot open the state database ${path}: ${(err as Error).message}`,
      'check the [state] path in the config or --state',
    );
  }
  keepSqlitePrivate(path);
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 10000');
  return db;
}

/** The CLI's journal: one SQLite file, WAL mode so `plume status` can read while a release writes. */
export class SqliteJournal implements Journal {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openStateDatabase(path);
    this.db.pragma('foreign_keys = ON');
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  begin(plan: TargetPlan): ReleaseState | undefined {
    const before = this.get(plan.key);
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO releases (key, plan, status, attempts, started_at, updated_at) VALUES (?, ?, 'running', 1, ?, ?)
         ON CONFLICT (key) DO UPDATE SET plan = excluded.plan, status = 'running', attempts = attempts + 1, updated_at = excluded.updated_at, error = NULL`,
      )
      .run(plan.key, JSON.stringify(plan), now, now);
    return before;
  }

  step(
    key: string,
    step: StepName,
    status: StepState['status'],
    extra?: { detail?: unknown; error?: string },
  ): void {
    const now = new Date().toISOString();
    const detail = extra?.detail === undefined ? null : JSON.stringify(extra.detail);
    this.db
      .prepare(
        `INSERT INTO release_steps (key, step, status, started_at, finished_at, detail, error) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (key, step) DO UPDATE SET status = excluded.status,
           started_at = CASE WHEN excluded.status = 'running' THEN excluded.started_at ELSE release_steps.started_at END,
           finished_at = excluded.finished_at, detail = COALESCE(excluded.detail, release_steps.detail), error = excluded.error`,
      )
      .run(key, step, status, now, status === 'running' ? null : now, detail, extra?.error ?? null);
    this.db.prepare('UPDATE releases SET updated_at = ? WHERE key = ?').run(now, key);
  }

  finish(key: string, status: ReleaseState['status'], record?: TargetRecord, error?: string): void {
    this.db
      .prepare(
        'UPDATE releases SET status = ?, record = COALESCE(?, record), error = ?, updated_at = ? WHERE key = ?',
      )
      .run(status, record ? JSON.stringify(record) : null, error ?? null, new Date().toISOString(), key);
  }

  get(key: string): ReleaseState | undefined {
    const row = this.db.prepare('SELECT * FROM releases WHERE key = ?').get(key) as ReleaseRow | undefined;
    return row ? this.hydrate(row) : undefined;
  }

  list(limit = 50): ReleaseState[] {
    const rows = this.db
      .prepare('SELECT * FROM releases ORDER BY updated_at DESC LIMIT ?')
      .all(limit) as ReleaseRow[];
    return rows.map((r) => this.hydrate(r));
  }

  private hydrate(row: ReleaseRow): ReleaseState {
    const steps = (
      this.db
        .prepare(
          'SELECT step, status, started_at, finished_at, detail, error FROM release_steps WHERE key = ?',
        )
        .all(row.key) as StepRow[]
    ).map((s): StepState => ({
      step: s.step,
      status: s.status,
      startedAt: s.started_at,
      ...(s.finished_at ? { finishedAt: s.finished_at } : {}),
      ...(s.detail ? { detail: JSON.parse(s.detail) as unknown } : {}),
      ...(s.error ? { error: s.error } : {}),
    }));
    return {
      key: row.key,
      plan: JSON.parse(row.plan) as TargetPlan,
      status: row.status,
      attempts: row.attempts,
      startedAt: row.started_at,
      updatedAt: row.updated_at,
      steps,
      ...(row.record ? { record: JSON.parse(row.record) as TargetRecord } : {}),
      ...(row.error ? { error: row.error } : {}),
    };
  }
}
