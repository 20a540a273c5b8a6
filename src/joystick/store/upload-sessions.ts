import type {
  UploadSession,
  UploadSessionKey,
  UploadSessionStore,
} from '../../plume/state/upload-sessions.js';
import type { Db } from './db.js';
import type { JobStore } from './job-store.js';

/**
 * The resumable upload sessions of joystick's releases, in its job store: shared by every replica (on
 * PostgreSQL), so a job resumed after a restart or taken over by another replica sends only what the
 * session lacks. The session URI is a bearer capability: this table is the only place it is written, and
 * nothing here logs it.
 */
export class JobUploadSessions implements UploadSessionStore {
  private readonly db: Db;

  constructor(store: Pick<JobStore, 'db'>) {
    this.db = store.db;
  }

  async get(key: UploadSessionKey): Promise<UploadSession | undefined> {
    const [row] = await this.db.query(
      'SELECT uri, source_sha256, source_bytes, created_at FROM upload_sessions WHERE release = ? AND target = ? AND object = ?',
      [key.release, key.target, key.object],
    );
    if (!row) return undefined;
    return {
      uri: row.uri as string,
      sourceSha256: row.source_sha256 as string,
      // BIGINT comes back from PostgreSQL as a string.
      ...(row.source_bytes !== null && row.source_bytes !== undefined
        ? { sourceBytes: Number(row.source_bytes) }
        : {}),
      createdAt: Number(row.created_at),
    };
  }

  async put(key: UploadSessionKey, s: UploadSession): Promise<void> {
    await this.db.query(
      `INSERT INTO upload_sessions (release, target, object, uri, source_sha256, source_bytes, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (release, target, object) DO UPDATE SET uri = excluded.uri, source_sha256 = excluded.source_sha256,
         source_bytes = excluded.source_bytes, created_at = excluded.created_at`,
      [key.release, key.target, key.object, s.uri, s.sourceSha256, s.sourceBytes ?? null, s.createdAt],
    );
  }

  async delete(key: UploadSessionKey): Promise<void> {
    await this.db.query('DELETE FROM upload_sessions WHERE release = ? AND target = ? AND object = ?', [
      key.release,
      key.target,
      key.object,
    ]);
  }
}
