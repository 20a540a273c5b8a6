import type { OwnedImage } from '../providers/types.js';
import type { LifecyclePolicy } from './policy.js';

const DAY_MS = 86_400_000;
/**
 * A deprecation due within this long counts as done: AWS refuses times less than about a minute ahead and
 * rounds to the minute, so the deprecation a prune asks for "now" lands a little after now.
 */
const DEPRECATION_SLACK_MS = 10 * 60_000;

/** A stream's key: what OwnedImage.stream holds and prune groups by. */
export function streamKey(s: { system: string; channel: string; arch: string; imageType?: string }): string {
  return [s.system, s.channel, s.arch, ...(s.imageType ? [s.imageType] : [])].join('/');
}

export type Action = 'deprecate' | 'delete' | 'keep';

export interface Decided {
  image: OwnedImage;
  action: Action;
  /** Why, in words a release engineer reads in `--dry-run` and the journal. */
  reason: string;
}

export interface StreamDecision {
  deprecate: Decided[];
  delete: Decided[];
  keep: Decided[];
}

/** What the stream's newest release record names: its release key and its images' ids. */
export interface NewestRecord {
  release: string;
  ids: string[];
}

function days(ms: number): number {
  return Math.floor(ms / DAY_MS);
}

function isoDay(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * What to do with one stream's images now. Pure: the same images, record, policy and time give the same
 * answer, which is what `--dry-run` prints and what a resumed prune re-derives.
 *
 * Releases (all images of one build, every location and variant) are ranked newest first by build date;
 * the newest `keepNewest` and the one the newest release record names are kept untouched. An older image is
 * deleted when the policy says so and nothing protects it (GA, shared with accounts, launched lately), else
 * deprecated when the policy says so and it is not deprecated yet, else kept.
 */
export function decide(
  images: readonly OwnedImage[],
  policy: LifecyclePolicy,
  now: number,
  newest?: NewestRecord,
): StreamDecision {
  const builtAt = new Map<string, number>();
  for (const i of images) builtAt.set(i.release, Math.max(builtAt.get(i.release) ?? 0, i.builtAt));
  const ranked = [...builtAt.entries()]
    .sort((a, b) => b[1] - a[1] || (b[0] < a[0] ? -1 : b[0] > a[0] ? 1 : 0))
    .map(([release]) => release);
  const rank = new Map(ranked.map((r, i) => [r, i]));
  const recordIds = new Set(newest?.ids ?? []);
  const out: StreamDecision = { deprecate: [], delete: [], keep: [] };
  const sorted = [...images].sort(
    (a, b) =>
      rank.get(a.release)! - rank.get(b.release)! ||
      a.location.localeCompare(b.location) ||
      (a.variant ?? '').localeCompare(b.variant ?? '') ||
      a.id.localeCompare(b.id),
  );
  for (const image of sorted) {
    const r = rank.get(image.release)!;
    const age = days(now - image.builtAt);
    const put = (action: Action, reason: string) => out[action].push({ image, action, reason });
    if (r < policy.keepNewest) {
      put('keep', `one of the newest ${policy.keepNewest} releases of the stream (#${r + 1})`);
      continue;
    }
    if (recordIds.has(image.id) || image.release === newest?.release) {
      put('keep', 'named in the newest release record of the stream');
      continue;
    }
    const deleteWhy =
      policy.deleteAfterDays && age >= policy.deleteAfterDays
        ? `built ${age} days ago (${isoDay(image.builtAt)}), delete after ${policy.deleteAfterDays}`
        : policy.deleteBeyondNewest
          ? `release #${r + 1} of the stream, beyond the newest ${policy.keepNewest}`
          : undefined;
    let protectedWhy: string | undefined;
    if (deleteWhy) {
      const launchedDays =
        image.lastLaunchedAt !== undefined ? days(now - image.lastLaunchedAt) : Number.POSITIVE_INFINITY;
      if (policy.ga && !policy.deleteGa) protectedWhy = 'a GA release: never deleted (delete_ga = false)';
      else if (image.sharedWith.length > 0 && !policy.deleteShared)
        protectedWhy = `shared with ${image.sharedWith.join(', ')} (delete_shared = false)`;
      else if (policy.keepLaunchedWithinDays && launchedDays < policy.keepLaunchedWithinDays)
        protectedWhy = `launched on ${isoDay(image.lastLaunchedAt!)}, within ${policy.keepLaunchedWithinDays} days`;
      else {
        put('delete', deleteWhy);
        continue;
      }
    }
    const deprecateWhy =
      policy.deprecateAfterDays && age >= policy.deprecateAfterDays
        ? `built ${age} days ago (${isoDay(image.builtAt)}), deprecate after ${policy.deprecateAfterDays}`
        : policy.deprecateSuperseded && r > 0
          ? `superseded by ${ranked[0]}`
          : undefined;
    const deprecated = image.deprecatedAt !== undefined && image.deprecatedAt <= now + DEPRECATION_SLACK_MS;
    const kept = protectedWhy ? `not deleted: ${protectedWhy}` : undefined;
    if (deprecateWhy && !deprecated) put('deprecate', kept ? `${deprecateWhy}; ${kept}` : deprecateWhy);
    else if (deprecated)
      put('keep', kept ? `deprecated; ${kept}` : `deprecated on ${isoDay(image.deprecatedAt!)}`);
    else put('keep', kept ?? `built ${age} days ago, within the policy`);
  }
  return out;
}
