import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgres, openSqlite } from '../../src/joystick/store/db.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { LifecycleStore } from '../../src/joystick/store/lifecycle-store.js';
import type { PruneAction } from '../../src/plume/state/prune-journal.js';
import { scratchDatabase } from '../support/postgres.js';
import { contractErrors } from '../support/schemas.js';

const selector = { system: 'fedora', channel: 'rawhide', arch: 'x86_64', imageType: 'Cloud-Base' };
const action = (kind: 'deprecate' | 'delete', id: string): PruneAction => ({
  kind,
  image: {
    provider: 'aws',
    location: 'us-east-1',
    id,
    name: `Fedora-Cloud-Base-Generic-Rawhide-20260101.n.0.x86_64-hvm-us-east-1-gp3-0`,
    variant: 'gp3',
    release: 'fedora/rawhide/Fedora-Rawhide-20260101.n.0/Cloud-Base/x86_64',
    stream: 'fedora/rawhide/x86_64/Cloud-Base',
    builtAt: Date.parse('2026-01-01'),
    public: true,
    sharedWith: [],
    backing: ['snap-1'],
  },
  reason: 'built 31 days ago (2026-01-01), delete after 30',
  ...(kind === 'deprecate' ? { at: '2026-02-01T00:00:00.000Z' } : {}),
});

let pgDb: Awaited<ReturnType<typeof scratchDatabase>>;
beforeAll(async () => {
  pgDb = await scratchDatabase();
});
afterAll(async () => pgDb?.drop());

describe.each([
  ['SQLite', () => openSqlite(join(mkdtempSync(join(tmpdir(), 'joystick-lifecycle-')), 'j.db'))],
  ['PostgreSQL', () => openPostgres(pgDb.url)],
])('the lifecycle store on %s', (_name, open) => {
  let store: JobStore;
  let life: LifecycleStore;
  beforeAll(async () => {
    store = await JobStore.open(open());
    life = new LifecycleStore(store);
  });
  afterAll(async () => store?.close());

  it('claims a due stream under a lease, once, and schedules it again when done', async () => {
    await life.markDue(selector, 1000, 1000);
    await life.markDue(selector, 5000, 5000); // a later release keeps the earlier due time
    expect(await life.claim('a', 60_000, 500)).toBeUndefined(); // not due yet
    const row = await life.claim('a', 60_000, 2000);
    expect(row).toMatchObject({ stream: 'fedora/rawhide/x86_64/Cloud-Base', selector, dueAt: 1000 });
    expect(await life.claim('b', 60_000, 3000)).toBeUndefined(); // leased by a
    await life.finish(row!.stream, 'a', { nextDueAt: 90_000, publicImages: { aws: 60 } }, 2000, 4000);
    expect(await life.claim('b', 60_000, 10_000)).toBeUndefined();
    expect(await life.publicImages()).toEqual([
      { provider: 'aws', channel: 'rawhide', arch: 'x86_64', images: 60 },
    ]);
    // A release during a prune keeps the stream due: the prune may have listed before it.
    const again = await life.claim('b', 60_000, 90_000);
    expect(again?.stream).toBe(row!.stream);
    await life.markDue(selector, 91_000, 91_000);
    await life.finish(row!.stream, 'b', { nextDueAt: 500_000 }, 90_000, 92_000);
    expect((await life.claim('c', 60_000, 95_000))?.stream).toBe(row!.stream);
  });

  it('journals actions, and announces each once, in the transaction that records it done', async () => {
    await life.start(action('delete', 'ami-1'));
    await life.start(action('deprecate', 'ami-2'));
    expect((await life.unfinished()).map((a) => a.id).sort()).toEqual([
      'delete:aws:us-east-1:ami-1',
      'deprecate:aws:us-east-1:ami-2',
    ]);
    expect(await store.outbox()).toEqual([]);
    await life.done('delete:aws:us-east-1:ami-1', { deleted: ['snap-1'], kept: [] });
    await life.done('delete:aws:us-east-1:ami-1', { deleted: ['snap-1'], kept: [] });
    await life.fail('deprecate:aws:us-east-1:ami-2', 'throttled');
    expect((await life.unfinished()).map((a) => [a.id, a.status, a.error])).toEqual([
      ['deprecate:aws:us-east-1:ami-2', 'failed', 'throttled'],
    ]);
    await life.done('deprecate:aws:us-east-1:ami-2');
    const sent = await store.outbox();
    expect(sent.map((m) => m.topic)).toEqual(['joystick.image.deleted', 'joystick.image.deprecated']);
    for (const m of sent) expect(contractErrors(m.topic, m.body)).toEqual([]);
    expect(sent[0]!.body).toMatchObject({ image_id: 'ami-1', backing_deleted: ['snap-1'], backing_kept: [] });
    // A delete superseded by a later decision (done without an outcome) announces nothing.
    await life.start(action('delete', 'ami-3'));
    await life.done('delete:aws:us-east-1:ami-3');
    expect(await store.outbox()).toHaveLength(2);
  });
});
