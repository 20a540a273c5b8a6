import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO_ROOT = new URL('../../', import.meta.url).pathname;
export const POLICY_PATH = join(REPO_ROOT, 'docs', 'iam-policy.json');

interface Policy {
  Statement: { Effect: string; Action: string | string[] }[];
}

/** Every action docs/iam-policy.json allows. */
export function policyActions(): Set<string> {
  const policy = JSON.parse(readFileSync(POLICY_PATH, 'utf8')) as Policy;
  return new Set(
    policy.Statement.filter((s) => s.Effect === 'Allow').flatMap((s) =>
      Array.isArray(s.Action) ? s.Action : [s.Action],
    ),
  );
}

/**
 * The IAM action an API call needs. For EC2, EBS direct and STS the action is the service prefix and the
 * operation name (ec2:CopyImage, ebs:PutSnapshotBlock, sts:GetCallerIdentity).
 */
export function iamAction(call: { service: string; operation: string }): string {
  return `${call.service}:${call.operation}`;
}

/** The IAM action names the code passes to `send(...)` (every AWS call goes through it, naming its action). */
export function sourceActions(dir = join(REPO_ROOT, 'src')): Set<string> {
  const out = new Set<string>();
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.ts')) continue;
    const text = readFileSync(join(entry.parentPath, entry.name), 'utf8');
    for (const m of text.matchAll(/'((?:ec2|ebs|sts|s3|iam|kms):[A-Z][A-Za-z]+)'/g)) out.add(m[1]!);
  }
  return out;
}

/** Actions called that the policy lacks, and policy actions never called. */
export function compare(called: Iterable<string>): { missing: string[]; unused: string[] } {
  const allowed = policyActions();
  const seen = new Set(called);
  return {
    missing: [...seen].filter((a) => !allowed.has(a)).sort(),
    unused: [...allowed].filter((a) => !seen.has(a)).sort(),
  };
}
