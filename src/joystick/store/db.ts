import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { keepSqlitePrivate } from '../../shared/secret-file.js';
import pg from 'pg';
import { PlumeError } from '../../shared/errors.js';
import { POLICIES, retry } from '../../shared/retry.js';

export type Row = Record<string, unknown>;
export type Param = string | number | null;

/**
 * The little SQL joystick needs, on SQLite (one instance, the default) or PostgreSQL (several replicas).
 * Queries are written once with `?` placeholders; `skipLocked` is the row-lock clause PostgreSQL needs
 * so replicas claim different rows, and nothing on SQLite, where one writer at a time is the rule anyway.
 */
export interface Db {
  readonly dialect: 'sqlite' | 'postgres';
  readonly skipLocked: string;
  query<T = Row>(sql: string, params?: Param[]): Promise<T[]>;
  /** Run `fn` in one transaction; every query inside must go through the `tx` handle. */
  tx<T>(fn: (tx: Pick<Db, 'query' | 'dialect' | 'skipLocked'>) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/** An async mutex: better-sqlite3 is synchronous, but a transaction spans awaits, so nothing may interleave. */
class Mutex {
  private tail: Promise<void> = Promise.resolve();
  async run<T>(fn: () => Promise<T>): Promise<T> {
    const prev = this.tail;
    let release!: () => void;
    this.tail = new Promise<void>((r) => (release = r));
    await prev;
    try {
      return await fn();
    } finally {
      release();
    }
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : '';
}

/** SQLite's "another connection holds the lock" (SQLITE_BUSY, SQLITE_LOCKED and their extended codes). */
function isBusy(err: unknown): boolean {
  return /^SQLITE_(BUSY|LOCKED)/.test(errorCode(err));
}

/**
 * Errors that say the database is unreachable or busy for now, not that something is wrong with the
 * request or the configuration: worth waiting for (SQLite locked by another process; PostgreSQL down,
 * restarting, unreachable, out of connections, or the connection lost mid-query).
 */
export function isTransientDbError(err: unknown): boolean {
  if (err instanceof PlumeError) return false;
  if (isBusy(err)) return true;
  const code = errorCode(err);
  if (/^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENETUNREACH|EPIPE|EAI_AGAIN)$/.test(code))
    return true;
  // SQLSTATE: 08 connection exception, 57P01-57P03 shutdown / cannot connect now, 53300 too many connections
  if (/^(08...|57P0[123]|53300)$/.test(code)) return true;
  const message = err instanceof Error ? err.message : String(err);
  return /Connection terminated|timeout exceeded when trying to connect|connection timeout/i.test(message);
}

export function openSqlite(path: string, opts: { busyTimeoutMs?: number; busyWaitMs?: number } = {}): Db {
  let db: Database.Database;
  try {
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true, mode: 0o750 });
    db = new Database(path);
    // It holds resumable upload session URIs (upload_sessions): as private as plume's state database.
    keepSqlitePrivate(path);
    db.pragma('journal_mode = WAL');
    // better-sqlite3 waits for a lock synchronously, freezing the whole process (health probes, broker
    // heartbeats, uploads in flight) for as long as busy_timeout: keep that short, and wait longer
    // below, asleep between tries, while another process holds the database.
    db.pragma(`busy_timeout = ${opts.busyTimeoutMs ?? 50}`);
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
  } catch (err) {
    throw new PlumeError(
      'usage',
      `cannot open the database ${path}: ${(err as Error).message}`,
      'check consumer_config.database and the directory permissions',
    );
  }
  const mutex = new Mutex();
  const busyWaitMs = opts.busyWaitMs ?? 10_000;
  /** Run `fn` (one statement, BEGIN or COMMIT: each safe to retry when busy) once the lock is free. */
  const whenFree = <T>(fn: () => T): Promise<T> =>
    retry(() => new Promise<T>((resolve) => resolve(fn())), {
      attempts: Infinity,
      policy: POLICIES.sqliteBusy,
      retryable: isBusy,
      deadline: Date.now() + busyWaitMs,
    });
  const run = <T>(sql: string, params: Param[] = []): T[] => {
    const stmt = db.prepare(sql);
    return stmt.reader ? (stmt.all(...params) as T[]) : (stmt.run(...params), [] as T[]);
  };
  const inner = {
    dialect: 'sqlite' as const,
    skipLocked: '',
    query: <T>(sql: string, params?: Param[]) => Promise.resolve(run<T>(sql, params)),
  };
  return {
    dialect: 'sqlite',
    skipLocked: '',
    query: (sql, params) => mutex.run(() => whenFree(() => run(sql, params))),
    tx: (fn) =>
      mutex.run(async () => {
        // IMMEDIATE takes the write lock up front: a claim is a read then a write, and must not race.
        await whenFree(() => db.exec('BEGIN IMMEDIATE'));
        try {
          const result = await fn(inner);
          await whenFree(() => db.exec('COMMIT'));
          return result;
        } catch (err) {
          if (db.inTransaction) db.exec('ROLLBACK');
          throw err;
        }
      }),
    close: () =>
      mutex.run(() => {
        db.close();
        return Promise.resolve();
      }),
  };
}

/** `?` placeholders to PostgreSQL's `$1, $2, ...` (our SQL has no literal question marks). */
function numbered(sql: string): string {
  let n = 0;
  return sql.replace(/\?/g, () => `$${++n}`);
}

export function openPostgres(url: string, opts: { max?: number; statementTimeoutMs?: number } = {}): Db {
  const pool = new pg.Pool({
    connectionString: url,
    max: opts.max ?? 10,
    connectionTimeoutMillis: 10_000,
    statement_timeout: opts.statementTimeoutMs ?? 30_000,
    application_name: 'joystick',
  });
  // A dropped idle connection is not fatal: the pool makes a new one on the next query.
  pool.on('error', () => undefined);
  // BIGINT comes back as a string by default; our values are epoch milliseconds, well within 2^53.
  const types = {
    getTypeParser: (oid: number, format?: string): ((v: string) => unknown) =>
      oid === 20
        ? (v: string) => Number(v)
        : (pg.types.getTypeParser(oid, format as 'text') as (v: string) => unknown),
  };
  const query = async <T>(
    client: pg.Pool | pg.PoolClient,
    sql: string,
    params: Param[] = [],
  ): Promise<T[]> => {
    const res = await client.query({ text: numbered(sql), values: params, types });
    return res.rows as T[];
  };
  return {
    dialect: 'postgres',
    skipLocked: 'FOR UPDATE SKIP LOCKED',
    query: (sql, params) => query(pool, sql, params),
    async tx(fn) {
      const client = await pool.connect();
      // A connection lost while the transaction is open, between its queries, is reported as an 'error'
      // event on the checked-out client, which the pool does not listen to: unheard, it kills the
      // process. Heard here, the transaction fails (its next query does) and the client is discarded.
      let broken: Error | undefined;
      const onError = (err: Error) => (broken = err);
      client.on('error', onError);
      try {
        await client.query('BEGIN');
        const result = await fn({
          dialect: 'postgres',
          skipLocked: 'FOR UPDATE SKIP LOCKED',
          query: (sql, params) => query(client, sql, params),
        });
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK').catch((e: unknown) => (broken ??= e as Error));
        throw err;
      } finally {
        client.off('error', onError);
        client.release(broken);
      }
    },
    close: () => pool.end(),
  };
}

/**
 * SQLAlchemy's URL forms, which Fedora's deployments already use: `sqlite:////abs/path.db` (four slashes),
 * `sqlite:///relative.db`, `sqlite://` (in memory); or a bare path; or `postgresql://...`.
 */
export function openDatabase(url: string): Db {
  if (/^postgres(ql)?:\/\//.test(url)) return openPostgres(url);
  if (url === 'sqlite://') return openSqlite(':memory:');
  if (url.startsWith('sqlite:///')) return openSqlite(url.slice('sqlite:///'.length));
  if (/^[a-z]+:\/\//.test(url))
    throw new PlumeError(
      'usage',
      `unsupported database URL scheme in ${url.replace(/\/\/[^@]*@/, '//***@')}`,
      'use sqlite:////absolute/path.db, sqlite:///relative.db or postgresql://...',
    );
  return openSqlite(url);
}
