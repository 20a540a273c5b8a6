import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startWorld, type World } from '../support/world.js';

/**
 * CopyImage's ClientToken stands for the copy it asks for. The same compose released again under another
 * label (a compose whose metadata carries none, so the label comes from the command line or the message)
 * makes other image names under the same release key: a token made from the key alone would be reused for
 * a different copy, and AWS (and the emulator) answer IdempotentParameterMismatch.
 */

const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;
let aws: Inspector;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  aws = new Inspector(world.emulator.endpoint);
});
afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

describe('the same compose released under two labels', () => {
  it('copies each set of names to every region, no IdempotentParameterMismatch', async () => {
    const compose = await world.compose({
      rawSize: 8 * 2 ** 20,
      version: '29',
      date: '20190101',
      label: null,
      buildName: (arch) => `Fedora-Cloud-Base-29-20190101.0.${arch}`,
    });
    for (const label of ['RC-1.1', 'RC-1.2']) {
      const res = await runCli(
        'plume',
        [...fedoraCloudArgs(world, compose.url), '--label', label, '--volume-types', 'gp3'],
        world.env,
      );
      expect(res.code, res.stderr).toBe(0);
    }
    expect(names(await aws.images('eu-west-1'))).toEqual([
      'Fedora-Cloud-Base-29-1.1.x86_64-hvm-eu-west-1-gp3-0',
      'Fedora-Cloud-Base-29-1.2.x86_64-hvm-eu-west-1-gp3-0',
    ]);
    // Every CopyImage was answered 200: none refused as a mismatch (a 400) and retried into a repair.
    const copies = world.emulator.calls().filter((c) => c.operation === 'CopyImage');
    expect(copies.map((c) => c.status)).toEqual([200, 200]);
  });
});

function names(images: { Name?: string }[]): string[] {
  return images.map((i) => i.Name ?? '').sort();
}
