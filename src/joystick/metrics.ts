import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/**
 * What an operator alerts on. `joystick_last_publish_timestamp_seconds` per channel and provider is the one
 * fedimg lacked: an alert on `time() - joystick_last_publish_timestamp_seconds > 3 * 86400` fires when a
 * channel has been quiet too long on any provider, whatever the reason (one provider failing while the
 * others publish included). Provider labels are the few providers plume has: the cardinality stays small.
 */
export class Metrics {
  readonly registry = new Registry();
  readonly composesSeen = new Counter({
    name: 'joystick_composes_seen_total',
    help: 'Pungi compose status messages seen, by status',
    labelNames: ['status'],
    registers: [this.registry],
  });
  readonly composesOutcome = new Counter({
    name: 'joystick_composes_total',
    help: 'Finished composes by outcome (planned, ignored, failed, duplicate)',
    labelNames: ['outcome'],
    registers: [this.registry],
  });
  readonly messagesDropped = new Counter({
    name: 'joystick_messages_dropped_total',
    help: 'Messages dropped as invalid',
    labelNames: ['reason'],
    registers: [this.registry],
  });
  readonly releases = new Counter({
    name: 'joystick_releases_total',
    help: 'Release attempts by outcome (complete, partial, failed, retry), channel and provider',
    labelNames: ['outcome', 'channel', 'provider'],
    registers: [this.registry],
  });
  readonly bytesUploaded = new Counter({
    name: 'joystick_upload_bytes_total',
    help: 'Bytes sent to snapshots (non-zero blocks only)',
    registers: [this.registry],
  });
  readonly rawBytes = new Counter({
    name: 'joystick_upload_raw_bytes_total',
    help: 'Bytes of raw image read',
    registers: [this.registry],
  });
  readonly blocksSkipped = new Counter({
    name: 'joystick_upload_blocks_skipped_total',
    help: 'All-zero blocks not sent',
    registers: [this.registry],
  });
  readonly uploadSeconds = new Histogram({
    name: 'joystick_upload_duration_seconds',
    help: 'Upload duration per image, by provider and region',
    labelNames: ['region', 'provider'],
    buckets: [10, 30, 60, 120, 300, 600, 1200, 2400, 3600],
    registers: [this.registry],
  });
  readonly copySeconds = new Histogram({
    name: 'joystick_copy_duration_seconds',
    help: 'Time from the start of replication until an image copy is available, by provider and region',
    labelNames: ['region', 'provider'],
    buckets: [1, 10, 60, 300, 600, 1200, 1800, 3600, 7200],
    registers: [this.registry],
  });
  readonly retries = new Counter({
    name: 'joystick_retries_total',
    help: 'Retries, by what was retried',
    labelNames: ['what'],
    registers: [this.registry],
  });
  readonly targetFailures = new Counter({
    name: 'joystick_target_failures_total',
    help: 'Region/volume type failures, by provider and region',
    labelNames: ['region', 'provider'],
    registers: [this.registry],
  });
  readonly lastPublish = new Gauge({
    name: 'joystick_last_publish_timestamp_seconds',
    help: 'Time of the last successful publish, per channel and provider',
    labelNames: ['channel', 'provider'],
    registers: [this.registry],
  });
  readonly messagesPublished = new Counter({
    name: 'joystick_messages_published_total',
    help: 'Messages confirmed by the broker, by topic',
    labelNames: ['topic'],
    registers: [this.registry],
  });
  readonly publishFailures = new Counter({
    name: 'joystick_publish_failures_total',
    help: 'Messages the broker did not confirm (they stay queued and are retried)',
    registers: [this.registry],
  });
  readonly jobs = new Gauge({
    name: 'joystick_jobs',
    help: 'Jobs by state',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly jobOldest = new Gauge({
    name: 'joystick_job_oldest_timestamp_seconds',
    help: 'When the oldest running job first started (state="running") and since when the oldest due queued job has waited to be claimed (state="due"); absent when there is none',
    labelNames: ['state'],
    registers: [this.registry],
  });
  readonly composesStalled = new Gauge({
    name: 'joystick_composes_stalled',
    help: 'Composes whose metadata this replica has been reading for longer than compose_stall_seconds',
    registers: [this.registry],
  });
  readonly unsent = new Gauge({
    name: 'joystick_outbox_unsent',
    help: 'Announcements stored but not yet confirmed by the broker',
    registers: [this.registry],
  });
  readonly publicImages = new Gauge({
    name: 'joystick_public_images',
    help: 'Public images plume owns, per provider, channel and arch, as the last prune of each stream counted them',
    labelNames: ['provider', 'channel', 'arch'] as const,
    registers: [this.registry],
  });
  readonly pruned = new Counter({
    name: 'joystick_images_pruned_total',
    help: 'Images the lifecycle policy deprecated or deleted',
    labelNames: ['action', 'provider'] as const,
    registers: [this.registry],
  });
  readonly prunes = new Counter({
    name: 'joystick_prunes_total',
    help: 'Prunes of a stream, by outcome (ok, partial, failed)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly busConnected = new Gauge({
    name: 'joystick_bus_connected',
    help: '1 when connected to the message broker',
    registers: [this.registry],
  });

  constructor(opts: { defaults?: boolean } = {}) {
    if (opts.defaults ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'joystick_' });
  }
}
