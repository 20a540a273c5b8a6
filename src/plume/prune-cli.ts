import { EXIT, PlumeError } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import type { PlumeConfig } from './config.js';
import { checkLifecycleConfig, policyFor, type LifecyclePolicyToml } from './lifecycle/policy.js';
import type { Overrides, ProviderHooks } from './providers/module.js';
import { PROVIDERS, providerModule } from './providers/registry.js';
import type { StreamSelector } from './providers/types.js';
import {
  executePrune,
  formatPrunePlan,
  newestRecords,
  planPrune,
  type PrunePlan,
  type PruneResult,
  type PruneSource,
} from './prune.js';
import type { TargetRecord } from './record.js';
import type { PruneActionState, PruneJournal } from './state/prune-journal.js';
import type { SystemRegistry } from './systems/registry.js';

export interface PruneOptions {
  system?: string;
  channel?: string;
  arch?: string;
  imageType?: string;
  platform?: string[];
  now?: string;
}

/** The stream selector of `plume prune`, checked against the system's channels and arches. */
export function pruneSelector(o: PruneOptions, registry: SystemRegistry): StreamSelector {
  if (!o.system) throw new PlumeError('usage', '--system is required', 'see `plume systems` for the choices');
  if (!o.channel)
    throw new PlumeError('usage', '--channel is required', 'see `plume systems` for the channels');
  const system = registry.get(o.system);
  const channels = system.channels().map((c) => c.name);
  if (!channels.includes(o.channel))
    throw new PlumeError(
      'usage',
      `${system.name} has no channel ${JSON.stringify(o.channel)}`,
      `choose among: ${channels.join(', ')}`,
    );
  if (o.arch && !system.arches().includes(o.arch))
    throw new PlumeError(
      'usage',
      `${system.name} has no arch ${JSON.stringify(o.arch)}`,
      `choose among: ${system.arches().join(', ')}`,
    );
  return {
    system: system.name,
    channel: o.channel,
    ...(o.arch ? { arch: o.arch } : {}),
    ...(o.imageType ? { imageType: o.imageType } : {}),
  };
}

/** `--now`: when the policy is evaluated (reproducible dry runs, simulations); the clock otherwise. */
export function pruneNow(now: string | undefined): number {
  if (now === undefined) return Date.now();
  const t = Date.parse(now);
  if (Number.isNaN(t))
    throw new PlumeError('usage', `--now must be an ISO date or time, not ${JSON.stringify(now)}`);
  return t;
}

/** The providers a prune looks at: those named, else every enabled one that can prune. */
export function pruneSources(
  config: PlumeConfig,
  platforms: string[] | undefined,
  overrides: Overrides,
  hooks?: ProviderHooks,
): (PruneSource & { close?: () => void })[] {
  const modules =
    platforms && platforms.length > 0
      ? platforms.map((p) => {
          const m = providerModule(p);
          if (!m.pruner)
            throw new PlumeError(
              'usage',
              `plume prune does not support ${p} yet`,
              `prune with --platform ${PROVIDERS.filter((x) => x.pruner !== undefined)
                .map((x) => x.name)
                .join(', ')}`,
            );
          return m;
        })
      : PROVIDERS.filter((m) => m.pruner && m.enabled(config));
  if (modules.length === 0)
    throw new PlumeError(
      'usage',
      'no enabled provider can prune',
      'enable [aws], [gcp] or [azure], or name one with --platform',
    );
  return modules.map((m) => ({ name: m.name, ...m.pruner!(config, overrides, hooks) }));
}

/** Plan a prune for one selector and, unless a dry run, carry it out. Shared by the CLI and joystick. */
export async function prune(args: {
  config: PlumeConfig;
  selector: StreamSelector;
  sources: PruneSource[];
  /** Release records to find each stream's newest in (the CLI's journal, joystick's jobs). */
  records: TargetRecord[] | (() => Promise<TargetRecord[]>);
  journal: PruneJournal;
  now: number;
  dryRun: boolean;
  log: Logger;
  signal?: AbortSignal;
  onDone?: (action: PruneActionState) => Promise<void> | void;
  /** The system's own policy per channel (`System.lifecycleDefaults`), under what the config says. */
  defaults?: Record<string, LifecyclePolicyToml>;
}): Promise<{ plan: PrunePlan; result?: PruneResult }> {
  checkLifecycleConfig(args.config.lifecycle);
  const ctx = { log: args.log, emit: () => {}, ...(args.signal ? { signal: args.signal } : {}) };
  const plan = await planPrune(
    args.selector,
    args.sources,
    (s) => policyFor(args.config.lifecycle, s.system, s.channel, args.defaults),
    newestRecords(typeof args.records === 'function' ? await args.records() : args.records),
    args.journal,
    args.now,
    ctx,
  );
  if (args.dryRun) return { plan };
  const result = await executePrune(plan, args.sources, args.journal, ctx, args.onDone);
  return { plan, result };
}

/** One line per outcome, and the exit status: partial when anything failed or a location was unreachable. */
export function pruneSummary(result: PruneResult): { lines: string[]; code: number } {
  const lines = [
    `deprecated ${result.deprecated.length}, deleted ${result.deleted.length} (snapshots and other backing: ${result.deleted.reduce((n, a) => n + (a.outcome?.deleted.length ?? 0), 0)} deleted, ${result.deleted.reduce((n, a) => n + (a.outcome?.kept.length ?? 0), 0)} kept in use)`,
  ];
  for (const f of result.failed)
    lines.push(`failed: ${f.kind} ${f.image.provider} ${f.image.location} ${f.image.id}: ${f.error ?? ''}`);
  for (const u of result.unreachable) lines.push(`unreachable: ${u.provider} ${u.location}: ${u.error}`);
  const partial = result.failed.length > 0 || result.unreachable.length > 0;
  if (partial) lines.push('run `plume prune` again to finish: it resumes what is left');
  return { lines, code: partial ? EXIT.partial : EXIT.ok };
}

export { formatPrunePlan };
