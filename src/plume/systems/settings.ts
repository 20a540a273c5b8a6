import { z } from 'zod';
import { PlumeError } from '../../shared/errors.js';
import { account, partition, region, volumeType } from '../config.js';
import type { AwsImageSettings } from '../plan.js';
import { defaultBootMode } from '../providers/aws/arch.js';
import type { TargetSettings } from './types.js';

/**
 * Where and how a system publishes, as written in its config section (`[systems.NAME...]`): the same keys
 * as `[aws]`, every one optional, so a system's environment or partition says only what differs.
 */
export const TargetToml = z.strictObject({
  partition: partition.optional(),
  profile: z.string().min(1).optional(),
  base_region: region.optional(),
  regions: z.union([z.literal('all'), z.array(region).min(1)]).optional(),
  volume_types: z.array(volumeType).min(1).optional(),
  visibility: z.enum(['public', 'private']).optional(),
  share_with: z.array(account).optional(),
  deprecate_after_days: z.number().int().nonnegative().optional(),
  imds_v2: z.boolean().optional(),
  volume_size_gib: z.number().int().min(1).max(16384).optional(),
});
export type TargetToml = z.infer<typeof TargetToml>;

/** The target settings a TOML table sets, and only those (unset keys fall through to `[aws]`). */
export function targetFromToml(t: TargetToml): Partial<TargetSettings> {
  const out: Partial<TargetSettings> = {};
  if (t.partition) out.partition = t.partition;
  if (t.profile) out.profile = t.profile;
  if (t.base_region) out.primaryLocation = t.base_region;
  if (t.regions) out.locations = t.regions === 'all' ? [] : t.regions;
  if (t.volume_types) out.variants = t.volume_types;
  if (t.visibility || t.share_with)
    out.visibility = {
      ...(t.visibility ? { public: t.visibility === 'public' } : {}),
      ...(t.share_with ? { accounts: t.share_with } : {}),
    } as TargetSettings['visibility'];
  if (t.deprecate_after_days !== undefined) out.deprecateAfterDays = t.deprecate_after_days || undefined;
  if (t.imds_v2 !== undefined) out.imdsV2 = t.imds_v2;
  if (t.volume_size_gib !== undefined) out.volumeGiB = t.volume_size_gib;
  return out;
}

/** Validate a system's config section, naming the key that is wrong the way the config file spells it. */
export function parseSettings<S extends z.ZodType>(schema: S, data: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = [where, ...issue.path.map(String)].join('.');
  throw new PlumeError('usage', `config: ${key}: ${issue.message}`, 'fix the config file', {
    cause: result.error,
  });
}

/** `prod` and `dev` were plume's environment names; production and staging are the ones the config uses. */
export function environmentName(name: string | undefined, fallback = 'production'): string {
  const n = (name ?? fallback).toLowerCase();
  if (n === 'prod') return 'production';
  if (n === 'dev' || n === 'stg' || n === 'stage') return 'staging';
  return n;
}

/** Later settings win; visibility is merged key by key (a table may set only `share_with`). */
export function mergeTargets(...layers: Partial<TargetSettings>[]): Partial<TargetSettings> {
  let out: Partial<TargetSettings> = {};
  for (const layer of layers) {
    const visibility =
      out.visibility || layer.visibility ? { ...out.visibility, ...layer.visibility } : undefined;
    out = {
      ...out,
      ...layer,
      ...(visibility ? { visibility: visibility as TargetSettings['visibility'] } : {}),
    };
  }
  return out;
}

/**
 * How an image is registered on AWS: ENA and SR-IOV always (every current instance type has them), the
 * partition and profile from the target settings, and what the system decides. IMDSv2 follows
 * `imds_v2` where set, the system's default otherwise.
 */
export function awsImageSettings(
  settings: TargetSettings,
  architecture: AwsImageSettings['architecture'],
  o: { rootDeviceName: string; bootMode?: AwsImageSettings['bootMode']; imdsV2ByDefault: boolean },
): AwsImageSettings {
  return {
    partition: settings.partition,
    profile: settings.profile,
    architecture,
    bootMode: o.bootMode ?? defaultBootMode(architecture),
    imdsSupport: (settings.imdsV2 ?? o.imdsV2ByDefault) ? 'v2.0' : undefined,
    enaSupport: true,
    sriovNetSupport: 'simple',
    rootDeviceName: o.rootDeviceName,
  };
}
