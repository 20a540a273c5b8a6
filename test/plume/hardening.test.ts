import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { rehashImage } from '../support/xz.js';
import {
  fedoraCloudArgs,
  runCli,
  startCli,
  startWorld,
  type RunResult,
  type World,
} from '../support/world.js';

/**
 * Issue 13: hostile and slow inputs. Each case is run as a person would (the built CLI against the AWS
 * emulator and a local compose host) and ends with one clear line and nothing registered or left behind.
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

function release(compose: string, extra: string[] = []): Promise<RunResult> {
  return runCli('plume', [...fedoraCloudArgs(world, compose), ...extra], world.env);
}

async function expectCleanFailure(res: RunResult, code: number, line: RegExp): Promise<void> {
  expect(res.code, res.stderr).toBe(code);
  const last = res.stderr.trim().split('\n').pop()!;
  expect(last).toMatch(/^plume: error: /);
  expect(last).toMatch(line);
  const inv = await aws.inventory(REGIONS);
  expect(inv.images).toEqual([]);
  expect(inv.snapshots).toEqual([]);
}

/** StartSnapshot calls the emulator saw. */
const snapshotsStarted = () => world.emulator.calls().filter((c) => c.operation === 'StartSnapshot').length;

describe('an image with no data is refused before anything is registered', () => {
  it('a 0-byte raw image', async () => {
    const compose = await world.compose({ rawSize: 0, dataFraction: 0, version: '40', date: '20240101' });
    const before = snapshotsStarted();
    await expectCleanFailure(
      await release(compose.url),
      1,
      /\.raw\.xz holds no data \(all zeros or empty\), less than the 1\.0 MiB an image must have; nothing was registered: check the build/,
    );
    // Known from the xz index: refused before any snapshot was started.
    expect(snapshotsStarted()).toBe(before);
  });

  it('a 64 MiB image of zeros', async () => {
    const compose = await world.compose({
      rawSize: 64 * 2 ** 20,
      dataFraction: 0,
      version: '40',
      date: '20240102',
    });
    await expectCleanFailure(
      await release(compose.url),
      1,
      /\.raw\.xz holds no data \(all zeros or empty\), less than the 1\.0 MiB an image must have; nothing was registered/,
    );
  });

  it("the threshold is the system's, from [images.systems.NAME]", async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '40', date: '20240103' });
    await world.writeConfig('[images.systems.fedora]\nmin_data_mib = 12\n', REGIONS);
    try {
      await expectCleanFailure(
        await release(compose.url),
        1,
        /holds only [\d.]+ MiB of data \(all zeros or empty\), less than the 12\.0 MiB an image must have/,
      );
    } finally {
      await world.writeConfig('', REGIONS);
    }
  });
});

describe('a decompression bomb is bounded by policy, before StartSnapshot', () => {
  it("concatenated zero streams that decode to more than Fedora's 16 GiB limit", async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '40', date: '20240104' });
    const dir = join(world.dir, 'composes', compose.composePath);
    const image = join(dir, compose.images.x86_64!.path);
    // 136 x 128 MiB of zeros after the real image: 17 GiB raw from about 3 MB of xz.
    const zeros = execFileSync('sh', ['-c', 'head -c 134217728 /dev/zero | xz -1 -T1'], {
      maxBuffer: 2 ** 26,
    });
    for (let i = 0; i < 136; i++) appendFileSync(image, zeros);
    expect(readFileSync(image).length).toBeLessThan(8 * 2 ** 20);
    rehashImage(join(dir, 'metadata', 'images.json'), compose.images.x86_64!.sha256, image);
    const before = snapshotsStarted();
    await expectCleanFailure(
      await release(compose.url),
      1,
      /\.raw\.xz needs a 18 GiB volume, more than the 16 GiB allowed; nothing was created: check the image \(a small file that decompresses to this much is a decompression bomb\), or raise \[images\] max_volume_gib/,
    );
    expect(snapshotsStarted()).toBe(before);
  });
});

describe('every fetch has a deadline and a minimum rate', () => {
  it('images.json served at 1 byte/s ends at the document deadline, with one line', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '41', date: '20240201' });
    await writeSourceConfig('document_timeout_seconds = 2');
    world.files.faults.push({ pathSuffix: 'metadata/images.json', bytesPerSecond: 1, times: Infinity });
    const t0 = Date.now();
    try {
      const res = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env, {
        timeoutMs: 120_000,
      });
      await expectCleanFailure(
        res,
        1,
        /cannot fetch http:\/\/127\.0\.0\.1:\d+\/.*\/metadata\/images\.json: .*images\.json: no complete answer within 2 s: check the URL, the network and that the host is up$/,
      );
    } finally {
      world.files.faults.length = 0;
      await world.writeConfig('', REGIONS);
    }
    // Three attempts of 2 s and their backoff, not minutes (a bound, not a timing assertion: the runaway
    // case never ends).
    expect(Date.now() - t0).toBeLessThan(110_000);
  });

  it('an image served at 100 bytes/s is dropped for its rate, resumed, then refused with one line', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '41', date: '20240202' });
    await writeSourceConfig('min_rate_bytes_per_second = 1024\nrate_window_seconds = 1');
    world.files.faults.push({
      pathSuffix: '.raw.xz',
      bytesPerSecond: 100,
      streamOnly: true,
      times: Infinity,
    });
    try {
      const res = await runCli('plume', fedoraCloudArgs(world, compose.url), world.env, {
        timeoutMs: 120_000,
      });
      await expectCleanFailure(
        res,
        1,
        /cannot fetch http:\/\/127\.0\.0\.1:\d+\/.*\.raw\.xz: the image download: \d+ bytes\/s over 1 s, slower than the minimum 1024 bytes\/s: check the URL/,
      );
      // Each stalled attempt was resumed from where it stopped (Range), up to the configured attempts.
      const gets = world.files.requests.filter((r) => r.method === 'GET' && r.path.endsWith('.raw.xz'));
      expect(gets.filter((r) => r.range?.match(/^bytes=\d+-$/)).length).toBe(2);
    } finally {
      world.files.faults.length = 0;
      await world.writeConfig('', REGIONS);
    }
  });
});

describe('redirects', () => {
  it('a redirect to file:// is refused even though the command line may read local files', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '41', date: '20240203' });
    // A local file that parses as a compose's metadata: following the hop would have read it.
    const local = join(world.dir, 'composes', compose.composePath, 'metadata', 'images.json');
    world.files.faults.push({ pathSuffix: 'metadata/images.json', redirectTo: `file://${local}` });
    try {
      const res = await release(compose.url);
      await expectCleanFailure(
        res,
        1,
        /refusing to read local file \S+\/metadata\/images\.json: local files are only read when given on the command line$/,
      );
    } finally {
      world.files.faults.length = 0;
    }
  });
});

/** Rewrite the world's config with extra keys in its [source] table. */
async function writeSourceConfig(keys: string): Promise<void> {
  await world.writeConfig('', REGIONS);
  const { readFile, writeFile } = await import('node:fs/promises');
  const text = await readFile(world.configPath, 'utf8');
  await writeFile(world.configPath, text.replace('[source]\n', `[source]\n${keys}\n`));
}

describe('unknown regions are refused at start', () => {
  it('us-east-9: refused in preflight against DescribeRegions, with one line and nothing created', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '42', date: '20240301' });
    const res = await release(compose.url, ['--regions', 'us-east-1,us-east-9,eu-west-1']);
    await expectCleanFailure(
      res,
      2,
      /unknown AWS region for target aws: us-east-9 \(not among the \d+ regions DescribeRegions lists\): fix the regions \(or base_region\) in the config or --regions$/,
    );
    expect(
      world.emulator.calls().filter((c) => c.operation === 'StartSnapshot' && c.region === 'us-east-9'),
    ).toEqual([]);
  });

  it("with DescribeRegions denied, against the partition's known list", async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '42', date: '20240302' });
    const fault = world.emulator.addFault({
      service: 'ec2',
      operation: 'DescribeRegions',
      kind: 'access-denied',
    });
    try {
      await expectCleanFailure(
        await release(compose.url, ['--regions', 'us-east-1,us-east-9']),
        2,
        /unknown AWS region for target aws: us-east-9 \(not among the \d+ regions plume knows in the aws partition \(DescribeRegions was refused\)\)/,
      );
    } finally {
      world.emulator.removeFault(fault);
    }
  });

  it('joystick run --check names them, connecting to nothing', async () => {
    const { writeJoystickConfig } = await import('../support/joystick.js');
    const config = await writeJoystickConfig(world, {
      prefix: 'x',
      queue: 'x',
      database: `sqlite:///${join(world.dir, 'check.db')}`,
      regions: ['us-east-1', 'us-east-9', 'eu-west-11'],
    });
    const res = await runCli('joystick', ['run', '--check', '--config', config], world.env);
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr.trim().split('\n')).toEqual([
      expect.stringMatching(
        /^joystick: error: unknown AWS regions for target aws: us-east-9, eu-west-11 \(not among the \d+ regions of the aws partition \(channel \w+\)\): fix the regions/,
      ),
    ]);
  });
});

describe('throttling', () => {
  it('throttle_attempts below max_attempts is honoured, each backoff is a WARN line, and the end says throttled', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '43', date: '20240401' });
    await world.writeConfig('throttle_attempts = 2\nthrottle_base_ms = 10\n', REGIONS);
    const fault = world.emulator.addFault({
      service: 'sts',
      operation: 'GetCallerIdentity',
      kind: 'throttle',
    });
    world.emulator.clearCalls();
    try {
      const res = await release(compose.url);
      await expectCleanFailure(
        res,
        1,
        /sts:GetCallerIdentity in us-east-1 was still throttled \(Throttling\) when its attempts ran out: AWS is limiting the request rate: run again later, or raise \[aws\] throttle_attempts/,
      );
      // max_attempts is 6 in this config: throttling stops at its own 2.
      expect(world.emulator.calls().filter((c) => c.operation === 'GetCallerIdentity')).toHaveLength(2);
      const warns = res.stderr
        .split('\n')
        .filter((l) => l.includes('"level":"warn"') && l.includes('AWS is throttling'));
      expect(warns).toHaveLength(1);
      expect(warns[0]).toMatch(
        /"code":"Throttling","attempt":1,"of":2,.*"msg":"AWS is throttling \(attempt 1 of 2\); backing off [\d.]+ s"/,
      );
    } finally {
      world.emulator.removeFault(fault);
      await world.writeConfig('', REGIONS);
    }
  });
});

describe('signals', () => {
  for (const [signal, code] of [
    ['SIGTERM', 143],
    ['SIGINT', 130],
  ] as const)
    it(`${signal} mid-upload: the unfinished snapshot is deleted, the stop recorded, exit ${code}`, async () => {
      const compose = await world.compose({
        rawSize: 16 * 2 ** 20,
        version: '44',
        date: code === 143 ? '20240501' : '20240502',
      });
      // Hold every block in flight, so the signal arrives while the snapshot is being written.
      const hold = world.emulator.addFault({
        service: 'ebs',
        operation: 'PutSnapshotBlock',
        kind: 'latency',
        latencyMs: 4000,
      });
      try {
        const plume = startCli('plume', fedoraCloudArgs(world, compose.url), world.env, {
          timeoutMs: 120_000,
        });
        const end = Date.now() + 60_000;
        while (!plume.output().stderr.includes('"msg":"snapshot started"')) {
          if (Date.now() > end || plume.child.exitCode !== null) throw new Error(plume.output().stderr);
          await new Promise((r) => setTimeout(r, 50));
        }
        plume.child.kill(signal);
        const res = await plume.done;
        expect(res.code, res.stderr).toBe(code);
        const last = res.stderr.trim().split('\n').pop()!;
        expect(last).toBe(
          `plume: interrupted by ${signal} during upload; nothing unfinished was left behind: run the same command again to resume`,
        );
        expect(res.stderr).toMatch(
          new RegExp(`"signal":"${signal}".*"msg":"${signal} received: stopping and cleaning up`),
        );
        const inv = await aws.inventory(REGIONS);
        expect(inv.snapshots).toEqual([]);
        expect(inv.images).toEqual([]);
        // Where it stopped is in the state database.
        const st = await runCli(
          'plume',
          ['status', '--output', 'json', '--config', world.configPath],
          world.env,
        );
        const rows = JSON.parse(st.stdout) as { key: string; status: string; error?: string }[];
        const row = rows.find((r) => r.key.includes('Fedora-Cloud-44'))!;
        expect(row.status).toBe('failed');
        expect(row.error).toBe(`interrupted by ${signal} during upload`);
      } finally {
        world.emulator.removeFault(hold);
      }
    });
});

describe('two runs of the same release at once', () => {
  // Two machines (each its own state database, so no shared release lock; see release-lock.test.ts for
  // one machine): the snapshot's lease tag is what keeps them apart.
  it("on two machines, the second waits for the first one's upload instead of deleting its snapshot", async () => {
    const compose = await world.compose({ rawSize: 16 * 2 ** 20, version: '45', date: '20240601' });
    const slow = world.emulator.addFault({
      service: 'ebs',
      operation: 'PutSnapshotBlock',
      kind: 'latency',
      latencyMs: 6000,
    });
    world.emulator.clearCalls();
    try {
      const first = startCli('plume', fedoraCloudArgs(world, compose.url), world.env, { timeoutMs: 180_000 });
      const end = Date.now() + 60_000;
      while (!first.output().stderr.includes('"msg":"snapshot started"')) {
        if (Date.now() > end || first.child.exitCode !== null) throw new Error(first.output().stderr);
        await new Promise((r) => setTimeout(r, 50));
      }
      const second = startCli(
        'plume',
        [...fedoraCloudArgs(world, compose.url), '--state', join(world.dir, 'machine-2', 'state.db')],
        world.env,
        { timeoutMs: 180_000 },
      );
      const [a, b] = await Promise.all([first.done, second.done]);
      expect(a.code, a.stderr).toBe(0);
      expect(b.code, b.stderr).toBe(0);
      expect(b.stderr).toMatch(/"msg":"another run \([^)]+:\d+\) is uploading this release; waiting for it"/);
      expect(b.stderr).not.toContain('removing a snapshot left by an interrupted upload');
      // One upload: the second run used the first one's snapshot. Then the uploaded one and a copy per
      // image copied to the other region, as an undisturbed run leaves (none orphaned).
      expect(world.emulator.calls().filter((c) => c.operation === 'StartSnapshot')).toHaveLength(1);
      const inv = await aws.inventory(REGIONS);
      const ours = inv.snapshots.filter((s) => JSON.stringify(s).includes('Fedora-Cloud-45'));
      expect(ours).toHaveLength(3);
    } finally {
      world.emulator.removeFault(slow);
    }
  });
});

describe('smaller things', () => {
  it('an OptInRequired region says to opt the account in or drop the region, not "run again"', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '46', date: '20240701' });
    const fault = world.emulator.addFault({
      operation: 'CopyImage',
      region: 'eu-west-1',
      kind: 'error',
      code: 'OptInRequired',
      status: 401,
      message: 'You are not subscribed to this service. Please go to http://aws.amazon.com to subscribe.',
    });
    try {
      const res = await release(compose.url);
      expect(res.code, res.stderr).toBe(3);
      expect(res.stderr).toMatch(
        /eu-west-1 is not enabled for this account \(ec2:CopyImage: OptInRequired\): opt the account in to eu-west-1 \(AWS console, Account, AWS Regions\), or drop it from the regions/,
      );
    } finally {
      world.emulator.removeFault(fault);
    }
  });

  it('an AWS message ending in a period reads as one sentence before the hint', async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '46', date: '20240702' });
    const fault = world.emulator.addFault({
      service: 'sts',
      operation: 'GetCallerIdentity',
      kind: 'error',
      code: 'ValidationError',
      status: 400,
      message: 'Request limit exceeded.',
    });
    try {
      const res = await release(compose.url);
      expect(res.code, res.stderr).toBe(1);
      const last = res.stderr.trim().split('\n').pop()!;
      expect(last).toMatch(/ValidationError: Request limit exceeded: run again/);
      expect(last).not.toContain('.:');
    } finally {
      world.emulator.removeFault(fault);
    }
  });

  it('an unknown key in consumer_config is named without a stray period', async () => {
    const { writeJoystickConfig } = await import('../support/joystick.js');
    const config = await writeJoystickConfig(
      world,
      {
        prefix: 'x',
        queue: 'x',
        database: `sqlite:///${join(world.dir, 'k.db')}`,
        regions: REGIONS,
        extra: 'bogus = 1',
      },
      'bogus.toml',
    );
    const res = await runCli('joystick', ['run', '--check', '--config', config], world.env);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toMatch(/: consumer_config: Unrecognized key: "bogus": fix the config file$/);
  });

  it("--aws-credentials with keys in the environment too: one line, not the SDK's nine", async () => {
    const compose = await world.compose({ rawSize: 4 * 2 ** 20, version: '46', date: '20240703' });
    const { chmodSync, writeFileSync } = await import('node:fs');
    const keys = join(world.dir, 'keys');
    writeFileSync(
      keys,
      '[default]\naws_access_key_id = AKIAFILE0000000TEST\naws_secret_access_key = file-secret\n',
    );
    chmodSync(keys, 0o600);
    const res = await release(compose.url, ['--aws-credentials', keys]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).not.toContain('Multiple credential sources detected');
    const lines = res.stderr.split('\n').filter((l) => l.includes('--aws-credentials'));
    expect(lines).toEqual([
      `plume: warning: using the keys in ${keys} (--aws-credentials); AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment are ignored`,
    ]);
  });
});
