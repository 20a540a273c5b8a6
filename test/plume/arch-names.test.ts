import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { formatWebsites, type ReleaseRecord } from '../../src/plume/record.js';
import { REPO } from '../support/world.js';

/**
 * Architectures are named as the distributions name them (Fedora's x86_64 and aarch64) everywhere but in
 * what describes an AWS image as AWS does: the websites file AMIs under `aarch64`, and an `arm64` there
 * lands under a key nobody reads.
 */

function files(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

describe("AWS's architecture names", () => {
  it('appear in the source only inside the AWS provider', () => {
    // Besides the AWS provider: a system defined in a config file may spell its arches as AWS does and name
    // images with {aws_arch} (its config vocabulary), and GCE's own convention for arm64 image families.
    const allowed = [
      'src/plume/providers/aws/',
      'src/plume/systems/generic/index.ts',
      'src/plume/systems/fedora/targets.ts',
    ];
    const outside = files(join(REPO, 'src'))
      .filter((f) => !allowed.some((a) => relative(REPO, f).startsWith(a)))
      .filter((f) => /\barm64\b/.test(readFileSync(f, 'utf8')))
      .map((f) => relative(REPO, f));
    expect(outside).toEqual([]);
  });

  it("are not the websites' keys: plume amis --format websites files aarch64 under aarch64", () => {
    const record = (arch: string, ami: string) =>
      ({
        version: '41',
        arch,
        targets: {
          aws: {
            provider: 'aws',
            images: [{ location: 'us-east-1', variant: 'gp3', name: `n-${arch}`, id: ami }],
            problems: [],
          },
        },
      }) as unknown as ReleaseRecord;
    expect(formatWebsites([record('x86_64', 'ami-1'), record('aarch64', 'ami-2')])).toEqual({
      '41': { x86_64: { 'us-east-1': { gp3: 'ami-1' } }, aarch64: { 'us-east-1': { gp3: 'ami-2' } } },
    });
  });
});
