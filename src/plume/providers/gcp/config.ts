import { z } from 'zod';
import { bucket, principal, project, storageLocation } from './settings.js';

/**
 * `[gcp]`: the defaults of every GCE target (a system's `gcp` tables say what differs), and how plume talks
 * to Google Cloud. The section's presence enables GCE; `enabled = false` keeps it configured but unused.
 */
export const GcpConfig = z.strictObject({
  enabled: z.boolean().default(true),
  /** The project the images are created in (required to publish). */
  project: project.optional(),
  /** The Cloud Storage bucket the tarball is staged in until the image exists (required to publish). */
  bucket: bucket.optional(),
  /** Where GCE keeps the image's data: multi-regions (us, eu, asia) or regions. */
  storage_locations: z.array(storageLocation).min(1).default(['us']),
  visibility: z.enum(['public', 'private']).default('public'),
  /** Principals to share images with besides (or instead of) all authenticated users. */
  share_with: z.array(principal).default([]),
  /** A service account's JSON key file (mantle's --gce-json-key); Application Default Credentials otherwise. */
  json_key: z.string().min(1).optional(),
  licenses: z.array(z.string().min(1)).default([]),
  deprecate_after_days: z.number().int().nonnegative().default(0),
  /** API roots, for a local emulator; Google's otherwise. */
  compute_endpoint: z.url().optional(),
  storage_endpoint: z.url().optional(),
  /** Bytes per resumable-upload request (Cloud Storage wants multiples of 256 KiB). */
  upload_chunk_mib: z.number().int().min(1).max(1024).default(32),
  max_attempts: z.number().int().min(1).max(30).default(8),
  retry_base_ms: z.number().int().positive().default(500),
  retry_max_ms: z.number().int().positive().default(30_000),
  request_timeout_seconds: z.number().positive().default(120),
  operation_wait_minutes: z.number().positive().default(60),
  poll_min_ms: z.number().int().positive().default(2000),
  poll_max_ms: z.number().int().positive().default(15_000),
});
export type GcpConfig = z.infer<typeof GcpConfig>;
