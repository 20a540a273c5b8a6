import type { FaultKind, FaultRule, FaultStat, OneOrMany } from './types.js';

const KINDS: readonly FaultKind[] = [
  'throttle',
  'server-error',
  'latency',
  'drop',
  'drop-after',
  'access-denied',
  'error',
  'image-failed',
];

export interface CallKey {
  service: string;
  operation: string;
  region: string;
}

export interface FaultDecision {
  /** Total delay to apply before acting (latency rules plus the firing rule's own latencyMs). */
  delayMs: number;
  /** The rule that decides the outcome of the call, if any. */
  terminal?: FaultRule & { kind: Exclude<FaultKind, 'latency' | 'image-failed'> };
  /** An `image-failed` rule that fired: the call goes through, the image ends failed. */
  imageFailure?: FaultRule;
}

interface Entry {
  id: string;
  rule: FaultRule;
  matched: number;
  fired: number;
}

/** mulberry32: tiny, fast, and good enough to make probabilistic faults repeatable from a seed. */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function selects(sel: OneOrMany | undefined, value: string): boolean {
  if (sel === undefined) return true;
  return typeof sel === 'string' ? sel === value : sel.includes(value);
}

export function validateRule(input: unknown): FaultRule {
  if (typeof input !== 'object' || input === null) throw new Error('a fault rule must be an object');
  const rule = input as FaultRule;
  if (!KINDS.includes(rule.kind))
    throw new Error(`unknown fault kind ${String(rule.kind)}: use ${KINDS.join(', ')}`);
  for (const key of ['times', 'skip', 'latencyMs', 'status'] as const) {
    const v = rule[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isFinite(v) || v < 0)) {
      throw new Error(`fault rule ${key} must be a non-negative number`);
    }
  }
  if (rule.probability !== undefined && !(rule.probability >= 0 && rule.probability <= 1)) {
    throw new Error('fault rule probability must be between 0 and 1');
  }
  if (rule.kind === 'error' && !rule.code) throw new Error('a fault of kind "error" needs a code');
  return { ...rule };
}

/**
 * The fault rules in the order they were added. Rules are evaluated in that order; `latency` and
 * `image-failed` rules do not end the evaluation (they combine with others), the first other rule that fires
 * decides the call.
 */
export class FaultEngine {
  private entries: Entry[] = [];
  private nextId = 1;
  private rng: () => number;
  private readonly imageOperations: ReadonlySet<string>;

  /**
   * `imageOperations` are the operations whose result is an image (AWS RegisterImage / CopyImage, Azure's
   * gallery image version create): the only ones an `image-failed` rule can apply to. Each emulator names
   * its own; the rest of the engine knows nothing about any cloud.
   */
  constructor(
    private readonly seed: number,
    imageOperations: Iterable<string> = [],
  ) {
    this.rng = mulberry32(seed);
    this.imageOperations = new Set(imageOperations);
  }

  add(input: unknown): string {
    const rule = validateRule(input);
    const id = `fault-${this.nextId++}`;
    this.entries.push({ id, rule, matched: 0, fired: 0 });
    return id;
  }

  remove(id: string): boolean {
    const before = this.entries.length;
    this.entries = this.entries.filter((e) => e.id !== id);
    return this.entries.length !== before;
  }

  clear(): void {
    this.entries = [];
  }

  /** Clear the rules and restart the RNG, so a reset emulator replays the same random sequence. */
  reset(): void {
    this.clear();
    this.rng = mulberry32(this.seed);
  }

  stats(): FaultStat[] {
    return this.entries.map((e) => ({ id: e.id, rule: { ...e.rule }, matched: e.matched, fired: e.fired }));
  }

  decide(call: CallKey): FaultDecision {
    const decision: FaultDecision = { delayMs: 0 };
    for (const entry of this.entries) {
      const { rule } = entry;
      if (!selects(rule.service, call.service)) continue;
      if (!selects(rule.operation, call.operation)) continue;
      if (!selects(rule.region, call.region)) continue;
      if (
        rule.kind === 'image-failed' &&
        (!this.imageOperations.has(call.operation) || decision.imageFailure)
      ) {
        continue;
      }
      entry.matched++;
      if (entry.matched <= (rule.skip ?? 0)) continue;
      if (rule.times !== undefined && entry.fired >= rule.times) continue;
      if (rule.probability !== undefined && rule.probability < 1 && this.rng() >= rule.probability) continue;
      entry.fired++;
      if (rule.kind === 'latency') {
        decision.delayMs += rule.latencyMs ?? 1000;
        continue;
      }
      decision.delayMs += rule.latencyMs ?? 0;
      if (rule.kind === 'image-failed') {
        decision.imageFailure = rule;
        continue;
      }
      decision.terminal = rule as FaultDecision['terminal'];
      break;
    }
    return decision;
  }
}
