import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../src/plume/cli.js';

/** `plume prune` refuses bad input in one line, exit 2, before anything reaches a cloud. */

const dir = mkdtempSync(join(tmpdir(), 'plume-prune-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function config(extra = ''): string {
  const path = join(dir, `plume-${Math.random().toString(36).slice(2)}.toml`);
  // An endpoint nobody listens on: a test that got as far as calling AWS would fail, not pass.
  writeFileSync(
    path,
    `[aws]\nendpoint = "http://127.0.0.1:9"\nregions = ["us-east-1"]\n[state]\npath = "${join(dir, 'state.db')}"\n${extra}`,
  );
  return path;
}

async function run(args: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
    stderr += chunk.toString();
    return true;
  });
  const out = vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
  try {
    return { code: await main(['node', 'plume', 'prune', ...args]), stderr };
  } finally {
    err.mockRestore();
    out.mockRestore();
  }
}

describe('plume prune: bad input', () => {
  it.each([
    [['--system', 'fedora'], '--channel is required'],
    [['--channel', 'rawhide'], '--system is required'],
    [['--system', 'fedora', '--channel', 'nightly'], 'fedora has no channel "nightly": choose among:'],
    [['--system', 'fedora', '--channel', 'rawhide', '--arch', 'ppc64'], 'fedora has no arch "ppc64"'],
    [
      ['--system', 'fedora', '--channel', 'rawhide', '--now', 'yesterday'],
      '--now must be an ISO date or time',
    ],
    [['--system', 'fedora', '--channel', 'rawhide', '--platform', 'gcp'], 'prune on gcp needs [gcp] project'],
    [
      ['--system', 'fedora', '--channel', 'rawhide', '--platform', 'azure'],
      'prune on azure needs [azure] subscription, resource_group, gallery and storage_account',
    ],
  ])('%j', async (args, message) => {
    const { code, stderr } = await run([...args, '--config', config(), '--dry-run']);
    expect(code).toBe(2);
    expect(stderr).toContain(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
  });

  it('a bad lifecycle table names its key', async () => {
    const { code, stderr } = await run([
      '--system',
      'fedora',
      '--channel',
      'rawhide',
      '--dry-run',
      '--config',
      config('[lifecycle.fedora.rawhide]\nkeep_newest = 0\n'),
    ]);
    expect(code).toBe(2);
    expect(stderr).toMatch(
      /^plume: error: config: lifecycle\.fedora\.rawhide\.keep_newest: .*fix the config file\n$/,
    );
  });
});
