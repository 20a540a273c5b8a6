import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import type { Architecture, TargetPlan, TargetSettings } from '../../plan.js';
import { commonFromToml } from '../module.js';

/**
 * Google Compute Engine's words for what a target is: a project, the Cloud Storage bucket the image's
 * tarball is staged in, the storage locations that hold the image, families, guest OS features, and the
 * principals an image is shared with. Config tables (`[gcp]`, and `gcp` tables systems give) are validated
 * here, and so is the `settings` section of a planned GCE target.
 */

/** RFC 1035, as GCE requires of image and family names. */
export const GCE_NAME = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;
export const project = z
  .string()
  .regex(/^[a-z][-a-z0-9]{4,28}[a-z0-9]$/, 'a GCP project id like my-images-123');
export const bucket = z.string().regex(/^[a-z0-9][-a-z0-9_.]{1,220}[a-z0-9]$/, 'a Cloud Storage bucket name');
/** Multi-regions (us, eu, asia) and regions (us-central1), as `storageLocations` takes them. */
export const storageLocation = z
  .string()
  .regex(/^[a-z]+(-[a-z]+\d+)?$/, 'a storage location like us or us-central1');
/** IAM principals an image can be shared with. */
export const principal = z
  .string()
  .regex(
    /^(user|group|serviceAccount|domain):[^\s]+$|^allAuthenticatedUsers$/,
    'an IAM principal like group:cloud@example.org',
  );

export const GUEST_OS_FEATURES = [
  'UEFI_COMPATIBLE',
  'VIRTIO_SCSI_MULTIQUEUE',
  'GVNIC',
  'SEV_CAPABLE',
  'SEV_SNP_CAPABLE',
  'SEV_LIVE_MIGRATABLE',
  'SEV_LIVE_MIGRATABLE_V2',
  'TDX_CAPABLE',
  'IDPF',
  'MULTI_IP_SUBNET',
  'SECURE_BOOT',
  'WINDOWS',
] as const;

/** Where and how a target publishes, as a config table writes it: every key optional. */
export const GcpTargetToml = z.strictObject({
  project: project.optional(),
  bucket: bucket.optional(),
  storage_locations: z.array(storageLocation).min(1).optional(),
  visibility: z.enum(['public', 'private']).optional(),
  share_with: z.array(principal).optional(),
  json_key: z.string().min(1).optional(),
  licenses: z.array(z.string().min(1)).optional(),
  deprecate_after_days: z.number().int().nonnegative().optional(),
});
export type GcpTargetToml = z.infer<typeof GcpTargetToml>;

/** The GCE-specific part of target settings (`TargetSettings.settings`). */
export interface GcpTargetExtras {
  project?: string;
  bucket?: string;
  jsonKey?: string;
  licenses?: string[];
  storageLocations?: string[];
}

export function fromToml(t: GcpTargetToml): Partial<TargetSettings> & { settings: GcpTargetExtras } {
  const out: Partial<TargetSettings> & { settings: GcpTargetExtras } = { settings: {} };
  if (t.project) out.settings.project = t.project;
  if (t.bucket) out.settings.bucket = t.bucket;
  if (t.json_key) out.settings.jsonKey = t.json_key;
  if (t.licenses) out.settings.licenses = t.licenses;
  if (t.storage_locations) out.settings.storageLocations = t.storage_locations;
  Object.assign(out, commonFromToml(t));
  return out;
}

/** GCE's architecture names. */
export const GCE_ARCH: Record<Architecture, 'X86_64' | 'ARM64'> = { x86_64: 'X86_64', aarch64: 'ARM64' };

const GcpImageInput = z.strictObject({
  project,
  bucket,
  jsonKey: z.string().min(1).optional(),
  family: z.string().regex(GCE_NAME, 'a GCE family name (lowercase letters, digits, hyphens)'),
  guestOsFeatures: z.array(z.enum(GUEST_OS_FEATURES)).default([]),
  licenses: z.array(z.string().min(1)).default([]),
  storageLocations: z.array(storageLocation).min(1),
  architecture: z.enum(['X86_64', 'ARM64']).optional(),
  /**
   * Images of the target are found by this prefix rather than by their whole name: for names that carry
   * the day they were first published (mantle's Container Linux names), so a later run finds that image.
   */
  namePrefix: z.string().regex(GCE_NAME).optional(),
});

export interface GcpImage {
  project: string;
  bucket: string;
  jsonKey?: string;
  family: string;
  guestOsFeatures: string[];
  licenses: string[];
  storageLocations: string[];
  architecture: 'X86_64' | 'ARM64';
  namePrefix?: string;
}

/** The whole GCE section of a planned target from what the config and the system said; a usage error otherwise. */
export function completeImage(
  plan: Pick<TargetPlan, 'name' | 'key' | 'architecture' | 'settings' | 'images'>,
): GcpImage {
  const result = GcpImageInput.safeParse(plan.settings);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    throw new PlumeError(
      'usage',
      `target ${plan.name} of ${plan.key}: gcp setting ${issue.path.join('.') || '(all)'}: ${issue.message}`,
      issue.path[0] === 'project' || issue.path[0] === 'bucket'
        ? `set ${String(issue.path[0])} in [gcp] of the config file`
        : 'fix the config file (or the system module that planned it)',
    );
  }
  for (const image of plan.images)
    if (!GCE_NAME.test(image.name))
      throw new PlumeError(
        'usage',
        `target ${plan.name} of ${plan.key}: ${JSON.stringify(image.name)} is not a GCE image name`,
        'GCE names are lowercase letters, digits and hyphens, a letter first, at most 63 characters',
      );
  const architecture = GCE_ARCH[plan.architecture];
  if (result.data.architecture && result.data.architecture !== architecture)
    throw new PlumeError(
      'usage',
      `target ${plan.name} of ${plan.key} creates ${result.data.architecture} images of a ${plan.architecture} build`,
    );
  return { ...result.data, architecture };
}

const parsed = new WeakMap<object, GcpImage>();

export function gcpImage(plan: TargetPlan): GcpImage {
  let image = parsed.get(plan);
  if (!image) parsed.set(plan, (image = completeImage(plan)));
  return image;
}
