import { readFile, writeFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { compare, iamAction, policyActions, sourceActions } from '../support/iam.js';
import { runCli, startWorld, type World } from '../support/world.js';

/**
 * docs/iam-policy.json lists exactly the AWS actions plume uses: the ones the code names, and every one it
 * calls in releases that take every path (regions = "all", sharing with an account, deprecation, a failed
 * copy repaired). The whole suite's calls are checked against it too (test/support/aws-actions.ts).
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
});
afterAll(async () => {
  await world?.close();
});

describe('the IAM policy in docs/', { timeout: 180_000 }, () => {
  it('allows exactly the actions the code names', () => {
    const named = sourceActions();
    expect(named.size).toBeGreaterThan(10);
    expect([...named].sort()).toEqual([...policyActions()].sort());
  });

  it('allows every action releases on every path call, and each of its actions is called', async () => {
    // Deprecation is counted from the compose date, and AWS refuses a time in the past: a compose of today.
    const date = new Date().toISOString().slice(0, 10).replaceAll('-', '');
    const compose = await world.compose({ rawSize: 8 * 2 ** 20, date });
    const args = ['--system', 'fedora', '--channel', 'cloud', '--arch', 'x86_64', '--compose', compose.url];
    const text = await readFile(world.configPath, 'utf8');
    await writeFile(
      world.configPath,
      text
        .replace(/^regions = .*$/m, 'regions = "all"')
        .replace('[aws]\n', '[aws]\nshare_with = ["123456789012"]\ndeprecate_after_days = 30\n'),
    );
    // Every region the account has: DescribeRegions (a dry run, so nothing is copied to all 38).
    const dry = await runCli(
      'plume',
      ['release', ...args, '--dry-run', '--config', world.configPath],
      world.env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('ap-southeast-2');

    await writeFile(
      world.configPath,
      (await readFile(world.configPath, 'utf8')).replace(
        'regions = "all"',
        `regions = ${JSON.stringify(REGIONS)}`,
      ),
    );
    // A copy that ends `failed` is deregistered, its snapshot deleted, and copied again by the repair.
    world.emulator.addFault({ operation: 'CopyImage', region: 'eu-west-1', kind: 'image-failed', times: 1 });
    const res = await runCli(
      'plume',
      ['release', ...args, '--config', world.configPath, '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).status).toBe('complete');
    const inv = new Inspector(world.emulator.endpoint);
    const eu = await inv.images('eu-west-1');
    inv.destroy();
    expect(eu.every((i) => i.DeprecationTime)).toBe(true);

    const called = new Set(world.emulator.calls().map(iamAction));
    const { missing, unused } = compare(called);
    expect(missing, 'actions called but not in docs/iam-policy.json').toEqual([]);
    expect(unused, 'actions in docs/iam-policy.json these releases never called').toEqual([]);
  });
});
