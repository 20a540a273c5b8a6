import type Database from 'better-sqlite3';
import { openStateDatabase } from './sqlite-journal.js';

/** Which upload a session belongs to: one object of one target of one release. */
export interface UploadSessionKey {
  /** The target's release key (plan.key). */
  release: string;
  /** The target's name in the release. */
  target: string;
  /** The object (or blob) the session writes, e.g. `gs://bucket/name`. */
  object: string;
}

/** A resumable upload session a run started, for the next run of the same release to finish. */
export interface UploadSession {
  /**
   * The session's URI. A bearer capability (whoever has it can write the object without credentials):
   * kept here only, never logged or printed.
   */
  uri: string;
  /** sha256 of the source the session's bytes come from: a session for another source is not resumed. */
  sourceSha256: string;
  /** Size of that source, when known. */
  sourceBytes?: number;
  /** When the session was started (ms): Cloud Storage forgets a session a week after. */
  createdAt: number;
}

/**
 * Where a provider keeps the resumable upload sessions it started, so that a run killed mid-upload (kill -9,
 * power loss) leaves behind what the next run needs to send only the rest. Async, so that a store can be a
 * database shared by several processes (joystick's job store, JobUploadSessions). Nothing else depends on it: a
 * session that is missing, too old or refused by the cloud just means uploading from the start.
 */
export interface UploadSessionStore {
  get(key: UploadSessionKey): Promise<UploadSession | undefined>;
  put(key: UploadSessionKey, session: UploadSession): Promise<void>;
  delete(key: UploadSessionKey): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS upload_sessions (
  release TEXT NOT NULL,
  target TEXT NOT NULL,
  object TEXT NOT NULL,
  uri TEXT NOT NULL,
  source_sha256 TEXT NOT NULL,
  source_bytes INTEGER,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (release, target, object)
);
`;

/** `fn`'s result as a promise, a throw as a rejection: the synchronous stores behind the async interface. */
function settled<T>(fn: () => T): Promise<T> {
  return new Promise((resolve) => resolve(fn()));
}

interface Row {
  uri: string;
  source_sha256: string;
  source_bytes: number | null;
  created_at: number;
}

/**
 * Upload sessions in the state database (one small key/value table beside the journal), which is private
 * to its user (openStateDatabase): the only place a session URI is written.
 */
export class SqliteUploadSessions implements UploadSessionStore {
  private readonly db: Database.Database;

  constructor(path: string) {
    this.db = openStateDatabase(path);
    this.db.exec(SCHEMA);
  }

  close(): void {
    this.db.close();
  }

  get(key: UploadSessionKey): Promise<UploadSession | undefined> {
    return settled(() => this.read(key));
  }

  put(key: UploadSessionKey, s: UploadSession): Promise<void> {
    return settled(() => this.write(key, s));
  }

  delete(key: UploadSessionKey): Promise<void> {
    return settled(() => this.remove(key));
  }

  private read(key: UploadSessionKey): UploadSession | undefined {
    const row = this.db
      .prepare(
        'SELECT uri, source_sha256, source_bytes, created_at FROM upload_sessions WHERE release = ? AND target = ? AND object = ?',
      )
      .get(key.release, key.target, key.object) as Row | undefined;
    return row
      ? {
          uri: row.uri,
          sourceSha256: row.source_sha256,
          ...(row.source_bytes !== null ? { sourceBytes: row.source_bytes } : {}),
          createdAt: row.created_at,
        }
      : undefined;
  }

  private write(key: UploadSessionKey, s: UploadSession): void {
    this.db
      .prepare(
        `INSERT INTO upload_sessions (release, target, object, uri, source_sha256, source_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (release, target, object) DO UPDATE SET uri = excluded.uri, source_sha256 = excluded.source_sha256,
           source_bytes = excluded.source_bytes, created_at = excluded.created_at`,
      )
      .run(key.release, key.target, key.object, s.uri, s.sourceSha256, s.sourceBytes ?? null, s.createdAt);
  }

  private remove(key: UploadSessionKey): void {
    this.db
      .prepare('DELETE FROM upload_sessions WHERE release = ? AND target = ? AND object = ?')
      .run(key.release, key.target, key.object);
  }
}

/** Sessions kept for the life of the process (tests, callers without a state database). */
export class MemoryUploadSessions implements UploadSessionStore {
  private readonly sessions = new Map<string, UploadSession>();
  private static id(k: UploadSessionKey): string {
    return JSON.stringify([k.release, k.target, k.object]);
  }
  get(key: UploadSessionKey): Promise<UploadSession | undefined> {
    return settled(() => this.sessions.get(MemoryUploadSessions.id(key)));
  }
  put(key: UploadSessionKey, session: UploadSession): Promise<void> {
    return settled(() => void this.sessions.set(MemoryUploadSessions.id(key), { ...session }));
  }
  delete(key: UploadSessionKey): Promise<void> {
    return settled(() => void this.sessions.delete(MemoryUploadSessions.id(key)));
  }
}
