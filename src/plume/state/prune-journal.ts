import type Database from 'better-sqlite3';
import { openStateDatabase } from './sqlite-journal.js';
import type { DeleteOutcome, OwnedImage } from '../providers/types.js';

/** One change a prune makes to one image, written down before it is made. */
export interface PruneAction {
  kind: 'deprecate' | 'delete';
  image: OwnedImage;
  reason: string;
  /** Deprecation time asked for (ISO). */
  at?: string;
}

export interface PruneActionState extends PruneAction {
  id: string;
  status: 'started' | 'done' | 'failed';
  outcome?: DeleteOutcome;
  error?: string;
  updatedAt: string;
}

export function actionId(a: Pick<PruneAction, 'kind' | 'image'>): string {
  return `${a.kind}:${a.image.provider}:${a.image.location}:${a.image.id}`;
}

/**
 * Where a prune writes what it is about to do. The cloud is the truth for what exists; the journal is what
 * lets an interrupted delete finish: an image deregistered by a killed prune no longer shows in any listing,
 * so only the journal still knows its snapshot. Every action is recorded `started` before the cloud is
 * touched and `done` after, and a prune first finishes what is not done.
 */
export interface PruneJournal {
  start(action: PruneAction): void | Promise<void>;
  /** The action is done; joystick also stores its announcement here, in the same transaction. */
  done(id: string, outcome?: DeleteOutcome): void | Promise<void>;
  fail(id: string, error: string): void | Promise<void>;
  /** Actions started and not done, oldest first (a run killed mid-way, or a failure to retry). */
  unfinished(): PruneActionState[] | Promise<PruneActionState[]>;
}

export class MemoryPruneJournal implements PruneJournal {
  private readonly actions = new Map<string, PruneActionState>();
  start(action: PruneAction): void {
    const id = actionId(action);
    this.actions.set(id, { ...action, id, status: 'started', updatedAt: new Date().toISOString() });
  }
  done(id: string, outcome?: DeleteOutcome): void {
    const a = this.actions.get(id);
    if (a)
      Object.assign(a, { status: 'done', outcome, error: undefined, updatedAt: new Date().toISOString() });
  }
  fail(id: string, error: string): void {
    const a = this.actions.get(id);
    if (a) Object.assign(a, { status: 'failed', error, updatedAt: new Date().toISOString() });
  }
  unfinished(): PruneActionState[] {
    return [...this.actions.values()].filter((a) => a.status !== 'done');
  }
  list(limit = 100): PruneActionState[] {
    return [...this.actions.values()].slice(-limit).reverse();
  }
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS prune_actions (
  id TEXT PRIMARY KEY,
  action TEXT NOT NULL,
  status TEXT NOT NULL,
  outcome TEXT,
  error TEXT,
  started_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS prune_actions_status ON prune_actions(status);
`;

interface Row {
  id: string;
  action: string;
  status: PruneActionState['status'];
  outcome: string | null;
  error: string | null;
  updated_at: string;
}

/** The CLI's prune journal: a table in the state database beside the releases (WAL, synchronous writes). */
export class SqlitePruneJournal implements PruneJournal {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openStateDatabase(path);
    // A `started` row must be on disk before the cloud is touched: that is what a kill -9 leaves to resume.
    this.db.pragma('synchronous = FULL');
    this.db.exec(SCHEMA);
  }

  start(action: PruneAction): void {
    const now = new Date().toISOString();
    this.db
      .prepare(
        `INSERT INTO prune_actions (id, action, status, started_at, updated_at) VALUES (?, ?, 'started', ?, ?)
         ON CONFLICT(id) DO UPDATE SET action = excluded.action, status = 'started', error = NULL, updated_at = excluded.updated_at`,
      )
      .run(actionId(action), JSON.stringify(action), now, now);
  }

  done(id: string, outcome?: DeleteOutcome): void {
    this.db
      .prepare(
        `UPDATE prune_actions SET status = 'done', outcome = ?, error = NULL, updated_at = ? WHERE id = ?`,
      )
      .run(outcome ? JSON.stringify(outcome) : null, new Date().toISOString(), id);
  }

  fail(id: string, error: string): void {
    this.db
      .prepare(`UPDATE prune_actions SET status = 'failed', error = ?, updated_at = ? WHERE id = ?`)
      .run(error, new Date().toISOString(), id);
  }

  unfinished(): PruneActionState[] {
    return (
      this.db
        .prepare(`SELECT * FROM prune_actions WHERE status != 'done' ORDER BY started_at, id`)
        .all() as Row[]
    ).map(hydrate);
  }

  list(limit = 100): PruneActionState[] {
    return (
      this.db.prepare('SELECT * FROM prune_actions ORDER BY updated_at DESC LIMIT ?').all(limit) as Row[]
    ).map(hydrate);
  }

  close(): void {
    this.db.close();
  }
}

function hydrate(r: Row): PruneActionState {
  return {
    ...(JSON.parse(r.action) as PruneAction),
    id: r.id,
    status: r.status,
    ...(r.outcome ? { outcome: JSON.parse(r.outcome) as DeleteOutcome } : {}),
    ...(r.error ? { error: r.error } : {}),
    updatedAt: r.updated_at,
  };
}
