import { z } from 'zod';
import { account, partition, region, volumeType } from './settings.js';

/**
 * `[aws]`: the defaults of every AWS target (a system's environments, channels and partitions say what
 * differs), and how plume talks to AWS (endpoint, concurrency, retries, timeouts, waits).
 */
export const AwsConfig = z.strictObject({
  /** Publish to AWS when a command line or joystick names no platform. */
  enabled: z.boolean().default(true),
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
  /** An upload's lease on its snapshot (renewed every third): a second run of the release waits while it is live. */
  upload_lease_seconds: z.number().int().min(5).max(3600).default(30),
});
export type AwsConfig = z.infer<typeof AwsConfig>;
