import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { rehashImage, shrinkXzIndex } from '../support/xz.js';
import { fedoraCloudArgs, runCli, startWorld, type RunResult, type World } from '../support/world.js';

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

function release(compose: string, extra: string[] = [], env = world.env): Promise<RunResult> {
  return runCli('plume', [...fedoraCloudArgs(world, compose), ...extra], env);
}

/** One clear last line, a non-zero exit, and nothing registered, uploaded or public anywhere. */
async function expectCleanFailure(res: RunResult, code: number, line: RegExp): Promise<void> {
  expect(res.code, res.stderr).toBe(code);
  const last = res.stderr.trim().split('\n').pop()!;
  expect(last).toMatch(/^plume: error: /);
  expect(last).toMatch(line);
  const inv = await aws.inventory(REGIONS);
  expect(inv.images).toEqual([]);
  expect(inv.snapshots).toEqual([]);
}

describe('bad input ends with one clear line and nothing left behind', () => {
  it('an unreachable compose host', async () => {
    await expectCleanFailure(
      await release('http://127.0.0.1:9/compose/x/compose'),
      1,
      /cannot fetch http:\/\/127\.0\.0\.1:9\/.*images\.json: .*: check the URL, the network and that the host is up/,
    );
  });

  it('a compose that is not there (404)', async () => {
    await expectCleanFailure(
      await release(`${world.files.url}/no-such-compose/compose`),
      1,
      /not found \(HTTP 404\): .*\/no-such-compose\/compose\/metadata\/images\.json: check the URL and that the compose finished/,
    );
  });

  it('a compose without the requested image', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '32', date: '20200101' });
    const res = await runCli('plume', fedoraCloudArgs(world, compose.url, { arch: 'aarch64' }), world.env);
    await expectCleanFailure(
      res,
      1,
      /compose Fedora-Cloud-32-20200101\.0 has no Cloud-Base raw-xz image for aarch64: its raw-xz images are: Cloud\/Cloud_Base\/x86_64, Server\/Cloud_Base\/ppc64le, Server\/Server\/x86_64$/,
    );
  });

  it('a sha256 that does not match the image', async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '33', date: '20200201' });
    const meta = join(world.dir, 'composes', compose.composePath, 'metadata', 'images.json');
    writeFileSync(meta, readFileSync(meta, 'utf8').replace(compose.images.x86_64!.sha256, 'f'.repeat(64)));
    await expectCleanFailure(
      await release(compose.url),
      1,
      /sha256 mismatch for .*\.raw\.xz: expected f{64}, got [0-9a-f]{64}: the image changed or is corrupt; nothing was registered/,
    );
  });

  it('a truncated xz stream', async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '34', date: '20200301' });
    const dir = join(world.dir, 'composes', compose.composePath);
    const image = join(dir, compose.images.x86_64!.path);
    const whole = readFileSync(image);
    const cut = whole.subarray(0, Math.floor(whole.length * 0.6));
    writeFileSync(image, cut);
    const { createHash } = await import('node:crypto');
    const meta = join(dir, 'metadata', 'images.json');
    writeFileSync(
      meta,
      readFileSync(meta, 'utf8').replace(
        compose.images.x86_64!.sha256,
        createHash('sha256').update(cut).digest('hex'),
      ),
    );
    await expectCleanFailure(
      await release(compose.url),
      1,
      /the image is not a complete xz file \(no xz stream footer\): check that the file is fully written/,
    );
  });

  it('a corrupt xz stream (index intact)', async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '35', date: '20200401' });
    const dir = join(world.dir, 'composes', compose.composePath);
    const image = join(dir, compose.images.x86_64!.path);
    const bytes = readFileSync(image);
    for (let i = 200; i < 260; i++) bytes[i] = bytes[i]! ^ 0xff;
    writeFileSync(image, bytes);
    const { createHash } = await import('node:crypto');
    const meta = join(dir, 'metadata', 'images.json');
    writeFileSync(
      meta,
      readFileSync(meta, 'utf8').replace(
        compose.images.x86_64!.sha256,
        createHash('sha256').update(bytes).digest('hex'),
      ),
    );
    await expectCleanFailure(
      await release(compose.url),
      1,
      /the image is not a valid xz stream \(.*\): the file is truncated or corrupt/,
    );
  });

  it('an image larger than the configured volume', async () => {
    const compose = await world.compose({
      rawSize: 2 ** 30 + 2 ** 20,
      dataFraction: 0.001,
      version: '36',
      date: '20200501',
    });
    await world.writeConfig('volume_size_gib = 1', REGIONS);
    try {
      await expectCleanFailure(
        await release(compose.url),
        1,
        /the image is 1\.00 GiB raw, larger than its 1 GiB volume: raise the volume size/,
      );
    } finally {
      await world.writeConfig('', REGIONS);
    }
  });

  it('a compose on a host that is not allowed is refused before anything is fetched', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '38', date: '20200701' });
    const seen = world.files.requests.length;
    // The same file server under a name that is not in [source] allowed_hosts.
    const url = compose.url.replace('127.0.0.1', 'localhost');
    await expectCleanFailure(
      await release(url),
      1,
      /host localhost:\d+ is not an allowed image source: add it to \[source\] allowed_hosts if it is trusted \(allowed: .*127\.0\.0\.1\)$/,
    );
    expect(world.files.requests.slice(seen)).toEqual([]);
  });

  it('an images.json path that leaves the compose (.., absolute path, absolute URL) is refused unfetched', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '39', date: '20200801' });
    const meta = join(world.dir, 'composes', compose.composePath, 'metadata', 'images.json');
    const original = readFileSync(meta, 'utf8');
    for (const [path, line] of [
      [
        '../../../../etc/passwd.raw.xz',
        /image path "\.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd\.raw\.xz" tries to leave the compose directory$/,
      ],
      ['Cloud/x86_64/images/../../../../../secret.raw.xz', /tries to leave the compose directory$/],
      ['/etc/passwd.raw.xz', /image path "\/etc\/passwd\.raw\.xz" is not relative to the compose$/],
      [
        'https://evil.example/Fedora-Cloud-Base.raw.xz',
        /image path "https:\/\/evil\.example\/Fedora-Cloud-Base\.raw\.xz" is not relative to the compose$/,
      ],
    ] as const) {
      writeFileSync(meta, original.replaceAll(compose.images.x86_64!.path, path));
      const seen = world.files.requests.length;
      await expectCleanFailure(await release(compose.url), 1, line);
      expect(world.files.requests.slice(seen).map((r) => r.path)).toEqual(
        world.files.requests
          .slice(seen)
          .map((r) => r.path)
          .filter((p) => p.endsWith('/metadata/images.json') || p.endsWith('/metadata/composeinfo.json')),
      );
    }
  });

  it('an xz that decodes to more than its index declares is stopped mid-stream', async () => {
    const compose = await world.compose({
      rawSize: 16 * 2 ** 20,
      dataFraction: 1,
      version: '40',
      date: '20200901',
    });
    const dir = join(world.dir, 'composes', compose.composePath);
    const image = join(dir, compose.images.x86_64!.path);
    // One xz block (xz -T1), so the index holds one size to forge.
    execFileSync('sh', [
      '-c',
      `xz -dc '${image}' | xz -T1 -1 -c > '${image}.1' && mv '${image}.1' '${image}'`,
    ]);
    const { declared, actual } = shrinkXzIndex(image, 4);
    expect(declared).toBe(4 * 2 ** 20);
    expect(actual).toBe(16 * 2 ** 20);
    rehashImage(join(dir, 'metadata', 'images.json'), compose.images.x86_64!.sha256, image);
    const puts = () => world.emulator.calls().filter((c) => c.operation === 'PutSnapshotBlock').length;
    const before = puts();
    await expectCleanFailure(
      await release(compose.url),
      1,
      new RegExp(
        `the image decompresses to more than the ${declared} bytes its xz index declares: the file is corrupt or not what its metadata says; nothing was registered$`,
      ),
    );
    // Every block holds data (32 of 512 KiB): the upload stopped near the declared quarter, not at the end.
    expect(puts() - before).toBeLessThan(32 / 2);
  });

  it('an unknown system, channel or arch is a usage error (exit 2)', async () => {
    const compose = `${world.files.url}/x/compose`;
    for (const [args, line] of [
      [['--system', 'gentoo', '--channel', 'cloud'], /unknown system "gentoo": choose one of: /],
      [
        ['--system', 'fedora', '--channel', 'nightly', '--arch', 'x86_64'],
        /unknown channel "nightly" for fedora: choose one of: rawhide, branched, updates, cloud/,
      ],
      [
        ['--system', 'fedora', '--channel', 'cloud', '--arch', 'ppc64le'],
        /unknown arch "ppc64le" for fedora: choose one of: x86_64, aarch64/,
      ],
    ] as const) {
      const res = await runCli(
        'plume',
        ['release', ...args, '--compose', compose, '--config', world.configPath],
        world.env,
      );
      await expectCleanFailure(res, 2, line);
    }
  });

  it('missing credentials', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '37', date: '20200601' });
    const home = await mkdtemp(join(tmpdir(), 'plume-home-'));
    const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...noCreds } = world.env;
    const res = await release(compose.url, [], {
      ...noCreds,
      HOME: home,
      AWS_CONFIG_FILE: join(home, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: join(home, 'none'),
    });
    await expectCleanFailure(
      res,
      1,
      /no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE/,
    );
  });
});
