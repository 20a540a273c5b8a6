import { mapSettled } from '../shared/concurrency.js';
import { errorMessage } from '../shared/errors.js';
import { decide, streamKey, type NewestRecord, type StreamDecision } from './lifecycle/decide.js';
import { describePolicy, type LifecyclePolicy } from './lifecycle/policy.js';
import type { ImagePruner, OwnedImage, ProviderContext, StreamSelector } from './providers/types.js';
import type { TargetRecord } from './record.js';
import {
  actionId,
  type PruneAction,
  type PruneActionState,
  type PruneJournal,
} from './state/prune-journal.js';

/** Locations listed at once, and changes in flight per prune (AWS's EC2 request rates are per region). */
const LIST_CONCURRENCY = 8;
const ACTION_CONCURRENCY = 8;

/** One provider as a prune uses it. */
export interface PruneSource {
  name: string;
  pruner: ImagePruner;
  primary: string;
  /** Empty: every location the account has. */
  locations: string[];
}

export interface StreamPlan {
  stream: string;
  policy: LifecyclePolicy;
  newest?: NewestRecord;
  decision: StreamDecision;
}

export interface ProviderPlan {
  provider: string;
  locations: string[];
  /** Locations that could not be listed: nothing there is touched this run. */
  unreachable: { location: string; error: string }[];
  streams: StreamPlan[];
}

export interface PrunePlan {
  selector: StreamSelector;
  now: number;
  /**
   * Actions a previous run started and did not finish on images no listing shows any more (a delete killed
   * between deregistering and deleting the snapshot): finished first, from what the journal knows.
   */
  unfinished: PruneActionState[];
  /** Unfinished actions on images still listed: this run's own decision about them replaces them. */
  superseded: string[];
  providers: ProviderPlan[];
}

/**
 * The newest release record of each stream, by provider (`aws SYSTEM/CHANNEL/ARCH/IMAGE-TYPE`), from the
 * release journal: whatever it names is never pruned, even when a newer-dated release exists.
 */
export function newestRecords(records: readonly TargetRecord[]): Map<string, NewestRecord> {
  const best = new Map<string, { at: string; record: NewestRecord }>();
  for (const r of records) {
    if (r.status === 'failed' || r.mode !== 'release') continue;
    const [system, channel] = r.plan.key.split('/');
    if (!system || !channel) continue;
    const stream = streamKey({
      system,
      channel,
      arch: r.plan.architecture,
      imageType: r.plan.tags.ImageType,
    });
    // Case-blind: GCE labels, which a GCE image's stream is read from, are lowercase.
    const key = `${r.provider} ${stream}`.toLowerCase();
    if ((best.get(key)?.at ?? '') >= r.finishedAt) continue;
    best.set(key, { at: r.finishedAt, record: { release: r.plan.key, ids: r.images.map((i) => i.id) } });
  }
  return new Map([...best].map(([k, v]) => [k, v.record]));
}

/** List what plume owns of the selected streams everywhere, and decide. Changes nothing. */
export async function planPrune(
  selector: StreamSelector,
  sources: readonly PruneSource[],
  policyOf: (stream: StreamSelector) => LifecyclePolicy,
  newest: Map<string, NewestRecord>,
  journal: PruneJournal,
  now: number,
  ctx: ProviderContext,
): Promise<PrunePlan> {
  const providers: ProviderPlan[] = [];
  for (const source of sources) {
    const locations =
      source.locations.length > 0
        ? source.locations
        : await source.pruner.pruneLocations(source.primary, ctx);
    const listed = await mapSettled(locations, LIST_CONCURRENCY, (l) =>
      source.pruner.listOwned(l, selector, ctx),
    );
    const images: OwnedImage[] = [];
    const unreachable: ProviderPlan['unreachable'] = [];
    listed.forEach((r, i) => {
      if (r.status === 'fulfilled') images.push(...r.value);
      else unreachable.push({ location: locations[i]!, error: errorMessage(r.reason) });
    });
    const byStream = new Map<string, OwnedImage[]>();
    for (const image of images) byStream.set(image.stream, [...(byStream.get(image.stream) ?? []), image]);
    const policy = policyOf(selector);
    const streams = [...byStream.keys()].sort().map((stream) => {
      const record = newest.get(`${source.name} ${stream}`.toLowerCase());
      return {
        stream,
        policy,
        ...(record ? { newest: record } : {}),
        decision: decide(byStream.get(stream)!, policy, now, record),
      };
    });
    providers.push({ provider: source.name, locations, unreachable, streams });
  }
  const names = new Set(sources.map((s) => s.name));
  const listed = new Set(
    providers.flatMap((p) =>
      p.streams.flatMap((st) =>
        [...st.decision.keep, ...st.decision.deprecate, ...st.decision.delete].map(
          (d) => `${p.provider} ${d.image.location} ${d.image.id}`,
        ),
      ),
    ),
  );
  const down = new Set(providers.flatMap((p) => p.unreachable.map((u) => `${p.provider} ${u.location}`)));
  const unfinished: PruneActionState[] = [];
  const superseded: string[] = [];
  for (const a of await journal.unfinished()) {
    const i = a.image;
    if (!names.has(i.provider) || down.has(`${i.provider} ${i.location}`)) continue;
    if (listed.has(`${i.provider} ${i.location} ${i.id}`)) superseded.push(a.id);
    // A deprecation of an image that is gone has nothing left to do; a deletion may have its backing left.
    else if (a.kind === 'delete') unfinished.push(a);
    else superseded.push(a.id);
  }
  return { selector, now, unfinished, superseded, providers };
}

/** What a prune did: every action, by how it ended. */
export interface PruneResult {
  deprecated: PruneActionState[];
  deleted: PruneActionState[];
  failed: PruneActionState[];
  unreachable: { provider: string; location: string; error: string }[];
}

/**
 * Carry a plan out: first what an earlier run left unfinished, then every deprecation and deletion, each
 * written to the journal as started before the cloud is touched and as done after. `onDone` hears each
 * finished action (joystick announces them).
 */
export async function executePrune(
  plan: PrunePlan,
  sources: readonly PruneSource[],
  journal: PruneJournal,
  ctx: ProviderContext,
  onDone?: (action: PruneActionState) => Promise<void> | void,
): Promise<PruneResult> {
  const pruners = new Map(sources.map((s) => [s.name, s.pruner]));
  const result: PruneResult = {
    deprecated: [],
    deleted: [],
    failed: [],
    unreachable: plan.providers.flatMap((p) => p.unreachable.map((u) => ({ provider: p.provider, ...u }))),
  };
  const run = async (action: PruneAction, resumed: boolean) => {
    const id = actionId(action);
    const pruner = pruners.get(action.image.provider)!;
    if (!resumed) await journal.start(action);
    try {
      let outcome;
      if (action.kind === 'deprecate')
        await pruner.deprecate(action.image, new Date(action.at ?? plan.now), ctx);
      else outcome = await pruner.deleteImage(action.image, ctx);
      await journal.done(id, outcome);
      const state: PruneActionState = {
        ...action,
        id,
        status: 'done',
        ...(outcome ? { outcome } : {}),
        updatedAt: new Date().toISOString(),
      };
      (action.kind === 'delete' ? result.deleted : result.deprecated).push(state);
      ctx.log.info(
        {
          provider: action.image.provider,
          location: action.image.location,
          image: action.image.id,
          ...(outcome ? { backingDeleted: outcome.deleted, backingKept: outcome.kept } : {}),
          resumed,
        },
        action.kind === 'delete' ? 'deleted' : 'deprecated',
      );
      await onDone?.(state);
    } catch (err) {
      const error = errorMessage(err);
      await journal.fail(id, error);
      result.failed.push({ ...action, id, status: 'failed', error, updatedAt: new Date().toISOString() });
      ctx.log.error(
        { location: action.image.location, image: action.image.id, err: error },
        `could not ${action.kind}`,
      );
    }
  };
  for (const id of plan.superseded) await journal.done(id);
  // What a killed run started: a deregistered image's snapshot is known only here.
  await mapSettled(plan.unfinished, ACTION_CONCURRENCY, (a) => run(a, true));
  const finished = new Set(plan.unfinished.map((a) => a.id));
  const fresh: PruneAction[] = plan.providers.flatMap((p) =>
    p.streams.flatMap((s) => [
      ...s.decision.deprecate.map((d) => ({
        kind: 'deprecate' as const,
        image: d.image,
        reason: d.reason,
        at: new Date(plan.now).toISOString(),
      })),
      ...s.decision.delete.map((d) => ({ kind: 'delete' as const, image: d.image, reason: d.reason })),
    ]),
  );
  await mapSettled(
    fresh.filter((a) => !finished.has(actionId(a))),
    ACTION_CONCURRENCY,
    (a) => run(a, false),
  );
  return result;
}

/** `plume prune --dry-run`: per provider, stream and location, what would be deprecated and deleted, and why. */
export function formatPrunePlan(plan: PrunePlan): string[] {
  const s = plan.selector;
  const out = [
    `prune ${[s.system, s.channel, s.arch, s.imageType].filter(Boolean).join('/')} as of ${new Date(plan.now).toISOString()}`,
  ];
  if (plan.unfinished.length > 0) {
    out.push(`unfinished from an earlier run (done first):`);
    for (const a of plan.unfinished)
      out.push(`  ${a.kind.padEnd(9)} ${a.image.provider} ${a.image.location} ${a.image.id} ${a.image.name}`);
  }
  for (const p of plan.providers) {
    out.push(`${p.provider}: ${p.locations.length} locations looked in`);
    for (const u of p.unreachable)
      out.push(`  ${u.location}: UNREACHABLE, nothing there is touched: ${u.error}`);
    if (p.streams.length === 0) out.push('  no images plume created for this selection');
    for (const st of p.streams) {
      const d = st.decision;
      const releases = new Set([...d.keep, ...d.deprecate, ...d.delete].map((x) => x.image.release)).size;
      out.push(`  stream ${st.stream}: ${releases} releases; policy: ${describePolicy(st.policy)}`);
      if (st.newest) out.push(`    newest release record: ${st.newest.release}`);
      const all = [...d.delete, ...d.deprecate, ...d.keep.filter((k) => k.reason.includes('not deleted'))];
      const byLocation = new Map<string, typeof all>();
      for (const x of all) byLocation.set(x.image.location, [...(byLocation.get(x.image.location) ?? []), x]);
      for (const location of [...byLocation.keys()].sort()) {
        out.push(`    ${location}:`);
        const order = { delete: 0, deprecate: 1, keep: 2 };
        for (const x of byLocation
          .get(location)!
          .sort((a, b) => order[a.action] - order[b.action] || a.image.name.localeCompare(b.image.name))) {
          const backing =
            x.action === 'delete' && x.image.backing.length ? ` (and ${x.image.backing.join(', ')})` : '';
          out.push(`      ${x.action.padEnd(9)} ${x.image.id} ${x.image.name}${backing}: ${x.reason}`);
        }
      }
      out.push(`    ${d.delete.length} to delete, ${d.deprecate.length} to deprecate, ${d.keep.length} kept`);
    }
  }
  return out;
}
