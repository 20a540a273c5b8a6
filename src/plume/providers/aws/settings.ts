import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import type { TargetPlan, TargetSettings } from '../../plan.js';
import { awsArchitecture, defaultBootMode, type AwsArchitecture } from './arch.js';
import { commonFromToml } from '../module.js';

/**
 * AWS's words for what a target is: regions, accounts, root volume types, partitions, and how an AMI is
 * registered. Config tables (`[aws]`, and the tables systems give for their environments, channels and
 * partitions) are validated here, and so is the `settings` section of a target plan.
 */

export const region = z.string().regex(/^[a-z]{2}(-[a-z]+)+-\d+$/, 'an AWS region name like us-east-1');
export const account = z.string().regex(/^\d{12}$/, 'a 12-digit AWS account id');
export const volumeType = z.enum(['gp3', 'gp2', 'io1', 'io2', 'st1', 'sc1', 'standard']);
export const partition = z.enum(['aws', 'aws-us-gov', 'aws-cn']);

/** Where and how a target publishes, as a config table writes it: every key optional. */
export const AwsTargetToml = z.strictObject({
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
export type AwsTargetToml = z.infer<typeof AwsTargetToml>;

/** The AWS-specific part of target settings (`TargetSettings.settings`). */
export interface AwsTargetExtras {
  partition: z.infer<typeof partition>;
  profile?: string;
  /** Require IMDSv2 on instances launched from the images, when the config says. */
  imdsV2?: boolean;
}

/** The target settings a table sets, and only those (unset keys fall through to the layers below). */
export function fromToml(t: AwsTargetToml): Partial<TargetSettings> & { settings: Partial<AwsTargetExtras> } {
  const out: Partial<TargetSettings> & { settings: Partial<AwsTargetExtras> } = { settings: {} };
  if (t.partition) out.settings.partition = t.partition;
  if (t.profile) out.settings.profile = t.profile;
  if (t.imds_v2 !== undefined) out.settings.imdsV2 = t.imds_v2;
  if (t.base_region) out.primaryLocation = t.base_region;
  if (t.regions) out.locations = t.regions === 'all' ? [] : t.regions;
  if (t.volume_types) out.variants = t.volume_types;
  Object.assign(out, commonFromToml(t));
  if (t.volume_size_gib !== undefined) out.volumeGiB = t.volume_size_gib;
  return out;
}

/**
 * How the images of a target are registered: the plan's `settings` for AWS. The config gives the partition,
 * profile and IMDS choice, the system the root device and, where it differs from the default, the boot
 * mode; the rest follows from the architecture and from what every current instance type has (ENA,
 * SR-IOV). A planned target carries the whole, so a plan shows exactly what is registered.
 */
const AwsImageInput = z.strictObject({
  partition: partition.default('aws'),
  /** Named credentials profile; the SDK's default chain when absent. */
  profile: z.string().min(1).optional(),
  imdsV2: z.boolean().optional(),
  architecture: z.enum(['x86_64', 'arm64']).optional(),
  bootMode: z.enum(['uefi', 'uefi-preferred', 'legacy-bios']).optional(),
  /** `v2.0` requires IMDSv2 on instances launched from the image. */
  imdsSupport: z.literal('v2.0').optional(),
  enaSupport: z.boolean().default(true),
  sriovNetSupport: z.literal('simple').default('simple'),
  rootDeviceName: z.string().regex(/^\/dev\/[a-z0-9]+$/, 'a device name like /dev/sda1'),
  tpmSupport: z.literal('v2.0').optional(),
});

export interface AwsImage {
  partition: z.infer<typeof partition>;
  profile?: string;
  architecture: AwsArchitecture;
  bootMode: 'uefi' | 'uefi-preferred' | 'legacy-bios';
  imdsSupport?: 'v2.0';
  enaSupport: boolean;
  sriovNetSupport?: 'simple';
  rootDeviceName: string;
  tpmSupport?: 'v2.0';
}

/** The whole registration of a target from what the config and the system said; a usage error otherwise. */
export function completeImage(
  plan: Pick<TargetPlan, 'name' | 'key' | 'architecture' | 'settings'>,
): AwsImage {
  const result = AwsImageInput.safeParse(plan.settings);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new PlumeError(
      'usage',
      `target ${plan.name} of ${plan.key}: aws setting ${issue.path.join('.')}: ${issue.message}`,
      'fix the config file (or the system module that planned it)',
    );
  }
  const { imdsV2, ...s } = result.data;
  const architecture = awsArchitecture(plan.architecture)!;
  if (s.architecture && s.architecture !== architecture)
    throw new PlumeError(
      'usage',
      `target ${plan.name} of ${plan.key} registers ${s.architecture} images of a ${plan.architecture} build`,
    );
  return {
    partition: s.partition,
    ...(s.profile ? { profile: s.profile } : {}),
    architecture,
    bootMode: s.bootMode ?? defaultBootMode(architecture),
    ...((s.imdsSupport ?? (imdsV2 ? 'v2.0' : undefined)) ? { imdsSupport: 'v2.0' as const } : {}),
    enaSupport: s.enaSupport,
    sriovNetSupport: s.sriovNetSupport,
    rootDeviceName: s.rootDeviceName,
    ...(s.tpmSupport ? { tpmSupport: s.tpmSupport } : {}),
  };
}

const parsed = new WeakMap<object, AwsImage>();

/** The registration settings of a planned target, validated once per plan. */
export function awsImage(plan: TargetPlan): AwsImage {
  let image = parsed.get(plan);
  if (!image) parsed.set(plan, (image = completeImage(plan)));
  return image;
}
