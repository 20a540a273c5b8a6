import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { loadToml, parseToml } from '../shared/toml.js';
import { AwsConfig } from './providers/aws/config.js';
import { AzureConfig } from './providers/azure/config.js';
import { GcpConfig } from './providers/gcp/config.js';
import { LifecycleConfig } from './lifecycle/policy.js';

export const SourceConfig = z.strictObject({
  allowed_hosts: z.array(z.string().min(1)).default([]),
  allow_insecure_http: z.boolean().default(false),
  attempts: z.number().int().min(1).max(20).default(5),
  idle_timeout_seconds: z.number().positive().default(60),
  /** A download slower than this over a whole `rate_window_seconds` is dropped and resumed; 0: no minimum. */
  min_rate_bytes_per_second: z
    .number()
    .int()
    .min(0)
    .default(16 * 1024),
  rate_window_seconds: z.number().positive().default(30),
  /** Deadline of each attempt at a metadata document (images.json, a checksum list, a signature). */
  document_timeout_seconds: z.number().positive().default(120),
});

/**
 * What an image must be to be published at all, whoever built it: at least `min_data_mib` of data (an image
 * with a partition table and a filesystem has far more; an empty or all-zero file is a broken build), and a
 * volume of at most `max_volume_gib` (a decompression bomb makes a huge volume out of a small file).
 * `[images.systems.NAME]` overrides either for one system; a system may bring its own defaults.
 */
const ImageLimitsToml = z.strictObject({
  min_data_mib: z.number().min(0).max(1024).optional(),
  max_volume_gib: z.number().int().min(1).max(16384).optional(),
});
export const ImagesConfig = z.strictObject({
  min_data_mib: z.number().min(0).max(1024).default(1),
  max_volume_gib: z.number().int().min(1).max(16384).default(64),
  systems: z.record(z.string(), ImageLimitsToml).default({}),
});

export const PlumeConfig = z.strictObject({
  aws: AwsConfig.default(AwsConfig.parse({})),
  /** Google Compute Engine: published to when the section is present (and not `enabled = false`). */
  gcp: GcpConfig.optional(),
  /** Azure Compute Gallery: published to when the section is present (and not `enabled = false`). */
  azure: AzureConfig.optional(),
  source: SourceConfig.default(SourceConfig.parse({})),
  images: ImagesConfig.default(ImagesConfig.parse({})),
  state: z
    .strictObject({
      path: z.string().optional(),
      records_dir: z.string().optional(),
      /**
       * A release's (or prune's) lock in the state database lapses this long after its holder's last
       * heartbeat (renewed every third); a holder killed on this machine frees it at once.
       */
      lock_seconds: z.number().int().min(3).max(3600).default(60),
    })
    .default({ lock_seconds: 60 }),
  release: z
    .strictObject({ repair_rounds: z.number().int().min(0).max(10).default(2) })
    .default({ repair_rounds: 2 }),
  /**
   * `[systems.NAME]`: a built-in system's own settings (environments, partitions, keys), which that system
   * validates, or a whole system defined in configuration when NAME is not a built-in one.
   */
  systems: z.record(z.string(), z.record(z.string(), z.unknown())).default({}),
  /** `[lifecycle.SYSTEM.CHANNEL]`: when images are deprecated and deleted (docs/lifecycle.md). */
  lifecycle: LifecycleConfig,
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
