import { createHash } from 'node:crypto';
import type { TargetPlan } from '../../plan.js';

/**
 * GCE labels: keys and values of lowercase letters, digits, `_` and `-`, at most 63 characters, keys
 * starting with a letter. A plan's tags (Channel, Version, ComposeID...) become labels under these rules, and
 * `plume-release` marks what plume created for which release: the target's key does not fit a label
 * value, so a digest of it does (and the image's description names the key).
 */
export const LABEL_RELEASE = 'plume-release';
/**
 * The system and channel of the release key (its first two parts), as labels: the digest above cannot be
 * searched by prefix, and `plume prune` finds a channel's images by these (never by name).
 */
export const LABEL_SYSTEM = 'plume-system';
export const LABEL_CHANNEL = 'plume-channel';

const MAX = 63;

function labelKey(key: string): string {
  const k = key
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '_')
    .slice(0, MAX);
  return /^[a-z]/.test(k) ? k : `k${k}`.slice(0, MAX);
}

export function labelValue(value: string): string {
  return value
    .toLowerCase()
    .replace(/[^a-z0-9_-]+/g, '-')
    .slice(0, MAX);
}

export function releaseLabel(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 32);
}

export function labelsFor(plan: Pick<TargetPlan, 'key' | 'tags'>): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(plan.tags)) labels[labelKey(k)] = labelValue(v);
  labels[LABEL_RELEASE] = releaseLabel(plan.key);
  const [system, channel] = plan.key.split('/');
  if (system && channel) {
    labels[LABEL_SYSTEM] = labelValue(system);
    labels[LABEL_CHANNEL] = labelValue(channel);
  }
  return labels;
}
