import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compare } from './iam.js';

/**
 * vitest global setup: every test world writes the AWS actions its emulator saw (test/support/world.ts);
 * when the run ends, each one must be allowed by docs/iam-policy.json, or the run fails naming it. Policy
 * actions the run never called are reported (a focused run calls few; the whole suite calls them all).
 */
export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'plume-aws-actions-'));
  process.env.PLUME_AWS_ACTIONS_DIR = dir;
  return () => {
    const called = new Set<string>();
    for (const file of readdirSync(dir))
      for (const action of JSON.parse(readFileSync(join(dir, file), 'utf8')) as string[]) called.add(action);
    rmSync(dir, { recursive: true, force: true });
    if (called.size === 0) return;
    const { missing, unused } = compare(called);
    if (unused.length > 0)
      console.log(`AWS actions in docs/iam-policy.json that this run never called: ${unused.join(', ')}`);
    if (missing.length > 0) {
      // vitest reports an error thrown here but still exits 0: fail the run explicitly.
      console.error(
        `FAIL: the tests called AWS actions docs/iam-policy.json does not allow: ${missing.join(', ')}; add them to the policy (and to docs/security.md)`,
      );
      process.exitCode = 1;
      return;
    }
    console.log(`AWS actions called by this run: ${called.size}, all in docs/iam-policy.json`);
  };
}
