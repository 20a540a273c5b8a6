/**
 * `npm run soak`: a simulated season of Fedora composes through joystick, with faults injected at random,
 * ending with every image published exactly once, every failure announced and nothing left for a human.
 *
 * Real RabbitMQ (127.0.0.1:5672), the AWS emulator, SQLite (default) or PostgreSQL (the machine's server,
 * a scratch database), `joystick run` as child processes (the built CLI: run `npm run build` first, which
 * `npm run soak` does). Time is compressed: a simulated day lasts --day-seconds.
 *
 * Faults: a few percent of AWS calls throttled, failing with 500s, dropped or slowed (emulator probability
 * rules); the broker closing joystick's connections every --broker-drop-seconds (rabbitmqctl
 * close_connection); --kills kill -9 of a joystick process mid-job, each restarted; with PostgreSQL, its
 * backends terminated every --pg-drop-seconds. Prints a summary table and writes JSON (--out), from which
 * tools/reliability-report.ts writes the table in docs/reliability.md.
 *
 *   npm run soak -- [--days 42] [--day-seconds 3] [--image-mib 4] [--db sqlite|postgres] [--replicas 1]
 *                   [--regions us-east-1,us-west-2,eu-west-1] [--volume-types gp3,gp2] [--fault-rate 0.03]
 *                   [--broker-drop-seconds 20] [--kills 2] [--pg-drop-seconds 30] [--seed 1] [--out FILE]
 */
import { randomBytes } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { JobStore, type JobRow } from '../src/joystick/store/job-store.js';
import { openDatabase } from '../src/joystick/store/db.js';
import { awsArchitecture } from '../src/plume/providers/aws/arch.js';
import { prng } from './compose/sample-compose.js';
import { serveDirectory } from './compose/http-server.js';
import { startEmulator, type FaultRule } from './emulator/index.js';
import { closeConnections, deleteQueue, openPungiPublisher, queueHeld } from './reliability/broker.js';
import { readInventory } from './reliability/inventory.js';
import { emulatorEnv, JoystickProcess, REPO, writeJoystickToml } from './reliability/joystick.js';
import { Ledger, type Delivery } from './reliability/ledger.js';
import { plainTable, type FaultRow } from './reliability/results.js';
import { makeImages, planSeason, withHost, writeSeasonCompose } from './reliability/season.js';

const { values: args } = parseArgs({
  options: {
    days: { type: 'string', default: '42' },
    'day-seconds': { type: 'string', default: '3' },
    'image-mib': { type: 'string', default: '4' },
    db: { type: 'string', default: 'sqlite' },
    replicas: { type: 'string', default: '1' },
    regions: { type: 'string', default: 'us-east-1,us-west-2,eu-west-1' },
    'volume-types': { type: 'string', default: 'gp3,gp2' },
    'fault-rate': { type: 'string', default: '0.03' },
    'broker-drop-seconds': { type: 'string', default: '20' },
    kills: { type: 'string', default: '2' },
    'pg-drop-seconds': { type: 'string', default: '30' },
    'max-parallel-jobs': { type: 'string', default: '4' },
    seed: { type: 'string', default: '1' },
    'drain-minutes': { type: 'string', default: '10' },
    out: { type: 'string' },
    keep: { type: 'boolean', default: false },
  },
});

const P = {
  days: Number(args.days),
  daySeconds: Number(args['day-seconds']),
  imageMiB: Number(args['image-mib']),
  db: args.db as 'sqlite' | 'postgres',
  replicas: Number(args.replicas),
  regions: args.regions.split(','),
  volumeTypes: args['volume-types'].split(','),
  faultRate: Number(args['fault-rate']),
  brokerDropSeconds: Number(args['broker-drop-seconds']),
  kills: Number(args.kills),
  pgDropSeconds: args.db === 'postgres' ? Number(args['pg-drop-seconds']) : 0,
  maxParallelJobs: Number(args['max-parallel-jobs']),
  seed: Number(args.seed),
  drainMinutes: Number(args['drain-minutes']),
  arches: ['x86_64', 'aarch64'],
};
if (P.db !== 'sqlite' && P.db !== 'postgres') throw new Error('--db is sqlite or postgres');
if (P.replicas > 1 && P.db !== 'postgres') throw new Error('several replicas need --db postgres');

const PG_ADMIN_URL = process.env.JOYSTICK_TEST_PG ?? 'postgresql://postgres@127.0.0.1:5432/postgres';
const id = randomBytes(4).toString('hex');
const work = join(REPO, '.soak', `run-${new Date().toISOString().replace(/[:.]/g, '-')}`);
const out = args.out ?? join(REPO, '.soak', `soak-${id}.json`);
const prefix = `org.fedoraproject.soak${id}`;
const queue = `joystick_soak_${id}`;
const rand = prng(P.seed * 7 + 3);
const started = Date.now();
const log = (msg: string) =>
  console.log(`[soak ${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${msg}`);

async function pgAdmin<T>(sql: string, params: unknown[] = [], url = PG_ADMIN_URL): Promise<T[]> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return (await c.query(sql, params)).rows as T[];
  } finally {
    await c.end();
  }
}

interface Check {
  name: string;
  ok: boolean;
  detail: string;
}

async function main(): Promise<number> {
  await mkdir(work, { recursive: true });
  log(`work directory ${work}`);
  const season = planSeason({ days: P.days, daySeconds: P.daySeconds, seed: P.seed, arches: P.arches });
  const images = await makeImages(work, P.arches, P.imageMiB * 2 ** 20);
  const composesDir = join(work, 'composes');
  for (const c of season.composes) await writeSeasonCompose(composesDir, c, images);
  const files = await serveDirectory(composesDir);
  const emulator = await startEmulator({ seed: P.seed });
  log(
    `season: ${season.composes.length} composes, ${season.messages.length} messages over ${P.days} days of ${P.daySeconds} s; emulator ${emulator.endpoint}`,
  );

  let database: string;
  let dbName: string | undefined;
  if (P.db === 'postgres') {
    dbName = `joystick_soak_${id}`;
    await pgAdmin(`CREATE DATABASE ${dbName}`);
    database = PG_ADMIN_URL.replace(/\/[^/]*$/, `/${dbName}`);
  } else database = `sqlite:///${join(work, 'joystick.db')}`;

  const names = Array.from({ length: P.replicas }, (_, i) => `joystick-soak-${id}-${i}`);
  const configs: string[] = [];
  for (const [i, name] of names.entries())
    configs.push(
      await writeJoystickToml({
        path: join(work, `joystick-${i}.toml`),
        prefix,
        queue,
        connectionName: name,
        database,
        awsEndpoint: emulator.endpoint,
        regions: P.regions,
        volumeTypes: P.volumeTypes,
        arches: P.arches,
        maxParallelJobs: P.maxParallelJobs,
        leaseSeconds: 10,
        // A slow compose host fails its attempt in seconds, not minutes, and shows as stalled meanwhile.
        extra: 'compose_stall_seconds = 4',
        sourceExtra: 'document_timeout_seconds = 10',
      }),
    );
  const env = emulatorEnv(emulator.endpoint);
  const processes: JoystickProcess[][] = names.map(() => []);
  const startReplica = async (i: number) => {
    const p = new JoystickProcess(configs[i]!, env, {
      logFile: join(work, `joystick-${i}.${processes[i]!.length}.log`),
    });
    processes[i]!.push(p);
    await p.ready(120_000);
    return p;
  };
  const ledger = await Ledger.open(prefix);
  const publisher = await openPungiPublisher(prefix);
  const store = async <T>(fn: (s: JobStore) => Promise<T>): Promise<T> => {
    const s = await JobStore.open(openDatabase(database));
    try {
      return await fn(s);
    } finally {
      await s.close();
    }
  };

  const cleanup = async () => {
    for (const list of processes) for (const p of list) if (p.running) await p.stop(20_000);
    await publisher.close();
    await ledger.close();
    await deleteQueue(queue);
    await files.close();
    await emulator.stop();
    if (dbName && !args.keep) await pgAdmin(`DROP DATABASE IF EXISTS ${dbName} WITH (FORCE)`);
    if (!args.keep) await rm(join(work, 'composes'), { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < P.replicas; i++) await startReplica(i);
    log(`${P.replicas} joystick replica(s) consuming from ${queue} (${P.db})`);

    // A few percent of AWS calls go wrong; the rest are slowed at random a little.
    const rate = P.faultRate;
    const rules: { kind: string; rule: FaultRule }[] = [
      { kind: 'AWS throttling', rule: { service: ['ec2', 'ebs'], kind: 'throttle', probability: rate } },
      { kind: 'AWS server error (500)', rule: { kind: 'server-error', probability: rate * 0.6 } },
      { kind: 'AWS connection dropped', rule: { service: 'ec2', kind: 'drop', probability: rate * 0.15 } },
      { kind: 'AWS added latency', rule: { kind: 'latency', probability: 0.05, latencyMs: 400 } },
    ];
    const ruleIds = rules.map((r) => ({ ...r, id: emulator.addFault(r.rule) }));
    // Slow compose hosts: images.json at 1 byte/s to the first request of each.
    const slow = season.composes.filter((c) => c.slow);
    for (const c of slow)
      files.faults.push({ pathSuffix: `/${c.id}/compose/metadata/images.json`, bytesPerSecond: 1, times: 1 });

    // The season: messages at their times; broker drops, database drops and kills alongside.
    const span = Math.max(...season.messages.map((m) => m.at)) + 1000;
    let publishing = true;
    const injected = {
      brokerDrops: 0,
      pgTerminated: 0,
      kills: [] as { at: number; replica: number; running: string[] }[],
    };
    const sender = (async () => {
      for (const m of season.messages) {
        const wait = started + 5000 + m.at - Date.now();
        if (wait > 0) await sleep(wait);
        await publisher.publish(withHost(m.body, files.url));
      }
      publishing = false;
    })();
    const brokerDrops = (async () => {
      if (!(P.brokerDropSeconds > 0)) return;
      while (publishing) {
        await sleep(P.brokerDropSeconds * 1000 * (0.75 + rand() * 0.5));
        if (!publishing) break;
        for (const name of names) injected.brokerDrops += await closeConnections(name, 'soak: broker drop');
        log(`broker dropped joystick's connections (${injected.brokerDrops} so far)`);
      }
    })();
    const pgDrops = (async () => {
      if (!(P.pgDropSeconds > 0) || !dbName) return;
      while (publishing) {
        await sleep(P.pgDropSeconds * 1000 * (0.75 + rand() * 0.5));
        if (!publishing) break;
        const rows = await pgAdmin<{ ok: boolean }>(
          `SELECT pg_terminate_backend(pid) AS ok FROM pg_stat_activity WHERE datname = $1 AND application_name = 'joystick'`,
          [dbName],
        );
        injected.pgTerminated += rows.filter((r) => r.ok).length;
        log(`terminated ${rows.length} PostgreSQL backend(s) of joystick`);
      }
    })();
    const kills = (async () => {
      for (let k = 0; k < P.kills; k++) {
        const at = started + 5000 + (span * (k + 1)) / (P.kills + 1);
        await sleep(Math.max(0, at - Date.now()));
        // Kill while something is running, as a crash would find it.
        const end = Date.now() + 30_000;
        let running: JobRow[] = [];
        while (Date.now() < end) {
          running = await store((s) => s.jobs({ states: ['running'] }));
          if (running.length > 0) break;
          await sleep(250);
        }
        const replica = Math.floor(rand() * P.replicas);
        const victim = processes[replica]!.at(-1)!;
        await victim.kill9();
        // The jobs it held (leases are owned by host:pid).
        const held = running.filter((j) => j.leaseOwner?.endsWith(`:${victim.pid}`)).map((j) => j.id);
        injected.kills.push({ at: Date.now() - started, replica, running: held });
        log(`kill -9 of replica ${replica} (pid ${victim.pid}) running ${held.length} job(s)`);
        await sleep(1000 + rand() * 2000);
        await startReplica(replica);
        log(`replica ${replica} restarted`);
      }
    })();
    await Promise.all([sender, brokerDrops, pgDrops, kills]);
    log(`season published: ${season.messages.length} messages; draining`);

    // Drained: every compose decided, every job finished, every announcement confirmed.
    const expectRecorded = season.composes.filter((c) => c.expect !== 'ignore').length;
    const drainEnd = Date.now() + P.drainMinutes * 60_000;
    let drained = false;
    let lastCount = -1;
    const crashed = () => processes.flat().filter((p) => !p.running && !p.stopRequested);
    while (Date.now() < drainEnd && crashed().length === 0) {
      const counts = await store((s) => s.counts());
      const recorded = Object.values(counts.composes).reduce((a, b) => a + b, 0);
      const busy = (counts.jobs.queued ?? 0) + (counts.jobs.running ?? 0) + (counts.composes.received ?? 0);
      const held = await queueHeld(queue);
      if (
        recorded === expectRecorded &&
        busy === 0 &&
        counts.unsent === 0 &&
        held.ready + held.unacked === 0
      ) {
        if (ledger.messages().length === lastCount) {
          drained = true;
          break;
        }
        lastCount = ledger.messages().length;
      }
      await sleep(2000);
    }
    log(drained ? 'drained' : 'NOT drained in time');
    const died = crashed();
    const faultStats = emulator.faultStats();
    for (const list of processes) for (const p of list) if (p.running) await p.stop(30_000);

    // ---- the end state ----------------------------------------------------------------------------
    const inventory = await readInventory(emulator.endpoint, P.regions);
    const jobs = await store((s) => s.jobs());
    const composes = await store((s) => s.recentComposes(10_000));
    const unsent = await store((s) => s.outbox({ unsent: true }));
    const checks: Check[] = [];
    const check = (name: string, ok: boolean, detail: string) => checks.push({ name, ok, detail });

    const expectedJobs = season.composes.flatMap((c) =>
      c.expect === 'publish' && !c.refused ? c.arches.map((a) => ({ compose: c, arch: a })) : [],
    );
    // Jobs whose image must be refused (empty, bomb): they fail at their first attempt, announced at ERROR.
    const refusedJobs = season.composes.flatMap((c) =>
      c.expect === 'publish' && c.refused ? c.arches.map((a) => ({ compose: c, arch: a })) : [],
    );
    const refusedIds = new Set(refusedJobs.map(({ compose }) => compose.id));
    const isRefused = (j: JobRow) => refusedIds.has(j.composeId);
    check(
      'no joystick process died on its own',
      died.length === 0,
      died.map((p) => `pid ${p.pid}: ${p.tail(3)}`).join('; ') ||
        `${processes.flat().length} processes, each stopped by the soak`,
    );
    check(
      'drained',
      drained,
      drained ? 'all composes decided, jobs finished, outbox empty, queue empty' : 'timed out',
    );
    check(
      'every expected job, each complete',
      jobs.length === expectedJobs.length + refusedJobs.length &&
        jobs.filter((j) => !isRefused(j)).every((j) => j.state === 'complete'),
      `${jobs.filter((j) => j.state === 'complete').length} complete of ${jobs.length} jobs; ${expectedJobs.length} expected to complete, ${refusedJobs.length} to be refused; states: ${JSON.stringify(countBy(jobs.map((j) => j.state)))}`,
    );
    const refusedBuilds = refusedJobs.map(({ compose, arch }) =>
      compose.files[arch]!.replace(/\.raw\.xz$/, ''),
    );
    const refusedPublished = inventory.images.filter((i) =>
      refusedBuilds.some((b) => i.name.startsWith(`${b}-hvm-`)),
    );
    check(
      'no empty or oversized image published',
      refusedPublished.length === 0 &&
        jobs.filter(isRefused).every((j) => j.state === 'failed' && j.attempts === 1),
      `${refusedJobs.length} job(s) with an empty image or a bomb: ${JSON.stringify(countBy(jobs.filter(isRefused).map((j) => j.state)))}, ${refusedPublished.length} of their images published`,
    );
    // No compose starved: for each slow compose, one received after it had a job running before it did.
    const firstStart = (composeId: string) =>
      Math.min(...jobs.filter((j) => j.composeId === composeId).map((j) => j.startedAt ?? Infinity));
    const recordedAt = new Map(composes.map((c) => [c.composeId, c.receivedAt]));
    const overtaken = slow.filter((c) =>
      composes.some(
        (o) =>
          o.receivedAt > (recordedAt.get(c.id) ?? Infinity) && firstStart(o.composeId) < firstStart(c.id),
      ),
    );
    check(
      'no compose starved behind a slow compose host',
      overtaken.length === slow.length && slow.every((c) => firstStart(c.id) < Infinity),
      `${slow.length} slow compose host(s) (images.json at 1 byte/s); ${overtaken.length} overtaken by a later compose, each published once read`,
    );
    const recordedIds = new Set(composes.map((c) => c.composeId));
    const ignored = season.composes.filter((c) => c.expect === 'ignore');
    check(
      'DOOMED composes and STARTED messages ignored',
      ignored.every((c) => !recordedIds.has(c.id)),
      `${ignored.length} DOOMED composes, none recorded`,
    );
    const broken = season.composes.filter((c) => c.expect === 'broken');
    const failedAnnouncements = ledger.messages((d) => d.topic === 'joystick.compose.failed');
    check(
      'every broken compose failed and announced (ERROR)',
      broken.every(
        (c) =>
          composes.find((x) => x.composeId === c.id)?.status === 'failed' &&
          failedAnnouncements.filter((d) => d.body.compose_id === c.id && d.severity === 40).length === 1,
      ),
      broken.map((c) => `${c.id} (${c.broken})`).join(', '),
    );

    // AWS: each job's images, in every region and volume type, exactly once, public, nothing orphaned.
    const perJob = P.regions.length * P.volumeTypes.length;
    const builds = expectedJobs.map(({ compose, arch }) => compose.files[arch]!.replace(/\.raw\.xz$/, ''));
    const imagesOf = (build: string) => inventory.images.filter((i) => i.name.startsWith(`${build}-hvm-`));
    const wrongCount = builds.filter((b) => imagesOf(b).length !== perJob);
    check(
      'every image published exactly once',
      wrongCount.length === 0 &&
        inventory.images.length === builds.length * perJob &&
        inventory.duplicateNames.length === 0 &&
        inventory.images.every((i) => i.public && i.state === 'available'),
      `${inventory.images.length} AMIs for ${builds.length} builds x ${perJob}; duplicate names ${inventory.duplicateNames.length}; wrong counts: ${wrongCount.slice(0, 5).join(', ') || 'none'}`,
    );
    const expectedSnapshots = builds.length * (1 + (P.regions.length - 1) * P.volumeTypes.length);
    check(
      'no orphaned or extra snapshot',
      inventory.orphans.length === 0 && inventory.snapshots.length === expectedSnapshots,
      `${inventory.snapshots.length} snapshots (${expectedSnapshots} expected), ${inventory.orphans.length} orphans`,
    );

    // The bus: the announcements each job calls for, each under one message id; none lost.
    const expectedKeys = new Set<string>();
    for (const { compose, arch } of expectedJobs) {
      const build = compose.files[arch]!.replace(/\.raw\.xz$/, '');
      // fedimg's copy messages name the AMI's architecture as EC2 does; fedora-image-uploader's, Fedora's.
      const ec2 = awsArchitecture(arch)!;
      for (const vol of P.volumeTypes) {
        expectedKeys.add(`upload started ${build} ${vol}`);
        expectedKeys.add(`upload completed ${build} ${vol}`);
        for (const region of P.regions) {
          expectedKeys.add(`publish ${build} ${region} ${vol}`);
          if (region !== P.regions[0]) expectedKeys.add(`copy ${compose.id} ${ec2} ${region} ${vol}`);
        }
      }
      if (compose.kind !== 'rawhide') expectedKeys.add(`uploader ${compose.id} ${arch}`);
    }
    for (const c of broken) expectedKeys.add(`compose failed ${c.id}`);
    for (const { compose, arch } of refusedJobs) {
      const build = compose.files[arch]!.replace(/\.raw\.xz$/, '');
      for (const vol of P.volumeTypes) {
        expectedKeys.add(`upload started ${build} ${vol}`);
        expectedKeys.add(`upload failed ${build} ${vol}`);
      }
      expectedKeys.add(`release failed ${compose.id} ${arch}`);
    }
    const seenKeys = new Map<string, Set<string>>();
    const unexpected: string[] = [];
    for (const d of ledger.messages()) {
      const key = announcementKey(d);
      if (!expectedKeys.has(key)) unexpected.push(key);
      const ids = seenKeys.get(key) ?? new Set<string>();
      ids.add(d.messageId);
      seenKeys.set(key, ids);
    }
    const lost = [...expectedKeys].filter((k) => !seenKeys.has(k));
    const duplicated = [...seenKeys].filter(([, ids]) => ids.size > 1).map(([k]) => k);
    const contentDuplicates = ledger.duplicates();
    const resent = [...ledger.extraCopies().values()].reduce((a, b) => a + b, 0);
    check(
      'no announcement lost',
      lost.length === 0,
      `${lost.length} lost${lost.length ? `: ${lost.slice(0, 5).join('; ')}` : ''}`,
    );
    check(
      'no announcement under two message ids',
      duplicated.length === 0 && contentDuplicates.length === 0,
      `${duplicated.length + contentDuplicates.length} duplicated${duplicated.length ? `: ${duplicated.slice(0, 5).join('; ')}` : ''}`,
    );
    check(
      'nothing announced but what the season calls for (no failure to page anyone about)',
      unexpected.length === 0,
      `${unexpected.length} unexpected${unexpected.length ? `: ${unexpected.slice(0, 5).join('; ')}` : ''}`,
    );
    const announcedIds = new Map(
      ledger
        .messages((d) => d.topic === 'fedimg.image.publish')
        .map((d) => [`${String(d.body.destination)} ${String((d.body.extra as { id?: unknown }).id)}`, d]),
    );
    check(
      'every AMI announced as published, and only those',
      inventory.images.every((i) => announcedIds.has(`${i.region} ${i.id}`)) &&
        announcedIds.size === inventory.images.length,
      `${announcedIds.size} publish announcements, ${inventory.images.length} AMIs`,
    );
    // fedora-image-uploader's message: one per job, its regions map the AMIs of the first volume type.
    const amiIn = new Set(inventory.images.map((i) => `${i.region} ${i.id}`));
    const uploaderMessages = ledger.messages((d) => d.topic.startsWith('fedora_image_uploader.'));
    const badMaps = uploaderMessages.filter((d) => {
      const regions = (d.body.regions ?? {}) as Record<string, string>;
      return (
        Object.keys(regions).sort().join() !== [...P.regions].sort().join() ||
        !Object.entries(regions).every(([r, ami]) => amiIn.has(`${r} ${ami}`))
      );
    });
    check(
      'every fedora-image-uploader message maps every region to its AMI',
      badMaps.length === 0,
      `${uploaderMessages.length} messages, ${badMaps.length} with a wrong regions map`,
    );
    check('outbox empty', unsent.length === 0, `${unsent.length} unsent`);
    const held = await queueHeld(queue);
    check('queue empty (every message acked)', held.ready + held.unacked === 0, JSON.stringify(held));
    const needsHuman = jobs.filter((j) => j.state !== 'complete' && !isRefused(j)).length + unsent.length;

    // ---- the table ----------------------------------------------------------------------------------
    const allLogs = processes.flat();
    const count = (re: RegExp) => allLogs.reduce((n, p) => n + p.count(re), 0);
    const stat = (kind: string) => {
      const r = ruleIds.find((x) => x.kind === kind)!;
      return faultStats.find((f) => f.id === r.id)?.fired ?? 0;
    };
    const interrupted = new Set(injected.kills.flatMap((k) => k.running));
    const resumed = jobs.filter(
      (j) => interrupted.has(j.id) && j.state === 'complete' && j.attempts >= 2,
    ).length;
    const retriedJobs = jobs.filter((j) => j.attempts > 1).length;
    const totals = { lost: lost.length, duplicates: duplicated.length + contentDuplicates.length, resent };
    const row = (fault: string, n: number, outcome: string): FaultRow => ({
      fault,
      injected: n,
      outcome,
      ...totals,
    });
    const dup = season.composes.reduce((n, c) => n + c.duplicates, 0);
    const faults: FaultRow[] = [
      row(
        'AWS throttling (RequestLimitExceeded, ThrottlingException)',
        stat('AWS throttling'),
        'retried with backoff',
      ),
      row('AWS server error (HTTP 500)', stat('AWS server error (500)'), 'retried'),
      row('AWS connection dropped before the request', stat('AWS connection dropped'), 'retried'),
      row('AWS call slowed by 400 ms', stat('AWS added latency'), 'waited'),
      row(
        "broker closed joystick's connection (rabbitmqctl close_connection)",
        injected.brokerDrops,
        `${count(/lost the AMQP connection; reconnecting/)} connection losses seen, each followed by a reconnection (${count(/^connected to the AMQP broker$/) - allLogs.length})`,
      ),
      row(
        'joystick kill -9 mid-job, then restarted',
        injected.kills.length,
        `${interrupted.size} running job(s) interrupted, ${resumed} resumed to complete`,
      ),
      ...(P.db === 'postgres'
        ? [row('PostgreSQL backends terminated', injected.pgTerminated, 'pool reconnected')]
        : []),
      row(
        'duplicate compose message',
        dup,
        `each compose recorded once (${count(/duplicate message ignored/)} duplicates ignored)`,
      ),
      row(
        'DOOMED compose (then re-run as a respin)',
        season.composes.filter((c) => c.status === 'DOOMED').length,
        'ignored; the respin published',
      ),
      row(
        'FINISHED_INCOMPLETE compose',
        season.composes.filter((c) => c.status === 'FINISHED_INCOMPLETE').length,
        'the images it holds published',
      ),
      row(
        'compose missing its cloud images or its metadata',
        broken.length,
        `compose failed, announced at ERROR (${failedAnnouncements.length})`,
      ),
      row(
        'slow compose host (images.json at 1 byte/s)',
        slow.length,
        `${count(/compose stalled: its metadata is still being read/)} stall(s) logged; ${overtaken.length} overtaken by a later compose; each published once read`,
      ),
      row(
        'empty image (all zeros)',
        refusedJobs.filter(({ compose }) => compose.refused === 'empty').length,
        'refused before anything was registered; job failed, announced at ERROR',
      ),
      row(
        'decompression bomb (17 GiB of zeros in ~3 MB of xz)',
        refusedJobs.filter(({ compose }) => compose.refused === 'bomb').length,
        'refused before StartSnapshot; job failed, announced at ERROR',
      ),
      row(
        'minimal and fedmsg-bridged message shapes',
        season.composes.filter((c) => c.shape !== 'full').length,
        'published like the full shape',
      ),
    ];
    const ok = checks.every((c) => c.ok) && needsHuman === 0;
    const result = {
      tool: 'tools/soak.ts',
      ok,
      startedAt: new Date(started).toISOString(),
      durationSeconds: Math.round((Date.now() - started) / 1000),
      parameters: P,
      season: {
        composes: season.composes.length,
        messages: season.messages.length,
        byKind: countBy(season.composes.map((c) => c.kind)),
        byStatus: countBy(season.composes.map((c) => c.status)),
        jobs: expectedJobs.length,
        images: builds.length * perJob,
      },
      totals: {
        jobs: jobs.length,
        images: inventory.images.length,
        snapshots: inventory.snapshots.length,
        announcements: ledger.messages().length,
        deliveries: ledger.deliveries.length,
        ...totals,
        jobsWithRetries: retriedJobs,
        needsHuman,
      },
      faults,
      checks,
      // Relative to the repository: a record kept in docs/ names no path outside it.
      logs: relative(process.cwd(), work),
    };
    await mkdir(join(out, '..'), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);

    console.log('');
    console.log(plainTable(faults));
    console.log('');
    for (const c of checks) console.log(`${c.ok ? 'ok  ' : 'FAIL'} ${c.name}: ${c.detail}`);
    console.log(
      `\n${ok ? 'PASS' : 'FAIL'}: ${season.messages.length} messages, ${jobs.length} jobs, ${inventory.images.length} AMIs, ${ledger.messages().length} announcements (${resent} re-sent under their id) in ${result.durationSeconds} s; JSON: ${out}`,
    );
    return ok ? 0 : 1;
  } finally {
    await cleanup();
  }
}

/** What an announcement is about, independent of AWS ids and message ids. */
function announcementKey(d: Delivery): string {
  const b = d.body;
  const extra = (b.extra ?? {}) as Record<string, unknown>;
  const s = (v: unknown) => (typeof v === 'string' || typeof v === 'number' ? String(v) : JSON.stringify(v));
  switch (d.topic) {
    case 'fedimg.image.upload':
      return `upload ${s(b.status)} ${s(b.image_name)} ${s(extra.vol_type)}`;
    case 'fedimg.image.copy':
      return `copy ${s(b.compose_id)} ${s(b.architecture)} ${s(b.destination)} ${s(extra.vol_type)}`;
    case 'fedimg.image.publish':
      return `publish ${s(b.image_name)} ${s(b.destination)} ${s(extra.vol_type)}`;
    case 'joystick.compose.failed':
      return `compose failed ${s(b.compose_id)}`;
    case 'joystick.release.failed':
      return `release failed ${s(b.compose_id)} ${s(b.architecture)}`;
    default:
      if (d.topic.startsWith('fedora_image_uploader.published.v1.aws.'))
        return `uploader ${s(b.compose_id)} ${s(b.architecture)}`;
      return `${d.topic} ${JSON.stringify(b)}`;
  }
}

function countBy(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
