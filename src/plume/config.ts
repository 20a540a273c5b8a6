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
});

export const PlumeConfig = z.strictObject({
  aws: AwsConfig.default(AwsConfig.parse({})),
  /** Google Compute Engine: published to when the section is present (and not `enabled = false`). */
  gcp: GcpConfig.optional(),
  /** Azure Compute Gallery: published to when the section is present (and not `enabled = false`). */
  azure: AzureConfig.optional(),
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
