import { fail } from './errors.js';

export interface Binding {
  role: string;
  members: string[];
}

export interface Policy {
  version: number;
  etag: string;
  bindings: Binding[];
}

const MEMBER =
  /^(?:allUsers|allAuthenticatedUsers|(?:user|group|serviceAccount|domain|principal|principalSet):\S+)$/;

function etagOf(n: number): string {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  let i = 0;
  while (i < 5 && b[i] === 0) i++;
  return b.subarray(i).toString('base64');
}

/** A resource's IAM policy as Compute Engine keeps it: an etag that changes with every set. */
export class IamPolicy {
  private version = 1;
  private serial = 1;
  private bindings: Binding[] = [];

  /** getIamPolicy's answer: `{etag: 'ACAB'}` alone for a policy never set, as Compute Engine answers. */
  get(): Record<string, unknown> {
    const policy: Record<string, unknown> = { version: this.version, etag: this.etag };
    if (this.bindings.length) policy.bindings = this.bindings.map((b) => ({ ...b, members: [...b.members] }));
    return policy;
  }

  private get etag(): string {
    return etagOf(this.serial);
  }

  /**
   * setIamPolicy: the request's policy replaces the whole one, if its etag (when given) is the current one;
   * another etag means someone changed the policy since it was read (409, read-modify-write again).
   */
  set(input: unknown): Record<string, unknown> {
    if (typeof input !== 'object' || input === null)
      fail(400, 'invalid', "Invalid value for field 'policy'.");
    const { bindings, etag } = input as { bindings?: unknown; etag?: unknown };
    if (etag !== undefined && etag !== null && etag !== '' && etag !== this.etag)
      fail(
        409,
        'aborted',
        'There were concurrent policy changes. Please retry the whole read-modify-write with exponential backoff.',
      );
    const next: Binding[] = [];
    for (const b of Array.isArray(bindings) ? (bindings as unknown[]) : []) {
      const { role, members } = (b ?? {}) as { role?: unknown; members?: unknown };
      if (
        typeof role !== 'string' ||
        !/^(?:roles|projects\/[^/]+\/roles|organizations\/[^/]+\/roles)\/[\w.]+$/.test(role)
      )
        fail(400, 'badRequest', `Role ${String(role)} is not supported for this resource.`);
      const list = Array.isArray(members) ? (members as unknown[]) : [];
      for (const m of list)
        if (typeof m !== 'string' || !MEMBER.test(m)) fail(400, 'badRequest', `Invalid member: ${String(m)}`);
      if (list.length) next.push({ role, members: [...new Set(list as string[])] });
    }
    this.bindings = next;
    this.serial++;
    return this.get();
  }
}
