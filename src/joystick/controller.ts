import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { errorMessage, PlumeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { POLICIES, delayFor, retry } from '../shared/retry.js';
import { primaryImages, variants, type TargetPlan } from '../plume/plan.js';
import { awsArchitecture } from '../plume/providers/aws/arch.js';
import type { ProviderFactory } from '../plume/providers/module.js';
import type { ReleaseRecord, TargetRecord } from '../plume/record.js';
import type { PlannedRelease } from '../plume/runtime.js';
import { platformsFor, sourceAccess, sourcePolicy } from '../plume/runtime.js';
import type { SystemRegistry } from '../plume/systems/registry.js';
import type { ComposeFacts } from '../plume/systems/types.js';
import { Drop, Nack, createMessage, type Message, type ReceivedMessage } from './bus/index.js';
import type { JoystickConfig } from './config.js';
import {
  composeFailed,
  jobFailed,
  releaseAnnouncements,
  uploadFailed,
  uploadStarted,
  type ImageFacts,
} from './messages.js';
import type { Metrics } from './metrics.js';
import { isComposeTopic, isFinished, parsePungiBody } from './pungi.js';
import { plumeCommand, runJob } from './release-job.js';
import { isTransientDbError } from './store/db.js';
import type { JobProgress, JobRow, JobStore, NewJob, OutboxItem } from './store/job-store.js';
import { LifecycleStore } from './store/lifecycle-store.js';
import { JobUploadSessions } from './store/upload-sessions.js';
import { asRecord, type TargetRecord as RecordedTarget } from '../plume/record.js';
import { prune, pruneSources } from '../plume/prune-cli.js';
import type { StreamSelector } from '../plume/providers/types.js';

export interface ControllerDeps {
  config: JoystickConfig;
  store: JobStore;
  registry: SystemRegistry;
  log: Logger;
  metrics: Metrics;
  /** Publish and wait for the broker's confirmation; throws when it is not confirmed. */
  publish: (message: Message) => Promise<void>;
  providers: ProviderFactory;
  /** This replica's name in leases (default host:pid). */
  owner?: string;
}

/**
 * joystick's core: bus messages become durable compose records (acked only once written), composes
 * become jobs, jobs run plume in-process under a lease, and every outcome becomes announcements stored in
 * the same transaction and sent from the outbox with publisher confirms. Each loop reads its work from
 * the database, so a restart (or another replica) picks up exactly where things stopped.
 */
export class Controller {
  readonly owner: string;
  private readonly abort = new AbortController();
  private readonly running = new Map<string, AbortController>();
  private loops: Promise<void>[] = [];
  private readonly waiters = new Set<() => void>();
  private stopped = false;
  readonly lifecycle: LifecycleStore;
  private readonly uploadSessions: JobUploadSessions;

  constructor(private readonly deps: ControllerDeps) {
    this.owner = deps.owner ?? `${hostname()}:${process.pid}`;
    this.lifecycle = new LifecycleStore(deps.store);
    this.uploadSessions = new JobUploadSessions(deps.store);
  }

  private get app() {
    return this.deps.config.app;
  }

  private get leaseMs() {
    return this.app.lease_seconds * 1000;
  }

  /**
   * The bus handler. Returns (ack) once the compose is durably recorded, or when the message is not for us;
   * throws Drop for a malformed message and Nack when the database cannot record it (the broker keeps it).
   */
  async handleMessage(message: ReceivedMessage | Message): Promise<void> {
    const { log, metrics, store } = this.deps;
    if (!isComposeTopic(message.topic)) {
      log.debug({ topic: message.topic, id: message.id }, 'not a compose message; ignored');
      return;
    }
    const parsed = parsePungiBody(message.body);
    if (!parsed.ok) {
      metrics.messagesDropped.inc({ reason: 'invalid' });
      log.error(
        { id: message.id, topic: message.topic, reason: parsed.reason },
        'dropping an invalid compose message',
      );
      throw new Drop(parsed.reason);
    }
    const facts = parsed.compose;
    metrics.composesSeen.inc({ status: facts.status });
    if (!isFinished(facts.status)) {
      log.debug({ compose: facts.id, status: facts.status }, 'compose not finished; ignored');
      return;
    }
    let outcome: 'new' | 'known';
    try {
      outcome = await store.recordCompose(facts, message.id);
    } catch (err) {
      log.error(
        { compose: facts.id, err: errorMessage(err) },
        'cannot record the compose; the broker will redeliver it',
      );
      // Requeueing at once would spin while the database is down: the broker's redelivery is the retry.
      await sleep(delayFor(1, POLICIES.composeRequeue));
      throw new Nack(`database unavailable: ${errorMessage(err)}`);
    }
    if (outcome === 'known') {
      metrics.composesOutcome.inc({ outcome: 'duplicate' });
      log.info({ compose: facts.id, id: message.id }, 'compose already recorded; duplicate message ignored');
      return;
    }
    log.info({ compose: facts.id, status: facts.status, location: facts.location }, 'compose recorded');
    this.poke();
  }

  /** Start the loops: compose resolution, job workers, the outbox sender. */
  start(): void {
    const forever = (name: string, step: () => Promise<boolean>) =>
      (async () => {
        let failures = 0;
        while (!this.stopped) {
          let busy = false;
          try {
            busy = await step();
            failures = 0;
          } catch (err) {
            failures++;
            this.deps.log.error({ loop: name, err: errorMessage(err) }, 'loop step failed; retrying');
            await sleep(delayFor(failures, POLICIES.controllerLoop));
          }
          if (!busy && !this.stopped) await this.idle();
        }
      })();
    this.loops = [
      // Several compose readers: a compose host that answers slowly holds back only its own compose.
      ...Array.from({ length: this.app.max_parallel_composes }, (_, i) =>
        forever(`composes-${i}`, () => this.resolveOne()),
      ),
      forever('outbox', () => this.sendOutbox()),
      ...Array.from({ length: this.app.max_parallel_jobs }, (_, i) =>
        forever(`worker-${i}`, () => this.workOne()),
      ),
      ...(this.app.lifecycle ? [forever('lifecycle', () => this.pruneOne())] : []),
    ];
  }

  /** Wait for a poke or the poll interval. */
  private idle(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, this.app.poll_seconds * 1000);
      this.waiters.add(done);
    });
  }

  /** New work was written: wake every idle loop now instead of at the next poll. */
  poke(): void {
    for (const wake of [...this.waiters]) wake();
  }

  /** Stop taking work; in-flight jobs are interrupted and requeued (plume resumes them idempotently). */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const c of this.running.values()) c.abort(new PlumeError('internal', 'joystick is stopping'));
    this.abort.abort();
    this.poke();
    await Promise.all(this.loops);
  }

  /** Process everything that can be processed now, then return (replay, tests, `retry --now`). */
  async runUntilIdle(): Promise<void> {
    for (;;) {
      let busy = await this.resolveOne();
      const workers = await Promise.all(
        Array.from({ length: this.app.max_parallel_jobs }, () => this.workOne()),
      );
      busy = workers.some(Boolean) || busy;
      if (this.app.lifecycle) busy = (await this.pruneOne()) || busy;
      busy = (await this.sendOutbox()) || busy;
      if (!busy) return;
    }
  }

  // ---- composes ---------------------------------------------------------------------------------------

  private watch() {
    return {
      channels: this.app.channels,
      arches: this.app.arches,
      imageTypes: this.app.image_types,
      environment: this.app.environment,
    };
  }

  async resolveOne(): Promise<boolean> {
    const { store, registry, log, metrics, config } = this.deps;
    const compose = await store.claimCompose(this.owner, this.leaseMs);
    if (!compose) return false;
    const facts = compose.event;
    const system = registry.get(this.app.system);
    if (!system.releasesForCompose)
      throw new PlumeError('usage', `system ${system.name} cannot be driven by composes`);
    const policy = sourcePolicy(config.plume, system, false);
    const watch = this.watchResolution(facts.id);
    try {
      const decision = await system.releasesForCompose(facts, this.watch(), {
        source: sourceAccess(policy, this.abort.signal),
        log,
        signal: this.abort.signal,
        providers: platformsFor(config.plume, system, { system: system.name, channel: '' }),
      });
      if (decision.kind === 'ignore') {
        metrics.composesOutcome.inc({ outcome: 'ignored' });
        log.info({ compose: facts.id, reason: decision.reason }, 'compose ignored');
        await store.closeCompose(facts.id, this.owner, 'ignored', decision.reason, undefined, []);
        return true;
      }
      if (decision.kind === 'broken') {
        await this.failCompose(facts, decision.channel, decision.reason, compose.round);
        return true;
      }
      // One job per image and provider: a slow or failing provider never holds back another.
      const jobs: NewJob[] = decision.requests.flatMap((r) =>
        (r.platforms ?? platformsFor(config.plume, system, r)).map((platform) => {
          const request = { ...r, platforms: [platform] };
          return {
            id: [facts.id, request.channel, request.imageType ?? '-', request.arch ?? '-', platform].join(
              '/',
            ),
            request,
            channel: request.channel,
            arch: request.arch ?? '-',
            imageType: request.imageType,
            provider: platform,
            command: plumeCommand(request),
          };
        }),
      );
      if (await store.planCompose(facts.id, this.owner, decision.channel, jobs, [])) {
        metrics.composesOutcome.inc({ outcome: 'planned' });
        for (const job of jobs)
          log.info({ compose: facts.id, job: job.id, command: job.command }, 'job queued');
        this.poke();
      }
      return true;
    } catch (err) {
      const retryable = err instanceof PlumeError ? err.retryable : true;
      const ageMs = Date.now() - compose.receivedAt;
      if (retryable && ageMs < this.app.metadata_retry_minutes * 60_000) {
        const delay = delayFor(compose.attempts, POLICIES.composeMetadata);
        metrics.retries.inc({ what: 'compose-metadata' });
        log.warn(
          { compose: facts.id, err: errorMessage(err), retryInSeconds: Math.round(delay / 1000) },
          'cannot read the compose yet; will retry',
        );
        await store.deferCompose(facts.id, this.owner, errorMessage(err), Date.now() + delay);
      } else await this.failCompose(facts, undefined, errorMessage(err), compose.round);
      return true;
    } finally {
      watch.stop();
    }
  }

  /**
   * While a compose's metadata is read: renew its lease (a slow host must not hand the compose to another
   * replica mid-read), and once it takes longer than `compose_stall_seconds`, say so (a WARN line, the
   * `joystick_composes_stalled` gauge; the status page shows it from the database).
   */
  private watchResolution(composeId: string) {
    const { store, log, metrics } = this.deps;
    const started = Date.now();
    let stalled = false;
    const renew = setInterval(() => {
      store
        .renewComposeLease(composeId, this.owner, this.leaseMs)
        .catch((err: unknown) =>
          log.warn({ compose: composeId, err: errorMessage(err) }, 'cannot renew the compose lease'),
        );
    }, this.leaseMs / 3);
    const stall = setTimeout(() => {
      stalled = true;
      metrics.composesStalled.inc();
      log.warn(
        { compose: composeId, seconds: Math.round((Date.now() - started) / 1000) },
        'compose stalled: its metadata is still being read',
      );
    }, this.app.compose_stall_seconds * 1000);
    return {
      stop() {
        clearInterval(renew);
        clearTimeout(stall);
        if (stalled) metrics.composesStalled.dec();
      },
    };
  }

  private async failCompose(
    facts: ComposeFacts,
    channel: string | undefined,
    reason: string,
    round: number,
  ): Promise<void> {
    const { store, log, metrics } = this.deps;
    metrics.composesOutcome.inc({ outcome: 'failed' });
    log.error({ compose: facts.id, channel, reason }, 'compose cannot be published');
    await store.closeCompose(facts.id, this.owner, 'failed', reason, channel, [
      composeFailed(facts.id, facts.location, channel, reason, this.app.status_url, round),
    ]);
    this.poke();
  }

  // ---- jobs -------------------------------------------------------------------------------------------

  async workOne(): Promise<boolean> {
    if (this.stopped && this.loops.length > 0) return false;
    const job = await this.deps.store.claimJob(this.owner, this.leaseMs, Date.now(), [
      ...this.running.keys(),
    ]);
    if (!job) return false;
    await this.runClaimed(job);
    return true;
  }

  /** What the messages about one target of a job say (the AWS announcements are per AWS target). */
  private imageFacts(job: JobRow, planned: PlannedRelease, target: TargetPlan): ImageFacts {
    const { plan, system } = planned;
    return {
      jobId: planned.plan.targets.length > 1 ? `${job.id}:${target.name}` : job.id,
      round: job.round,
      composeId: job.composeId,
      imageUrl: target.source.url,
      build: target.build,
      architecture: target.architecture,
      ec2Architecture: awsArchitecture(target.architecture) ?? target.architecture,
      channel: job.channel,
      provider: target.provider,
      uploader: system.uploaderAnnouncement?.(plan),
      statusUrl: this.app.status_url,
    };
  }

  /** The announcements a finished release makes, target by target. */
  private announcements(job: JobRow, planned: PlannedRelease, record: ReleaseRecord) {
    return Object.values(record.targets).flatMap((t: TargetRecord) =>
      releaseAnnouncements(this.imageFacts(job, planned, t.plan), t, {
        fedimg: this.app.publish_fedimg,
        uploader: this.app.publish_image_uploader,
      }),
    );
  }

  private async runClaimed(job: JobRow): Promise<void> {
    const { store, log: baseLog, metrics, config } = this.deps;
    const log = baseLog.child({ job: job.id, attempt: job.attempts });
    const control = new AbortController();
    this.running.set(job.id, control);
    log.info({ command: job.command }, 'job started; the equivalent command is shown');

    // Renew the lease while the release runs; losing it means another replica took the job over.
    // (A renewal answered after the outcome is written finds the job no longer running: not a loss.)
    let finishing = false;
    const renew = setInterval(
      () => {
        store.renewJobLease(job.id, this.owner, this.leaseMs).then(
          (ok) => {
            if (!ok && !finishing) {
              log.error('lost the job lease; stopping this attempt');
              control.abort(new PlumeError('internal', 'lease lost'));
            }
          },
          (err: unknown) => log.warn({ err: errorMessage(err) }, 'could not renew the job lease'),
        );
      },
      Math.max(1000, this.leaseMs / 3),
    );

    let lastSave = 0;
    let saving: Promise<void> = Promise.resolve();
    const onProgress = (p: JobProgress) => {
      if (Date.now() - lastSave < 1000) return;
      lastSave = Date.now();
      saving = saving.then(() =>
        store.saveProgress(job.id, this.owner, structuredClone(p)).catch(() => undefined),
      );
    };

    let planned: PlannedRelease | undefined;
    try {
      const record = await runJob(job.request, {
        plume: config.plume,
        registry: this.deps.registry,
        providers: this.deps.providers,
        log,
        metrics,
        signal: control.signal,
        onProgress,
        uploadSessions: this.uploadSessions,
        onPlanned: async (p) => {
          planned = p;
          if (this.app.publish_fedimg)
            await this.record(log, () =>
              store.announce(
                job.id,
                job.composeId,
                awsTargets(p).flatMap((t) =>
                  uploadStarted(this.imageFacts(job, p, t), t.primaryLocation, primaryVariants(t)),
                ),
              ),
            );
          this.poke();
        },
      });
      const outbox = this.announcements(job, planned!, record);
      const state = record.status;
      const targets = Object.values(record.targets);
      const images = targets.reduce((n, t) => n + t.images.length, 0);
      finishing = true;
      await saving;
      if (await this.record(log, () => store.finishJob(job.id, this.owner, { state, record }, outbox))) {
        // The stream is pruned after each release that published something. Written after the job, not
        // with it: if joystick stops in between, the stream's schedule prunes it anyway.
        if (this.app.lifecycle && images > 0)
          await this.record(log, () => this.lifecycle.markDue(this.selectorOf(job), Date.now()));
        metrics.releases.inc({ outcome: state, channel: job.channel, provider: job.provider });
        if (images > 0)
          metrics.lastPublish.set({ channel: job.channel, provider: job.provider }, Date.now() / 1000);
        log.info(
          {
            state,
            images,
            problems: targets.flatMap((t) =>
              t.problems.map((p) => `${t.name}:${p.location}/${p.variant}: ${p.detail}`),
            ),
            failed: targets.filter((t) => t.error).map((t) => `${t.name}: ${t.error}`),
          },
          'job finished',
        );
      }
    } catch (err) {
      finishing = true;
      await saving;
      await this.jobError(job, planned, err, control.signal.aborted && this.stopped);
    } finally {
      clearInterval(renew);
      this.running.delete(job.id);
      this.poke();
    }
  }

  private async jobError(
    job: JobRow,
    planned: PlannedRelease | undefined,
    err: unknown,
    stopping: boolean,
  ): Promise<void> {
    const { store, log, metrics } = this.deps;
    const reason = errorMessage(err);
    if (stopping) {
      // Shutting down: hand the job back at once so this or another replica resumes it.
      await store.finishJob(job.id, this.owner, { state: 'queued', error: 'interrupted by shutdown' }, []);
      return;
    }
    const retryable = err instanceof PlumeError ? err.retryable : true;
    if (retryable && job.attempts < this.app.max_job_attempts) {
      const delay = delayFor(job.attempts, POLICIES.job);
      metrics.releases.inc({ outcome: 'retry', channel: job.channel, provider: job.provider });
      log.warn(
        { job: job.id, err: reason, retryInSeconds: Math.round(delay / 1000) },
        'job failed; will retry',
      );
      await this.record(log, () =>
        store.finishJob(
          job.id,
          this.owner,
          { state: 'queued', error: reason, nextTryAt: Date.now() + delay },
          [],
        ),
      );
      return;
    }
    metrics.releases.inc({ outcome: 'failed', channel: job.channel, provider: job.provider });
    log.error({ job: job.id, err: reason }, 'job failed');
    const outbox: OutboxItem[] = [];
    for (const t of planned?.plan.targets ?? []) {
      const facts = this.imageFacts(job, planned!, t);
      if (this.app.publish_fedimg && t.provider === 'aws')
        outbox.push(...uploadFailed(facts, t.primaryLocation, primaryVariants(t), job.attempts));
      outbox.push(jobFailed(facts, reason, job.attempts));
    }
    if (!planned || planned.plan.targets.length === 0) {
      const r = job.request;
      outbox.push(
        jobFailed(
          {
            jobId: job.id,
            round: job.round,
            composeId: job.composeId,
            imageUrl: r.compose ?? '',
            build: '',
            architecture: r.arch ?? '',
            channel: job.channel,
            provider: job.provider,
            statusUrl: this.app.status_url,
          },
          reason,
          job.attempts,
        ),
      );
    }
    await this.record(log, () =>
      store.finishJob(job.id, this.owner, { state: 'failed', error: reason }, outbox),
    );
  }

  /**
   * Write what a job produced, waiting while the database is unavailable (locked, restarting,
   * unreachable): the release is done, and giving up here would count a database outage as a failed
   * attempt, run the release again and, on the last attempt, announce as failed a release that succeeded.
   * Only shutdown interrupts the wait; the job's lease then expires and it is resumed.
   */
  private async record<T>(log: Logger, write: () => Promise<T>): Promise<T> {
    return retry(write, {
      attempts: Infinity,
      policy: POLICIES.databaseWrite,
      retryable: (err) => isTransientDbError(err) && !this.stopped,
      signal: this.abort.signal,
      onRetry: (err, attempt, delay) =>
        log.warn(
          { err: errorMessage(err), attempt, retryInSeconds: Math.round(delay / 1000) },
          'cannot record the job yet: the database is unavailable',
        ),
    });
  }

  // ---- lifecycle --------------------------------------------------------------------------------------

  private selectorOf(job: JobRow): StreamSelector {
    return {
      system: this.app.system,
      channel: job.channel,
      ...(job.arch && job.arch !== '-' ? { arch: job.arch } : {}),
      ...(job.imageType ? { imageType: job.imageType } : {}),
    };
  }

  /** The policy's "now": the clock's, or the simulated one of a soak. */
  private policyNow(): number {
    const sim = this.app.simulated_clock;
    if (!sim) return Date.now();
    const now =
      Date.parse(sim.simulated_start) + ((Date.now() - sim.real_start_ms) * 86_400) / sim.day_seconds;
    return sim.simulated_end ? Math.min(now, Date.parse(sim.simulated_end)) : now;
  }

  /** The release records of a stream's jobs, newest first: the newest is never pruned. */
  private async streamRecords(s: StreamSelector): Promise<RecordedTarget[]> {
    const rows = await this.deps.store.db.query<{ record: string }>(
      `SELECT record FROM jobs WHERE channel = ? AND state IN ('complete', 'partial') AND record IS NOT NULL
       ORDER BY finished_at DESC LIMIT 50`,
      [s.channel],
    );
    return rows.flatMap((r) => {
      const record = asRecord(JSON.parse(r.record));
      return record ? Object.values(record.targets) : [];
    });
  }

  /**
   * Prune one due stream under a lease: plume's policy and prune (docs/lifecycle.md), its journal and
   * announcements in joystick's database. The stream is next due after `prune_interval_hours`.
   */
  async pruneOne(): Promise<boolean> {
    const { log, metrics } = this.deps;
    const claimedAt = Date.now();
    const row = await this.lifecycle.claim(this.owner, this.leaseMs, claimedAt);
    if (!row) return false;
    const nextDueAt = Date.now() + this.app.prune_interval_hours * 3_600_000;
    const sources = pruneSources(this.deps.config.plume, undefined, {});
    const slog = log.child({ stream: row.stream });
    try {
      const { plan, result } = await prune({
        config: this.deps.config.plume,
        selector: row.selector,
        defaults: this.deps.registry.get(row.selector.system).lifecycleDefaults?.(),
        sources,
        records: () => this.streamRecords(row.selector),
        journal: this.lifecycle,
        now: this.policyNow(),
        dryRun: false,
        log: slog,
        signal: this.abort.signal,
        onDone: (a) => {
          metrics.pruned.inc({ action: a.kind, provider: a.image.provider });
          this.poke();
        },
      });
      const deleted = new Set(result!.deleted.map((a) => a.id.replace(/^delete:/, '')));
      const publicImages: Record<string, number> = {};
      for (const p of plan.providers) {
        const all = p.streams.flatMap((st) => [
          ...st.decision.keep,
          ...st.decision.deprecate,
          ...st.decision.delete,
        ]);
        publicImages[p.provider] = all.filter(
          (d) => d.image.public && !deleted.has(`${p.provider}:${d.image.location}:${d.image.id}`),
        ).length;
      }
      const partial = result!.failed.length > 0 || result!.unreachable.length > 0;
      metrics.prunes.inc({ outcome: partial ? 'partial' : 'ok' });
      await this.lifecycle.finish(
        row.stream,
        this.owner,
        {
          // A partial prune is tried again soon: what is left is what the policy still wants done.
          nextDueAt: partial ? Date.now() + Math.min(this.leaseMs, 600_000) : nextDueAt,
          publicImages,
          ...(partial
            ? {
                error: [
                  ...result!.failed.map((f) => `${f.image.location} ${f.image.id}: ${f.error}`),
                  ...result!.unreachable.map((u) => `${u.location}: ${u.error}`),
                ].join('; '),
              }
            : {}),
        },
        claimedAt,
      );
      slog.info(
        { deprecated: result!.deprecated.length, deleted: result!.deleted.length, publicImages, partial },
        'stream pruned',
      );
    } catch (err) {
      metrics.prunes.inc({ outcome: 'failed' });
      slog.error({ err: errorMessage(err) }, 'prune failed; will try again');
      await this.lifecycle
        .finish(
          row.stream,
          this.owner,
          { nextDueAt: Date.now() + Math.min(this.leaseMs, 600_000), error: errorMessage(err) },
          claimedAt,
        )
        .catch(() => undefined);
    } finally {
      for (const s of sources) s.close?.();
    }
    return true;
  }

  // ---- outbox -----------------------------------------------------------------------------------------

  async sendOutbox(): Promise<boolean> {
    const { store, log, metrics } = this.deps;
    // The outbox lease is the job lease: after a crash, the restarted process (or another replica) sends
    // what was left as soon as it resumes the jobs, instead of after a fixed minute.
    const claimedAt = Date.now();
    const rows = await store.claimOutbox(this.owner, this.leaseMs, 50);
    for (const row of rows) {
      // Past half the lease, another sender may soon claim these rows and send them too: hand the rest
      // back and claim afresh, so every publish starts with at least half a lease (60 s by default, more
      // than the publisher's 30 s confirm timeout) before anyone else may send the same message.
      if (Date.now() - claimedAt > this.leaseMs / 2) {
        await store.releaseOutbox(this.owner);
        return true;
      }
      const message = createMessage({
        id: row.messageId,
        topic: row.topic,
        body: row.body,
        severity: row.severity as 10 | 20 | 30 | 40,
        schema: row.schema,
      });
      try {
        await this.deps.publish(message);
      } catch (err) {
        metrics.publishFailures.inc();
        log.error(
          { topic: row.topic, err: errorMessage(err) },
          'message not confirmed by the broker; it stays queued',
        );
        await store.markUnsent(row.key, errorMessage(err)).catch(() => undefined);
        // The rest of this batch would fail the same way: give it back (so the next try, here or on
        // another replica, need not wait for the lease) and let the loop back off.
        await store.releaseOutbox(this.owner).catch(() => undefined);
        throw err;
      }
      try {
        await store.markSent(row.key);
      } catch (err) {
        // The broker has it but the database does not know: the row is sent again once its lease
        // expires, with the same message id, which is how consumers recognise the copy.
        log.error(
          { topic: row.topic, id: row.messageId, err: errorMessage(err) },
          'message published but not recorded as sent; it will be sent again with the same id',
        );
        throw err;
      }
      metrics.messagesPublished.inc({ topic: row.topic });
      log.info({ topic: row.topic, id: row.messageId, severity: row.severity }, 'message published');
    }
    return rows.length > 0;
  }
}

function awsTargets(p: PlannedRelease): TargetPlan[] {
  return p.plan.targets.filter((t) => t.provider === 'aws');
}

function primaryVariants(t: TargetPlan): string[] {
  return variants({ images: primaryImages(t) });
}
