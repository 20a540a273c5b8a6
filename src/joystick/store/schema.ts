import type { Db } from './db.js';

/**
 * One schema for both databases: TEXT for JSON, BIGINT epoch milliseconds for times, so the same SQL runs
 * on SQLite and PostgreSQL. Versioned so a later release can migrate an existing database.
 */
export const SCHEMA_VERSION = 3;

const STATEMENTS = [
  `CREATE TABLE IF NOT EXISTS joystick_schema (version INTEGER NOT NULL)`,
  `CREATE TABLE IF NOT EXISTS composes (
    compose_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    event TEXT NOT NULL,
    message_id TEXT,
    channel TEXT,
    received_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try_at BIGINT NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    error TEXT,
    retry_round INTEGER NOT NULL DEFAULT 0
  )`,
  `CREATE INDEX IF NOT EXISTS composes_work ON composes (status, next_try_at)`,
  `CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    compose_id TEXT NOT NULL REFERENCES composes (compose_id),
    request TEXT NOT NULL,
    channel TEXT NOT NULL,
    arch TEXT NOT NULL,
    image_type TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    lease_owner TEXT,
    lease_until BIGINT,
    next_try_at BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    started_at BIGINT,
    finished_at BIGINT,
    progress TEXT,
    record TEXT,
    error TEXT,
    command TEXT,
    retry_round INTEGER NOT NULL DEFAULT 0,
    provider TEXT
  )`,
  `CREATE INDEX IF NOT EXISTS jobs_work ON jobs (state, next_try_at)`,
  `CREATE INDEX IF NOT EXISTS jobs_compose ON jobs (compose_id)`,
  `CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    message_id TEXT NOT NULL,
    job_id TEXT,
    compose_id TEXT,
    topic TEXT NOT NULL,
    body TEXT NOT NULL,
    severity INTEGER NOT NULL,
    schema_name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    ordinal INTEGER NOT NULL,
    sent_at BIGINT,
    lease_owner TEXT,
    lease_until BIGINT,
    attempts INTEGER NOT NULL DEFAULT 0,
    error TEXT
  )`,
  `CREATE INDEX IF NOT EXISTS outbox_pending ON outbox (sent_at, created_at)`,
  `CREATE TABLE IF NOT EXISTS prune_actions (
    id TEXT PRIMARY KEY,
    action TEXT NOT NULL,
    status TEXT NOT NULL,
    outcome TEXT,
    error TEXT,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
  )`,
  `CREATE INDEX IF NOT EXISTS prune_actions_status ON prune_actions (status)`,
  `CREATE TABLE IF NOT EXISTS lifecycle_streams (
    stream TEXT PRIMARY KEY,
    selector TEXT NOT NULL,
    due_at BIGINT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    last_run_at BIGINT,
    error TEXT,
    public_images TEXT,
    updated_at BIGINT NOT NULL
  )`,
  // The GCE upload's resumable session (plume's upload_sessions, on every replica's shared database), so
  // that a job another replica takes over, or this one after a restart, sends only the rest. The uri is a
  // bearer capability: read by JobUploadSessions only, never by the status page or `joystick status`.
  `CREATE TABLE IF NOT EXISTS upload_sessions (
    release TEXT NOT NULL,
    target TEXT NOT NULL,
    object TEXT NOT NULL,
    uri TEXT NOT NULL,
    source_sha256 TEXT NOT NULL,
    source_bytes BIGINT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (release, target, object)
  )`,
];

/**
 * What a database of an older version needs to reach each version (fresh databases are created at the
 * current one by STATEMENTS above).
 * 2: the retry round of composes and jobs: an announcement after a retry a person asked for is a new one,
 *    so the round is part of the failure announcements' outbox keys.
 * 3: the provider of each job (jobs are one per compose, image and provider), for the metrics' provider
 *    label; jobs written before it have none and were AWS's.
 * The image lifecycle's tables (prune_actions, lifecycle_streams) and the upload sessions' (upload_sessions)
 * are new tables, not changes: STATEMENTS creates them in a database of any version, so they need no version
 * of their own (and a replica not yet upgraded still runs on a database that has them).
 */
const UPGRADES: [version: number, statements: string[]][] = [
  [
    2,
    [
      'ALTER TABLE composes ADD COLUMN retry_round INTEGER NOT NULL DEFAULT 0',
      'ALTER TABLE jobs ADD COLUMN retry_round INTEGER NOT NULL DEFAULT 0',
    ],
  ],
  [3, ['ALTER TABLE jobs ADD COLUMN provider TEXT']],
];

export async function migrate(db: Db): Promise<void> {
  await db.tx(async (tx) => {
    // Replicas start together: on PostgreSQL, concurrent CREATE TABLE IF NOT EXISTS can still collide,
    // so one migrates while the others wait on this lock (released at commit).
    if (tx.dialect === 'postgres') await tx.query('SELECT pg_advisory_xact_lock(725675) AS locked');
    for (const sql of STATEMENTS) await tx.query(sql);
    const [row] = await tx.query<{ version: number }>('SELECT version FROM joystick_schema');
    if (!row) {
      await tx.query('INSERT INTO joystick_schema (version) VALUES (?)', [SCHEMA_VERSION]);
      return;
    }
    const version = Number(row.version);
    if (version > SCHEMA_VERSION)
      throw new Error(
        `the database has schema version ${row.version}, newer than this joystick (${SCHEMA_VERSION}); upgrade joystick`,
      );
    for (const [to, statements] of UPGRADES)
      if (version < to) for (const sql of statements) await tx.query(sql);
    if (version < SCHEMA_VERSION) await tx.query('UPDATE joystick_schema SET version = ?', [SCHEMA_VERSION]);
  });
}
