import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadToml, parseToml } from '../shared/toml.js';

export const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region name like us-east-1');
export const account = z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id');
export const volumeType = z.enum(['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard']);
export const partition = z.enum(['aws', 'aws-us-gov', 'aws-cn']);

export const AwsConfig = z.strictObject({
  base_region: region.default('us-east-1'),
  /** Explicit list, or "all" for every region enabled in the account. */
  regions: z.union([z.literal('all'), z.array(region).min(1)]).default('all'),
  volume_types: z.array(volumeType).min(1).default(['gp3', 'gp2']),
  visibility: z.enum(['public', 'private']).default('public'),
  share_with: z.array(account).default([]),
  partition: partition.default('aws'),
  endpoint: z.url().optional(),
  profile: z.string().min(1).optional(),
  imds_v2: z.boolean().default(true),
  /** Fixed root volume size in GiB; by default the image's own size rounded up. */
  volume_size_gib: z.number().int().min(1).max(16384).optional(),
  deprecate_after_days: z.number().int().nonnegative().default(0),
  upload_concurrency: z.number().int().min(1).max(256).default(16),
  copy_concurrency: z.number().int().min(1).max(100).default(10),
  max_attempts: z.number().int().min(1).max(30).default(10),
  throttle_attempts: z.number().int().min(1).max(100).default(30),
  retry_base_ms: z.number().int().positive().default(200),
  throttle_base_ms: z.number().int().positive().default(1000),
  retry_max_ms: z.number().int().positive().default(20_000),
  connect_timeout_seconds: z.number().positive().default(10),
  request_timeout_seconds: z.number().positive().default(120),
  call_timeout_seconds: z.number().positive().default(900),
  image_wait_minutes: z.number().positive().default(90),
  snapshot_wait_minutes: z.number().positive().default(60),
  poll_min_ms: z.number().int().positive().default(5000),
  poll_max_ms: z.number().int().positive().default(30000),
});

export const SourceConfig = z.strictObject({
  allowed_hosts: z.array(z.string().min(1)).default([]),
  allow_insecure_http: z.boolean().default(false),
  attempts: z.number().int().min(1).max(20).default(5),
  idle_timeout_seconds: z.number().positive().default(60),
});

export const PlumeConfig = z.strictObject({
  aws: AwsConfig.default(AwsConfig.parse({})),
  source: SourceConfig.default(SourceConfig.parse({})),
  state: z
    .strictObject({
      path: z.string().optional(),
      records_dir: z.string().optional(),
    })
    .default({}),
  release: z
    .strictObject({ repair_rounds: z.number().int().min(0).max(10).default(2) })
    .default({ repair_rounds: 2 }),
  /**
   * `[systems.NAME]`: a built-in system's own settings (environments, partitions, keys), which that system
   * validates, or a whole system defined in configuration when NAME is not a built-in one.
   */
  systems: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
});
export type PlumeConfig = z.infer<typeof PlumeConfig>;

export const SYSTEM_CONFIG_PATH = '/etc/plume/plume.toml';

/** `--config`, else $PLUME_CONFIG, else /etc/plume/plume.toml when present, else built-in defaults. */
export async function loadConfig(path?: string): Promise<{ config: PlumeConfig; path?: string }> {
  const chosen =
    path ?? process.env.PLUME_CONFIG ?? (existsSync(SYSTEM_CONFIG_PATH) ? SYSTEM_CONFIG_PATH : undefined);
  if (!chosen) return { config: PlumeConfig.parse({}) };
  return { config: await loadToml(chosen, PlumeConfig), path: chosen };
}

export function parseConfig(text: string, where = 'config'): PlumeConfig {
  return parseToml(text, where, PlumeConfig);
}

export function stateDir(): string {
  return join(process.env.XDG_STATE_HOME ?? join(homedir(), '.local', 'state'), 'plume');
}

export function expandHome(path: string): string {
  return path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
}
