import { hostname } from 'node:os';
import type Database from 'better-sqlite3';
import { PlumeError } from '../../shared/errors.js';
import type { Logger } from '../../shared/log.js';
import { openStateDatabase } from './sqlite-journal.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS release_locks (
  key TEXT PRIMARY KEY,
  host TEXT NOT NULL,
  pid INTEGER NOT NULL,
  command TEXT NOT NULL,
  started_at TEXT NOT NULL,
  heartbeat_at TEXT NOT NULL,
  expires_at TEXT NOT NULL
);
`;

/** Who holds a lock: the machine, the process, what it runs and since when. */
export interface LockHolder {
  key: string;
  host: string;
  pid: number;
  command: string;
  startedAt: string;
  heartbeatAt: string;
  expiresAt: string;
}

interface LockRow {
  key: string;
  host: string;
  pid: number;
  command: string;
  started_at: string;
  heartbeat_at: string;
  expires_at: string;
}

export interface HeldLock {
  readonly key: string;
  /** Give the lock back (idempotent; also done by `close` and when the process exits). */
  release(): void;
}

export interface ReleaseLocksOptions {
  /** A lock lapses this long after its holder's last heartbeat; the holder renews it every third. */
  ttlMs: number;
  log: Logger;
  /** For tests of another machine's lock: this process's identity. */
  host?: string;
  pid?: number;
  now?: () => number;
}

/** Whether a process of this machine is alive (EPERM: alive, someone else's). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Locks in the state database that keep two runs of the same release (or two prunes of the same channel)
 * apart: one row per key naming its holder (host, pid, command, start), renewed by a heartbeat every third
 * of `ttlMs`. A second run refuses at once with one line naming the holder. A lock is stale, and taken over
 * with a WARN line, when its holder is a process of this machine that no longer exists (kill -9), or when
 * its heartbeat is older than `ttlMs` (a holder on another machine sharing the file, or a reused pid).
 */
export class ReleaseLocks {
  private readonly db: Database.Database;
  private readonly host: string;
  private readonly pid: number;
  private readonly now: () => number;
  private readonly held = new Map<string, () => void>();
  private readonly onExit = () => this.close();

  constructor(
    path: string,
    private readonly opts: ReleaseLocksOptions,
  ) {
    this.db = openStateDatabase(path);
    this.db.exec(SCHEMA);
    this.host = opts.host ?? hostname();
    this.pid = opts.pid ?? process.pid;
    this.now = opts.now ?? Date.now;
    // A second SIGINT exits at once (process.exit): the rows still go, synchronously, on the way out.
    process.on('exit', this.onExit);
  }

  /** The holder of `key`'s lock, if any (stale or not). */
  holder(key: string): LockHolder | undefined {
    const row = this.db.prepare('SELECT * FROM release_locks WHERE key = ?').get(key) as LockRow | undefined;
    return row && toHolder(row);
  }

  /** Why a holder's lock no longer counts, or undefined while it does. */
  private stale(h: LockHolder): string | undefined {
    if (h.host === this.host && h.pid !== this.pid && !alive(h.pid))
      return `process ${h.pid} no longer exists`;
    if (Date.parse(h.expiresAt) <= this.now())
      return `its last heartbeat was at ${h.heartbeatAt}, more than ${this.opts.ttlMs / 1000} s ago`;
    return undefined;
  }

  /**
   * Take `key`'s lock for `command` (e.g. `plume release`), or throw the line a person reads. `what` names
   * the work in that line (`release KEY`).
   */
  acquire(key: string, command: string, what = key): HeldLock {
    const take = this.db.transaction((): { taken?: LockHolder; busy?: LockHolder } => {
      const current = this.holder(key);
      if (current && current.host === this.host && current.pid === this.pid) return { busy: current }; // this process already runs it: a second run in one process is a bug
      const reason = current && this.stale(current);
      if (current && !reason) return { busy: current };
      const now = this.now();
      this.db
        .prepare(
          `INSERT INTO release_locks (key, host, pid, command, started_at, heartbeat_at, expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (key) DO UPDATE SET host = excluded.host, pid = excluded.pid, command = excluded.command,
             started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at`,
        )
        .run(
          key,
          this.host,
          this.pid,
          command,
          new Date(now).toISOString(),
          new Date(now).toISOString(),
          new Date(now + this.opts.ttlMs).toISOString(),
        );
      if (current && reason) {
        this.opts.log.warn(
          { key, holder: `${current.host}:${current.pid}`, reason },
          `taking over the lock of ${what} from ${current.host} pid ${current.pid} (${current.command}): ${reason}`,
        );
      }
      return {};
    });
    const { busy } = take.immediate();
    if (busy)
      throw new PlumeError(
        'busy',
        `${what} is already running: ${busy.command} on ${busy.host}, pid ${busy.pid}, since ${busy.startedAt}`,
        `wait for it to end and run again (a holder that was killed frees it at once on this machine, otherwise ${this.opts.ttlMs / 1000} s after its last heartbeat)`,
      );
    const beat = setInterval(() => {
      try {
        const now = this.now();
        const renewed = this.db
          .prepare(
            'UPDATE release_locks SET heartbeat_at = ?, expires_at = ? WHERE key = ? AND host = ? AND pid = ?',
          )
          .run(
            new Date(now).toISOString(),
            new Date(now + this.opts.ttlMs).toISOString(),
            key,
            this.host,
            this.pid,
          );
        // Our heartbeats lapsed (the process was stopped, or the database unwritable) and another run took
        // the lock: say so, once per beat, rather than go on as if it were ours.
        if (renewed.changes === 0)
          this.opts.log.warn({ key }, `the lock of ${what} was taken over by another run`);
      } catch (err) {
        this.opts.log.warn({ key, err: (err as Error).message }, 'cannot renew the release lock');
      }
    }, this.opts.ttlMs / 3);
    beat.unref();
    const release = () => {
      if (!this.held.delete(key)) return;
      clearInterval(beat);
      try {
        this.db
          .prepare('DELETE FROM release_locks WHERE key = ? AND host = ? AND pid = ?')
          .run(key, this.host, this.pid);
      } catch (err) {
        this.opts.log.warn({ key, err: (err as Error).message }, 'cannot release the release lock');
      }
    };
    this.held.set(key, release);
    return { key, release };
  }

  /** Give back every lock this process holds and close the database. */
  close(): void {
    process.off('exit', this.onExit);
    for (const release of [...this.held.values()]) release();
    if (this.db.open) this.db.close();
  }
}

function toHolder(row: LockRow): LockHolder {
  return {
    key: row.key,
    host: row.host,
    pid: row.pid,
    command: row.command,
    startedAt: row.started_at,
    heartbeatAt: row.heartbeat_at,
    expiresAt: row.expires_at,
  };
}
