import type { DeleteOutcome, StreamSelector } from '../../plume/providers/types.js';
import type { PruneAction, PruneActionState, PruneJournal } from '../../plume/state/prune-journal.js';
import { actionId } from '../../plume/state/prune-journal.js';
import { imagePruned } from '../messages.js';
import type { Db } from './db.js';
import type { JobStore } from './job-store.js';

/** A stream joystick prunes: after each release of it, and every `prune_interval_hours`. */
export interface StreamRow {
  stream: string;
  selector: StreamSelector;
  dueAt: number;
  lastRunAt?: number;
  error?: string;
  /** Public images after the last prune, by provider. */
  publicImages: Record<string, number>;
}

function toStream(r: Record<string, unknown>): StreamRow {
  return {
    stream: r.stream as string,
    selector: JSON.parse(r.selector as string) as StreamSelector,
    dueAt: Number(r.due_at),
    ...(r.last_run_at !== null && r.last_run_at !== undefined ? { lastRunAt: Number(r.last_run_at) } : {}),
    ...(r.error ? { error: r.error as string } : {}),
    publicImages: r.public_images ? (JSON.parse(r.public_images as string) as Record<string, number>) : {},
  };
}

/** The key of a stream row: the selector as `SYSTEM/CHANNEL/ARCH[/IMAGE-TYPE]`. */
export function streamRowKey(s: StreamSelector): string {
  return [s.system, s.channel, s.arch ?? '*', ...(s.imageType ? [s.imageType] : [])].join('/');
}

/**
 * joystick's part of the image lifecycle in its database: which streams are due for pruning (claimed under
 * a lease, so one replica prunes a stream at a time), and the prune journal, whose `done` stores the
 * action's announcement in the same transaction: an image is announced once, and only once recorded done.
 */
export class LifecycleStore implements PruneJournal {
  private readonly db: Db;

  constructor(store: JobStore) {
    this.db = store.db;
  }

  /** Make a stream due at `at` (now, after a release), creating it; an earlier due time is kept. */
  async markDue(selector: StreamSelector, at: number, now = Date.now()): Promise<void> {
    await this.db.query(
      `INSERT INTO lifecycle_streams (stream, selector, due_at, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (stream) DO UPDATE SET due_at = CASE WHEN lifecycle_streams.due_at < excluded.due_at
         THEN lifecycle_streams.due_at ELSE excluded.due_at END, updated_at = excluded.updated_at`,
      [streamRowKey(selector), JSON.stringify(selector), at, now],
    );
  }

  /** Take the stream most overdue whose lease is free or expired. */
  async claim(owner: string, leaseMs: number, now = Date.now()): Promise<StreamRow | undefined> {
    return this.db.tx(async (tx) => {
      const [row] = await tx.query(
        `SELECT stream FROM lifecycle_streams WHERE due_at <= ? AND (lease_until IS NULL OR lease_until < ?)
         ORDER BY due_at, stream LIMIT 1 ${tx.skipLocked}`,
        [now, now],
      );
      if (!row) return undefined;
      const [claimed] = await tx.query(
        `UPDATE lifecycle_streams SET lease_owner = ?, lease_until = ?, updated_at = ? WHERE stream = ? RETURNING *`,
        [owner, now + leaseMs, now, row.stream as string],
      );
      return claimed ? toStream(claimed) : undefined;
    });
  }

  /** Record a prune's end and when the stream is next due; a release since the claim keeps it due. */
  async finish(
    stream: string,
    owner: string,
    outcome: { nextDueAt: number; publicImages?: Record<string, number>; error?: string },
    claimedAt: number,
    now = Date.now(),
  ): Promise<void> {
    await this.db.query(
      `UPDATE lifecycle_streams SET lease_owner = NULL, lease_until = NULL, last_run_at = ?, error = ?,
         public_images = COALESCE(?, public_images),
         due_at = CASE WHEN updated_at > ? AND due_at <= ? THEN due_at ELSE ? END, updated_at = ?
       WHERE stream = ? AND lease_owner = ?`,
      [
        now,
        outcome.error ?? null,
        outcome.publicImages ? JSON.stringify(outcome.publicImages) : null,
        claimedAt,
        now,
        outcome.nextDueAt,
        now,
        stream,
        owner,
      ],
    );
  }

  /**
   * Public images per provider, channel and arch, summed over the streams' last prunes (image types
   * added up): the metric and the status page's table.
   */
  async publicImages(): Promise<{ provider: string; channel: string; arch: string; images: number }[]> {
    const sums = new Map<string, { provider: string; channel: string; arch: string; images: number }>();
    for (const row of await this.streams())
      for (const [provider, n] of Object.entries(row.publicImages)) {
        const arch = row.selector.arch ?? '*';
        const key = `${provider} ${row.selector.channel} ${arch}`;
        const s = sums.get(key) ?? { provider, channel: row.selector.channel, arch, images: 0 };
        s.images += n;
        sums.set(key, s);
      }
    return [...sums.values()].sort(
      (a, b) =>
        a.provider.localeCompare(b.provider) ||
        a.channel.localeCompare(b.channel) ||
        a.arch.localeCompare(b.arch),
    );
  }

  async streams(): Promise<StreamRow[]> {
    const rows = await this.db.query(`SELECT * FROM lifecycle_streams ORDER BY stream`);
    return rows.map(toStream);
  }

  // ---- PruneJournal ---------------------------------------------------------------------------------

  async start(action: PruneAction): Promise<void> {
    const now = Date.now();
    await this.db.query(
      `INSERT INTO prune_actions (id, action, status, started_at, updated_at) VALUES (?, ?, 'started', ?, ?)
       ON CONFLICT (id) DO UPDATE SET action = excluded.action, status = 'started', error = NULL, updated_at = excluded.updated_at`,
      [actionId(action), JSON.stringify(action), now, now],
    );
  }

  async done(id: string, outcome?: DeleteOutcome): Promise<void> {
    const now = Date.now();
    await this.db.tx(async (tx) => {
      const [row] = await tx.query(`SELECT action, status FROM prune_actions WHERE id = ?`, [id]);
      if (!row) return;
      await tx.query(
        `UPDATE prune_actions SET status = 'done', outcome = ?, error = NULL, updated_at = ? WHERE id = ?`,
        [outcome ? JSON.stringify(outcome) : null, now, id],
      );
      // An action superseded by a later decision (no outcome, not a deprecation) announces nothing.
      const action = JSON.parse(row.action as string) as PruneAction;
      if (row.status === 'done' || (action.kind === 'delete' && !outcome)) return;
      const item = imagePruned({ ...action, ...(outcome ? { outcome } : {}) });
      await tx.query(
        `INSERT INTO outbox (id, message_id, job_id, compose_id, topic, body, severity, schema_name, created_at, ordinal)
         VALUES (?, ?, NULL, NULL, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING`,
        [
          item.key,
          crypto.randomUUID(),
          item.topic,
          JSON.stringify(item.body),
          item.severity,
          item.schema,
          now,
        ],
      );
    });
  }

  async fail(id: string, error: string): Promise<void> {
    await this.db.query(
      `UPDATE prune_actions SET status = 'failed', error = ?, updated_at = ? WHERE id = ?`,
      [error, Date.now(), id],
    );
  }

  async unfinished(): Promise<PruneActionState[]> {
    const rows = await this.db.query(
      `SELECT * FROM prune_actions WHERE status <> 'done' ORDER BY started_at, id`,
    );
    return rows.map((r) => ({
      ...(JSON.parse(r.action as string) as PruneAction),
      id: r.id as string,
      status: r.status as PruneActionState['status'],
      ...(r.error ? { error: r.error as string } : {}),
      updatedAt: new Date(Number(r.updated_at)).toISOString(),
    }));
  }
}
