import { z } from 'zod';
import { PlumeError } from '../../shared/errors.js';
import { parseSettings } from '../../shared/toml.js';

/**
 * What happens to a stream's images as they age: `[lifecycle.SYSTEM.CHANNEL]` in the config, over the
 * built-in defaults below. A *stream* is one channel's line of releases for one architecture and image type
 * on one provider target: each new release of it supersedes the last.
 */
export const LifecyclePolicyToml = z
  .strictObject({
    /** Days after an image's build date when it is marked deprecated; 0: never by age. */
    deprecate_after_days: z.number().int().min(0).max(3650).optional(),
    /** Deprecate an image as soon as a newer release of its stream exists. */
    deprecate_superseded: z.boolean().optional(),
    /** Days after the build date when an image is deleted; 0: never by age. */
    delete_after_days: z.number().int().min(0).max(3650).optional(),
    /**
     * The newest releases of a stream that are never deprecated or deleted, whatever their age. At least
     * one: the newest release of a stream is what its users launch.
     */
    keep_newest: z.number().int().min(1).max(1000).optional(),
    /** Delete whatever is not among the newest `keep_newest` releases, whatever its age ("keep the newest K"). */
    delete_beyond_newest: z.boolean().optional(),
    /** The channel publishes general-availability releases (a stable channel, not nightlies). */
    ga: z.boolean().optional(),
    /** Whether images of a GA channel may be deleted at all (never, unless this says so). */
    delete_ga: z.boolean().optional(),
    /** Whether an image shared with specific accounts (launch permission) may be deleted. */
    delete_shared: z.boolean().optional(),
    /** An image launched within these days (AWS's lastLaunchedTime) is not deleted; 0 ignores launches. */
    keep_launched_within_days: z.number().int().min(0).max(3650).optional(),
  })
  .refine(
    (p) => !p.delete_after_days || !p.deprecate_after_days || p.delete_after_days >= p.deprecate_after_days,
    { message: 'delete_after_days must not be less than deprecate_after_days' },
  );
export type LifecyclePolicyToml = z.infer<typeof LifecyclePolicyToml>;

/** `[lifecycle]`: `[lifecycle.SYSTEM.CHANNEL]` tables, validated when a stream's policy is asked for. */
export const LifecycleConfig = z.record(z.string(), z.record(z.string(), z.unknown())).default({});

export interface LifecyclePolicy {
  deprecateAfterDays: number;
  deprecateSuperseded: boolean;
  /** 0: never deleted by age. */
  deleteAfterDays: number;
  keepNewest: number;
  deleteBeyondNewest: boolean;
  ga: boolean;
  deleteGa: boolean;
  deleteShared: boolean;
  keepLaunchedWithinDays: number;
}

/**
 * When nothing is configured: nothing is deprecated or deleted (a stream nobody wrote a policy for keeps
 * everything, as plume always did), shared and recently launched images are safe.
 */
export const NO_POLICY: LifecyclePolicy = {
  deprecateAfterDays: 0,
  deprecateSuperseded: false,
  deleteAfterDays: 0,
  keepNewest: 1,
  deleteBeyondNewest: false,
  ga: false,
  deleteGa: false,
  deleteShared: false,
  keepLaunchedWithinDays: 7,
};

function fromToml(base: LifecyclePolicy, t: LifecyclePolicyToml): LifecyclePolicy {
  return {
    deprecateAfterDays: t.deprecate_after_days ?? base.deprecateAfterDays,
    deprecateSuperseded: t.deprecate_superseded ?? base.deprecateSuperseded,
    deleteAfterDays: t.delete_after_days ?? base.deleteAfterDays,
    keepNewest: t.keep_newest ?? base.keepNewest,
    deleteBeyondNewest: t.delete_beyond_newest ?? base.deleteBeyondNewest,
    ga: t.ga ?? base.ga,
    deleteGa: t.delete_ga ?? base.deleteGa,
    deleteShared: t.delete_shared ?? base.deleteShared,
    keepLaunchedWithinDays: t.keep_launched_within_days ?? base.keepLaunchedWithinDays,
  };
}

/**
 * The policy of one system's channel: the system's own defaults (`System.lifecycleDefaults`), then
 * `[lifecycle.SYSTEM.CHANNEL]` key by key. A wrong table is a usage error naming the key as the config file
 * spells it.
 */
export function policyFor(
  lifecycle: Record<string, Record<string, unknown>>,
  system: string,
  channel: string,
  defaults: Record<string, LifecyclePolicyToml> = {},
): LifecyclePolicy {
  const builtin = defaults[channel];
  let policy = builtin ? fromToml(NO_POLICY, builtin) : NO_POLICY;
  const table = lifecycle[system]?.[channel];
  if (table !== undefined) {
    if (typeof table !== 'object' || table === null || Array.isArray(table))
      throw new PlumeError(
        'usage',
        `config: lifecycle.${system}.${channel}: expected a table`,
        'fix the config file',
      );
    const parsed = parseSettings(LifecyclePolicyToml, table, `lifecycle.${system}.${channel}`);
    policy = fromToml(policy, parsed);
    if (policy.deleteAfterDays && policy.deprecateAfterDays > policy.deleteAfterDays)
      throw new PlumeError(
        'usage',
        `config: lifecycle.${system}.${channel}: delete_after_days (${policy.deleteAfterDays}) is less than deprecate_after_days (${policy.deprecateAfterDays})`,
        'fix the config file',
      );
  }
  return policy;
}

/** Every configured table, validated at once (so a bad one fails at start, not at the first prune). */
export function checkLifecycleConfig(lifecycle: Record<string, Record<string, unknown>>): void {
  for (const [system, channels] of Object.entries(lifecycle))
    for (const channel of Object.keys(channels)) policyFor(lifecycle, system, channel);
}

/** One line a person reads: what the policy does. */
export function describePolicy(p: LifecyclePolicy): string {
  const dep = [
    p.deprecateAfterDays ? `after ${p.deprecateAfterDays} days` : '',
    p.deprecateSuperseded ? 'when superseded' : '',
  ].filter(Boolean);
  const del =
    p.ga && !p.deleteGa
      ? 'never (GA)'
      : [
          p.deleteAfterDays ? `after ${p.deleteAfterDays} days` : '',
          p.deleteBeyondNewest ? `beyond the newest ${p.keepNewest}` : '',
        ]
          .filter(Boolean)
          .join(' or ') || 'never';
  return `deprecate ${dep.length ? dep.join(' or ') : 'never'}; delete ${del}; keep the newest ${p.keepNewest}${p.deleteShared ? '' : '; shared images kept'}${p.keepLaunchedWithinDays ? `; images launched within ${p.keepLaunchedWithinDays} days kept` : ''}`;
}
