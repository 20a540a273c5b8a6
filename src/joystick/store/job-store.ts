import { randomUUID } from 'node:crypto';
import type { ReleaseRequest, ComposeFacts } from '../../plume/systems/types.js';
import { asRecord, type ReleaseRecord } from '../../plume/record.js';
import type { Db, Param } from './db.js';
import { migrate } from './schema.js';

export type ComposeStatus = 'received' | 'planned' | 'ignored' | 'failed';
export type JobState = 'queued' | 'running' | 'complete' | 'partial' | 'failed';

export interface ComposeRow {
  composeId: string;
  status: ComposeStatus;
  event: ComposeFacts;
  messageId?: string;
  channel?: string;
  receivedAt: number;
  updatedAt: number;
  attempts: number;
  error?: string;
  /** How many times a person asked to retry the compose (`joystick retry`); 0 at first. */
  round: number;
  /** While a replica reads the compose's metadata: until when it holds it. */
  leaseUntil?: number;
}

export interface JobProgress {
  step?: string;
  rawBytes?: number;
  totalBytes?: number;
  bytesSent?: number;
  zeroBlocks?: number;
  /** `region/variant` → state. */
  targets?: Record<string, { state: 'ready' | 'published' | 'failed'; id?: string; error?: string }>;
}

export interface JobRow {
  id: string;
  composeId: string;
  request: ReleaseRequest;
  channel: string;
  arch: string;
  imageType?: string;
  state: JobState;
  attempts: number;
  leaseOwner?: string;
  leaseUntil?: number;
  createdAt: number;
  updatedAt: number;
  startedAt?: number;
  finishedAt?: number;
  progress?: JobProgress;
  record?: ReleaseRecord;
  error?: string;
  command?: string;
  /** How many times a person asked to retry the job (`joystick retry`); 0 at first. */
  round: number;
  /** The provider the job publishes to (jobs from before providers were recorded: aws). */
  provider: string;
}

/** A message to publish, kept in the database until the broker confirms it (the outbox pattern). */
export interface OutboxItem {
  /** Deduplication key: the same announcement is stored once, however often it is produced. */
  key: string;
  topic: string;
  body: Record<string, unknown>;
  severity: number;
  schema: string;
}

export interface OutboxRow extends OutboxItem {
  messageId: string;
  jobId?: string;
  composeId?: string;
  createdAt: number;
  attempts: number;
}

export interface NewJob {
  id: string;
  request: ReleaseRequest;
  channel: string;
  arch: string;
  imageType?: string;
  /** The provider the job publishes to (none: aws, as before providers were recorded). */
  provider?: string;
  command: string;
}

type Tx = Pick<Db, 'query' | 'dialect' | 'skipLocked'>;

const json = (v: unknown): string | null => (v === undefined ? null : JSON.stringify(v));
const parse = <T>(v: unknown): T | undefined =>
  typeof v === 'string' && v !== '' ? (JSON.parse(v) as T) : undefined;
const opt = <T>(v: T | null | undefined): T | undefined => (v === null ? undefined : v);

function toCompose(r: Record<string, unknown>): ComposeRow {
  return {
    composeId: r.compose_id as string,
    status: r.status as ComposeStatus,
    event: parse<ComposeFacts>(r.event)!,
    messageId: opt(r.message_id as string | null),
    channel: opt(r.channel as string | null),
    receivedAt: Number(r.received_at),
    updatedAt: Number(r.updated_at),
    attempts: Number(r.attempts),
    error: opt(r.error as string | null),
    round: Number(r.retry_round ?? 0),
    leaseUntil: r.lease_until === null || r.lease_until === undefined ? undefined : Number(r.lease_until),
  };
}

function toJob(r: Record<string, unknown>): JobRow {
  return {
    id: r.id as string,
    composeId: r.compose_id as string,
    request: parse<ReleaseRequest>(r.request)!,
    channel: r.channel as string,
    arch: r.arch as string,
    imageType: opt(r.image_type as string | null),
    state: r.state as JobState,
    attempts: Number(r.attempts),
    leaseOwner: opt(r.lease_owner as string | null),
    leaseUntil: r.lease_until === null ? undefined : Number(r.lease_until),
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    startedAt: r.started_at === null ? undefined : Number(r.started_at),
    finishedAt: r.finished_at === null ? undefined : Number(r.finished_at),
    progress: parse<JobProgress>(r.progress),
    record: asRecord(parse<unknown>(r.record)),
    error: opt(r.error as string | null),
    command: opt(r.command as string | null),
    round: Number(r.retry_round ?? 0),
    provider: (r.provider as string | null | undefined) ?? 'aws',
  };
}

function toOutbox(r: Record<string, unknown>): OutboxRow {
  return {
    key: r.id as string,
    messageId: r.message_id as string,
    jobId: opt(r.job_id as string | null),
    composeId: opt(r.compose_id as string | null),
    topic: r.topic as string,
    body: parse<Record<string, unknown>>(r.body)!,
    severity: Number(r.severity),
    schema: r.schema_name as string,
    createdAt: Number(r.created_at),
    attempts: Number(r.attempts),
  };
}

/**
 * joystick's durable state: composes heard on the bus, one job per image to publish, and the messages to
 * announce. Every piece of work is claimed under a lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL), so
 * replicas sharing one database each take different work, and work whose owner died is taken over once
 * its lease expires.
 */
export class JobStore {
  private constructor(readonly db: Db) {}

  static async open(db: Db): Promise<JobStore> {
    await migrate(db);
    return new JobStore(db);
  }

  close(): Promise<void> {
    return this.db.close();
  }

  async ping(): Promise<void> {
    await this.db.query('SELECT 1 AS ok');
  }

  private async addOutbox(
    tx: Tx,
    items: OutboxItem[],
    ids: { jobId?: string; composeId?: string },
    now: number,
  ): Promise<void> {
    for (const [i, item] of items.entries())
      await tx.query(
        `INSERT INTO outbox (id, message_id, job_id, compose_id, topic, body, severity, schema_name, created_at, ordinal)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
        [
          item.key,
          randomUUID(),
          ids.jobId ?? null,
          ids.composeId ?? null,
          item.topic,
          JSON.stringify(item.body),
          item.severity,
          item.schema,
          now,
          i,
        ],
      );
  }

  /** Record a compose heard on the bus; `known` when it was recorded before (a duplicate message). */
  async recordCompose(
    event: ComposeFacts,
    messageId: string | undefined,
    now = Date.now(),
  ): Promise<'new' | 'known'> {
    const rows = await this.db.query(
      `INSERT INTO composes (compose_id, status, event, message_id, received_at, updated_at)
       VALUES (?, 'received', ?, ?, ?, ?) ON CONFLICT (compose_id) DO NOTHING RETURNING compose_id`,
      [event.id, JSON.stringify(event), messageId ?? null, now, now],
    );
    return rows.length > 0 ? 'new' : 'known';
  }

  /** Take a received compose whose metadata is to be read, under a lease. */
  async claimCompose(owner: string, leaseMs: number, now = Date.now()): Promise<ComposeRow | undefined> {
    return this.db.tx(async (tx) => {
      const [row] = await tx.query(
        `SELECT compose_id FROM composes WHERE status = 'received' AND next_try_at <= ? AND (lease_until IS NULL OR lease_until < ?)
         ORDER BY received_at LIMIT 1 ${tx.skipLocked}`,
        [now, now],
      );
      if (!row) return undefined;
      const [claimed] = await tx.query(
        `UPDATE composes SET lease_owner = ?, lease_until = ?, attempts = attempts + 1, updated_at = ? WHERE compose_id = ? RETURNING *`,
        [owner, now + leaseMs, now, row.compose_id as string],
      );
      return claimed ? toCompose(claimed) : undefined;
    });
  }

  /**
   * Extend the lease on a compose whose metadata is still being read (a slow host must not let another
   * replica take it over meanwhile); false when it is no longer this owner's. `updated_at` is left alone:
   * it says since when the compose has been read.
   */
  async renewComposeLease(
    composeId: string,
    owner: string,
    leaseMs: number,
    now = Date.now(),
  ): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE composes SET lease_until = ? WHERE compose_id = ? AND lease_owner = ? AND status = 'received' RETURNING compose_id`,
      [now + leaseMs, composeId, owner],
    );
    return rows.length > 0;
  }

  /** Store the compose's jobs and announcements in one transaction, and mark it planned. */
  async planCompose(
    composeId: string,
    owner: string,
    channel: string,
    jobs: NewJob[],
    outbox: OutboxItem[],
    now = Date.now(),
  ): Promise<boolean> {
    return this.db.tx(async (tx) => {
      const [mine] = await tx.query(
        `SELECT compose_id FROM composes WHERE compose_id = ? AND lease_owner = ? AND status = 'received'`,
        [composeId, owner],
      );
      if (!mine) return false;
      for (const job of jobs)
        await tx.query(
          `INSERT INTO jobs (id, compose_id, request, channel, arch, image_type, state, created_at, updated_at, command, provider)
           VALUES (?, ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
          [
            job.id,
            composeId,
            JSON.stringify(job.request),
            job.channel,
            job.arch,
            job.imageType ?? null,
            now,
            now,
            job.command,
            job.provider ?? null,
          ],
        );
      await this.addOutbox(tx, outbox, { composeId }, now);
      await tx.query(
        `UPDATE composes SET status = 'planned', channel = ?, lease_owner = NULL, lease_until = NULL, error = NULL, updated_at = ? WHERE compose_id = ?`,
        [channel, now, composeId],
      );
      return true;
    });
  }

  /** A transient failure reading the compose: try again later. */
  async deferCompose(
    composeId: string,
    owner: string,
    error: string,
    nextTryAt: number,
    now = Date.now(),
  ): Promise<void> {
    await this.db.query(
      `UPDATE composes SET lease_owner = NULL, lease_until = NULL, next_try_at = ?, error = ?, updated_at = ? WHERE compose_id = ? AND lease_owner = ?`,
      [nextTryAt, error, now, composeId, owner],
    );
  }

  /** The compose is not ours (`ignored`) or cannot be published (`failed`, with its ERROR announcement). */
  async closeCompose(
    composeId: string,
    owner: string,
    status: 'ignored' | 'failed',
    reason: string,
    channel: string | undefined,
    outbox: OutboxItem[],
    now = Date.now(),
  ): Promise<void> {
    await this.db.tx(async (tx) => {
      await tx.query(
        `UPDATE composes SET status = ?, channel = ?, error = ?, lease_owner = NULL, lease_until = NULL, updated_at = ? WHERE compose_id = ? AND lease_owner = ?`,
        [status, channel ?? null, reason, now, composeId, owner],
      );
      await this.addOutbox(tx, outbox, { composeId }, now);
    });
  }

  /**
   * Take the oldest runnable job: queued and due, or running under an expired lease (its owner died).
   * `exclude` names the jobs the caller is running itself: their lease may have lapsed while the database
   * was unavailable, but they are not abandoned, and must not be started a second time beside themselves.
   */
  async claimJob(
    owner: string,
    leaseMs: number,
    now = Date.now(),
    exclude: readonly string[] = [],
  ): Promise<JobRow | undefined> {
    return this.db.tx(async (tx) => {
      const notMine = exclude.length ? `AND id NOT IN (${exclude.map(() => '?').join(', ')})` : '';
      const [row] = await tx.query(
        `SELECT id FROM jobs WHERE ((state = 'queued' AND next_try_at <= ?) OR (state = 'running' AND lease_until < ?)) ${notMine}
         ORDER BY created_at, id LIMIT 1 ${tx.skipLocked}`,
        [now, now, ...exclude],
      );
      if (!row) return undefined;
      const [claimed] = await tx.query(
        `UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1, started_at = COALESCE(started_at, ?), updated_at = ?
         WHERE id = ? RETURNING *`,
        [owner, now + leaseMs, now, now, row.id as string],
      );
      return claimed ? toJob(claimed) : undefined;
    });
  }

  /** Extend a job's lease; false when another replica has taken it (the caller must stop). */
  async renewJobLease(id: string, owner: string, leaseMs: number, now = Date.now()): Promise<boolean> {
    const rows = await this.db.query(
      `UPDATE jobs SET lease_until = ?, updated_at = ? WHERE id = ? AND lease_owner = ? AND state = 'running' RETURNING id`,
      [now + leaseMs, now, id, owner],
    );
    return rows.length > 0;
  }

  async saveProgress(id: string, owner: string, progress: JobProgress, now = Date.now()): Promise<void> {
    await this.db.query(`UPDATE jobs SET progress = ?, updated_at = ? WHERE id = ? AND lease_owner = ?`, [
      JSON.stringify(progress),
      now,
      id,
      owner,
    ]);
  }

  /** Add announcements for a job (deduplicated by key), e.g. "upload started". */
  async announce(
    jobId: string | undefined,
    composeId: string | undefined,
    outbox: OutboxItem[],
    now = Date.now(),
  ): Promise<void> {
    await this.db.tx((tx) => this.addOutbox(tx, outbox, { jobId, composeId }, now));
  }

  /**
   * End an attempt: the outcome, the record and the announcements it calls for, in one transaction, so a
   * release is never announced without being recorded nor recorded without its announcements. Returns
   * false when the lease was lost (another replica owns the job now; nothing is written).
   */
  async finishJob(
    id: string,
    owner: string,
    outcome: { state: JobState; record?: ReleaseRecord; error?: string; nextTryAt?: number },
    outbox: OutboxItem[],
    now = Date.now(),
  ): Promise<boolean> {
    return this.db.tx(async (tx) => {
      const [job] = await tx.query(
        `SELECT compose_id FROM jobs WHERE id = ? AND lease_owner = ? AND state = 'running'`,
        [id, owner],
      );
      if (!job) return false;
      const final = outcome.state !== 'queued';
      await tx.query(
        `UPDATE jobs SET state = ?, record = COALESCE(?, record), error = ?, next_try_at = ?, lease_owner = NULL, lease_until = NULL,
           finished_at = ?, updated_at = ? WHERE id = ?`,
        [
          outcome.state,
          json(outcome.record),
          outcome.error ?? null,
          outcome.nextTryAt ?? 0,
          final ? now : null,
          now,
          id,
        ],
      );
      await this.addOutbox(tx, outbox, { jobId: id, composeId: job.compose_id as string }, now);
      return true;
    });
  }

  /**
   * Queue a compose's unfinished jobs again (and a failed compose's metadata read), in a new retry round:
   * what they announce from now on (a second failure above all) is news, not a copy of the first round's.
   */
  async retryCompose(composeId: string, now = Date.now()): Promise<{ jobs: number; compose: boolean }> {
    return this.db.tx(async (tx) => {
      const jobs = await tx.query(
        `UPDATE jobs SET state = 'queued', attempts = 0, next_try_at = 0, error = NULL, retry_round = retry_round + 1, updated_at = ?
         WHERE compose_id = ? AND state IN ('failed', 'partial') RETURNING id`,
        [now, composeId],
      );
      const composes = await tx.query(
        `UPDATE composes SET status = 'received', attempts = 0, next_try_at = 0, error = NULL, retry_round = retry_round + 1, updated_at = ?
         WHERE compose_id = ? AND status = 'failed' RETURNING compose_id`,
        [now, composeId],
      );
      return { jobs: jobs.length, compose: composes.length > 0 };
    });
  }

  /** Take unsent messages, oldest first, under a lease so replicas do not send the same one. */
  async claimOutbox(owner: string, leaseMs: number, limit: number, now = Date.now()): Promise<OutboxRow[]> {
    return this.db.tx(async (tx) => {
      const rows = await tx.query(
        `SELECT id FROM outbox WHERE sent_at IS NULL AND (lease_until IS NULL OR lease_until < ?) ORDER BY created_at, ordinal, id LIMIT ? ${tx.skipLocked}`,
        [now, limit],
      );
      const out: OutboxRow[] = [];
      for (const r of rows) {
        const [claimed] = await tx.query(
          `UPDATE outbox SET lease_owner = ?, lease_until = ?, attempts = attempts + 1 WHERE id = ? RETURNING *`,
          [owner, now + leaseMs, r.id as string],
        );
        if (claimed) out.push(toOutbox(claimed));
      }
      return out;
    });
  }

  async markSent(key: string, now = Date.now()): Promise<void> {
    await this.db.query(
      `UPDATE outbox SET sent_at = ?, lease_owner = NULL, lease_until = NULL, error = NULL WHERE id = ?`,
      [now, key],
    );
  }

  /** Give back every unsent message this sender has claimed, for anyone to claim again now. */
  async releaseOutbox(owner: string): Promise<void> {
    await this.db.query(
      `UPDATE outbox SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = ? AND sent_at IS NULL`,
      [owner],
    );
  }

  async markUnsent(key: string, error: string): Promise<void> {
    await this.db.query(`UPDATE outbox SET lease_owner = NULL, lease_until = NULL, error = ? WHERE id = ?`, [
      error,
      key,
    ]);
  }

  async recentComposes(limit = 50): Promise<ComposeRow[]> {
    return (
      await this.db.query(`SELECT * FROM composes ORDER BY received_at DESC, compose_id LIMIT ?`, [limit])
    ).map(toCompose);
  }

  async getCompose(composeId: string): Promise<ComposeRow | undefined> {
    const [row] = await this.db.query(`SELECT * FROM composes WHERE compose_id = ?`, [composeId]);
    return row ? toCompose(row) : undefined;
  }

  async jobs(
    filter: { composeId?: string; composeIds?: string[]; states?: JobState[] } = {},
  ): Promise<JobRow[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.composeId) {
      where.push('compose_id = ?');
      params.push(filter.composeId);
    }
    if (filter.composeIds) {
      if (filter.composeIds.length === 0) return [];
      where.push(`compose_id IN (${filter.composeIds.map(() => '?').join(', ')})`);
      params.push(...filter.composeIds);
    }
    if (filter.states) {
      where.push(`state IN (${filter.states.map(() => '?').join(', ')})`);
      params.push(...filter.states);
    }
    const rows = await this.db.query(
      `SELECT * FROM jobs ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, id`,
      params,
    );
    return rows.map(toJob);
  }

  async outbox(
    filter: { composeId?: string; unsent?: boolean } = {},
  ): Promise<(OutboxRow & { sentAt?: number })[]> {
    const where: string[] = [];
    const params: Param[] = [];
    if (filter.composeId) {
      where.push('compose_id = ?');
      params.push(filter.composeId);
    }
    if (filter.unsent) where.push('sent_at IS NULL');
    const rows = await this.db.query(
      `SELECT * FROM outbox ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY created_at, ordinal, id`,
      params,
    );
    return rows.map((r) => ({ ...toOutbox(r), sentAt: r.sent_at === null ? undefined : Number(r.sent_at) }));
  }

  /** Counts for metrics and readiness: jobs by state, unsent messages. */
  /**
   * What the alerts watch, from the database so that it survives restarts and covers every replica: the
   * last publish per channel (a job that published at least one image), when the oldest running job
   * first started, and since when the oldest due queued job has waited to be claimed. Milliseconds.
   */
  async watch(now = Date.now()): Promise<{
    /** When each channel last published, by provider: channel → provider → epoch ms. */
    lastPublish: Record<string, Record<string, number>>;
    oldestRunning?: number;
    oldestDue?: number;
  }> {
    const published = await this.db.query<{ channel: string; provider: string; t: number }>(
      `SELECT channel, COALESCE(provider, 'aws') AS provider, MAX(finished_at) AS t FROM jobs
       WHERE state IN ('complete', 'partial') GROUP BY channel, COALESCE(provider, 'aws')`,
    );
    const lastPublish: Record<string, Record<string, number>> = {};
    for (const r of published) (lastPublish[r.channel] ??= {})[r.provider] = Number(r.t);
    const [running] = await this.db.query<{ t: number | null }>(
      `SELECT MIN(started_at) AS t FROM jobs WHERE state = 'running'`,
    );
    const [due] = await this.db.query<{ t: number | null }>(
      `SELECT MIN(CASE WHEN next_try_at > 0 THEN next_try_at ELSE created_at END) AS t FROM jobs
       WHERE state = 'queued' AND next_try_at <= ?`,
      [now],
    );
    const num = (v: number | null | undefined) => (v === null || v === undefined ? undefined : Number(v));
    return {
      lastPublish,
      oldestRunning: num(running?.t),
      oldestDue: num(due?.t),
    };
  }

  async counts(): Promise<{
    jobs: Record<string, number>;
    unsent: number;
    composes: Record<string, number>;
  }> {
    const jobs = await this.db.query<{ state: string; n: number }>(
      `SELECT state, COUNT(*) AS n FROM jobs GROUP BY state`,
    );
    const composes = await this.db.query<{ status: string; n: number }>(
      `SELECT status, COUNT(*) AS n FROM composes GROUP BY status`,
    );
    const [unsent] = await this.db.query<{ n: number }>(
      `SELECT COUNT(*) AS n FROM outbox WHERE sent_at IS NULL`,
    );
    return {
      jobs: Object.fromEntries(jobs.map((r) => [r.state, Number(r.n)])),
      composes: Object.fromEntries(composes.map((r) => [r.status, Number(r.n)])),
      unsent: Number(unsent?.n ?? 0),
    };
  }
}
