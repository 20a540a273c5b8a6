import { z } from 'zod';
import { PlumeError } from '../shared/errors.js';
import {
  loadConfig as loadPlumeConfig,
  parseConfig as parsePlumeConfig,
  type PlumeConfig,
} from '../plume/config.js';
import { loadBusConfig, type BusConfig } from './bus/index.js';

/**
 * joystick's own settings: the `[consumer_config]` table of the fedora-messaging config.toml, so one file
 * (the one Fedora's Ansible writes for every fedora-messaging consumer) configures the whole service.
 */
export const ConsumerConfig = z.strictObject({
  /** The plume system that interprets composes. */
  system: z.string().min(1).default('fedora'),
  /** SQLAlchemy-style `sqlite:////abs/path.db` or `sqlite:///relative.db`, a plain path, or `postgresql://...`. */
  database: z.string().min(1).default('sqlite:////var/lib/joystick/joystick.db'),
  /** plume's TOML config; the `plume` table below is used instead when given. */
  plume_config: z.string().optional(),
  plume: z.record(z.string(), z.unknown()).optional(),
  environment: z.string().optional(),
  /** Channels to act on; composes of other channels are ignored (logged at debug). */
  channels: z.array(z.string()).min(1).default(['rawhide', 'branched', 'updates', 'cloud']),
  arches: z.array(z.string()).min(1).default(['x86_64', 'aarch64']),
  /** Image types to publish (all the channel has when absent). */
  image_types: z.array(z.string()).optional(),
  max_parallel_jobs: z.number().int().min(1).max(32).default(2),
  /** Composes whose metadata is read at once: one slow compose host never holds back another compose. */
  max_parallel_composes: z.number().int().min(1).max(32).default(4),
  /** A compose still being read after this long is stalled: a WARN line, the status page and a metric say so. */
  compose_stall_seconds: z.number().positive().default(120),
  http_listen: z.string().default('127.0.0.1:8080'),
  publish_fedimg: z.boolean().default(true),
  publish_image_uploader: z.boolean().default(true),
  /** How long a replica owns a job without renewing; then another takes it over. */
  lease_seconds: z.number().int().min(5).max(3600).default(120),
  /** How often idle loops look for work in the database (composes, jobs, unsent messages). */
  poll_seconds: z.number().positive().default(2),
  /** How long to keep trying to read a compose's metadata before reporting the compose failed. */
  metadata_retry_minutes: z.number().positive().default(60),
  /** Attempts per job before it is reported failed for good (a retry command starts again). */
  max_job_attempts: z.number().int().min(1).max(20).default(3),
  /** Largest message body accepted from the bus. */
  max_message_bytes: z
    .number()
    .int()
    .min(1024)
    .default(1024 * 1024),
  /** Base URL of the status page, put in failure messages so whoever is paged can look. */
  status_url: z.string().optional(),
  /**
   * Apply plume's lifecycle policy (`[lifecycle.SYSTEM.CHANNEL]` of plume's config, docs/lifecycle.md) to
   * each stream after each of its releases and every `prune_interval_hours`: off unless asked for, since
   * it deletes images.
   */
  lifecycle: z.boolean().default(false),
  prune_interval_hours: z
    .number()
    .positive()
    .max(24 * 30)
    .default(24),
  /**
   * For simulations only (the soak, tests): the policy's "now" runs `86400 / day_seconds` times faster than
   * the clock, from `simulated_start` at the real time `real_start_ms`, as the simulated composes' dates do.
   * `simulated_end`, when given, is where it stops: a simulation's final state is then that of its last day
   * however long a loaded machine takes to get there (lag would otherwise become simulated days).
   */
  simulated_clock: z
    .strictObject({
      real_start_ms: z.number().int().positive(),
      simulated_start: z.iso.datetime(),
      day_seconds: z.number().positive(),
      simulated_end: z.iso.datetime().optional(),
    })
    .optional(),
});
export type ConsumerConfig = z.infer<typeof ConsumerConfig>;

export interface JoystickConfig {
  bus: BusConfig;
  busPath: string | null;
  app: ConsumerConfig;
  plume: PlumeConfig;
}

export function parseConsumerConfig(raw: Record<string, unknown>, where: string): ConsumerConfig {
  const result = ConsumerConfig.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new PlumeError(
      'usage',
      `${where}: ${['consumer_config', ...issue.path].join('.')}: ${issue.message}`,
      'fix the config file',
    );
  }
  return result.data;
}

export async function loadJoystickConfig(path?: string): Promise<JoystickConfig> {
  const { config: bus, path: busPath } = await loadBusConfig({ path });
  const where = busPath ?? 'the default fedora-messaging config';
  const app = parseConsumerConfig(bus.consumer_config, where);
  let plume: PlumeConfig;
  if (app.plume) {
    const { stringify } = await import('smol-toml');
    plume = parsePlumeConfig(stringify(app.plume), `${where} [consumer_config.plume]`);
  } else plume = (await loadPlumeConfig(app.plume_config)).config;
  return { bus, busPath, app, plume };
}
