import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startWorld, type RunResult, type World } from '../support/world.js';

/**
 * Where plume takes images and credentials from, and what it never prints: verified TLS only, credential
 * files nobody else can read, and no secret in any output of a whole release.
 */
const REGIONS = ['us-east-1', 'eu-west-1'];
let world: World;
let aws: Inspector;
let compose: SampleCompose & { url: string };

const release = (
  url: string,
  env: Record<string, string> = world.env,
  extra: string[] = [],
): Promise<RunResult> => runCli('plume', [...fedoraCloudArgs(world, url), ...extra], env);

async function expectNothingPublished(): Promise<void> {
  const inv = await aws.inventory(REGIONS);
  expect(inv.images).toEqual([]);
  expect(inv.snapshots).toEqual([]);
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  aws = new Inspector(world.emulator.endpoint);
  compose = await world.compose({ rawSize: 8 * 2 ** 20 });
});
afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

describe('images and metadata come over verified TLS only', () => {
  let server: Server;
  let connections = 0;
  let requests = 0;
  let port = 0;

  beforeAll(async () => {
    const dir = mkdtempSync(join(tmpdir(), 'plume-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'ignore' },
    );
    server = createServer(
      { key: readFileSync(join(dir, 'key.pem')), cert: readFileSync(join(dir, 'cert.pem')) },
      (_req, res) => {
        requests++;
        res.end('{}');
      },
    );
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('an https host with a self-signed certificate is refused at once, with a clear error', async () => {
    const res = await release(`https://127.0.0.1:${port}/${compose.composePath}`);
    expect(res.code, res.stderr).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toBe(
      `plume: error: refusing 127.0.0.1:${port}: its TLS certificate does not verify (self-signed certificate): images and metadata are fetched over verified TLS only: fix the host's certificate, or trust its CA with NODE_EXTRA_CA_CERTS`,
    );
    // No request got through, and a certificate is not retried like a network error.
    expect(requests).toBe(0);
    expect(connections).toBe(1);
    await expectNothingPublished();
  });

  it('NODE_TLS_REJECT_UNAUTHORIZED=0 (every certificate check off) is refused before anything is fetched', async () => {
    const res = await release(`https://127.0.0.1:${port}/${compose.composePath}`, {
      ...world.env,
      NODE_TLS_REJECT_UNAUTHORIZED: '0',
    });
    expect(res.code, res.stderr).toBe(2);
    expect(res.stderr.trim().split('\n').pop()).toBe(
      'plume: error: NODE_TLS_REJECT_UNAUTHORIZED=0 turns off TLS certificate checks; plume does not run without them: unset it; to trust a private CA, set NODE_EXTRA_CA_CERTS to its certificate',
    );
    expect(requests).toBe(0);
    await expectNothingPublished();
  });
});

describe('credentials come from the environment or from files nobody else can read', () => {
  const KEYS =
    '[default]\naws_access_key_id = AKIAFILE0000000TEST\naws_secret_access_key = file-secret-0000\n';
  const envWithout = () => {
    const { AWS_ACCESS_KEY_ID: _k, AWS_SECRET_ACCESS_KEY: _v, ...rest } = world.env;
    return rest;
  };

  function file(name: string, mode: number, content = KEYS): string {
    const dir = mkdtempSync(join(tmpdir(), 'plume-creds-'));
    const path = join(dir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  }

  it.each([
    ['AWS_SHARED_CREDENTIALS_FILE', '0644', 'credentials', 0o644],
    ['AWS_SHARED_CREDENTIALS_FILE', '0604', 'credentials', 0o604],
    ['AWS_CONFIG_FILE', '0666', 'config', 0o666],
  ] as const)(
    '%s with mode %s is refused, naming the file and the fix',
    async (variable, _mode, name, mode) => {
      const path = file(name, mode);
      const res = await release(compose.url, { ...envWithout(), [variable]: path });
      // The same exit status as --aws-credentials with a bad mode (issue 13): a usage error.
      expect(res.code, res.stderr).toBe(2);
      expect(res.stderr.trim().split('\n').pop()).toBe(
        `plume: error: refusing AWS credentials file ${path}: its mode 0${mode.toString(8)} lets group or others read it: chmod 600 ${path}`,
      );
      await expectNothingPublished();
    },
  );

  it('~/.aws/credentials readable by a group that is not the process’s own is refused', async () => {
    const home = mkdtempSync(join(tmpdir(), 'plume-home-'));
    mkdirSync(join(home, '.aws'));
    const path = join(home, '.aws', 'credentials');
    writeFileSync(path, KEYS);
    chmodSync(path, 0o640);
    chownSync(path, process.getuid!(), 65534);
    const res = await release(compose.url, { ...envWithout(), HOME: home });
    expect(res.stderr.trim().split('\n').pop()).toBe(
      `plume: error: refusing AWS credentials file ${path}: its mode 0640 lets group or others read it: chmod 600 ${path}`,
    );
    await expectNothingPublished();
  });

  it('a 0600 file, and the deployment’s root-owned 0640 file of the service’s own group, are used', async () => {
    // Group access counts only for a root-owned file (what the deployment writes); tests run as root in CI.
    for (const mode of process.getuid!() === 0 ? [0o600, 0o640] : [0o600]) {
      const path = file('credentials', mode);
      // The emulator accepts any key: the release going through shows the file was read and used.
      const res = await release(compose.url, { ...envWithout(), AWS_SHARED_CREDENTIALS_FILE: path }, [
        '--dry-run',
      ]);
      expect(res.code, res.stderr).toBe(0);
    }
  });
});

describe('no image is public by mistake', { timeout: 180_000 }, () => {
  it('verify of a private release names an image or snapshot that is public, and the repair leaves it to a person', async () => {
    const c = await world.compose({ rawSize: 8 * 2 ** 20, version: '41', date: '20241029' });
    const pre = await runCli(
      'plume',
      [...fedoraCloudArgs(world, c.url, { verb: 'pre-release' }), '--output', 'json'],
      world.env,
    );
    expect(pre.code, pre.stderr).toBe(0);
    const record = JSON.parse(pre.stdout).targets.aws;
    expect(record.visibility.public).toBe(false);
    const { ModifyImageAttributeCommand, ModifySnapshotAttributeCommand } =
      await import('@aws-sdk/client-ec2');
    const target = record.images.find(
      (i: { location: string; variant: string }) => i.location === 'eu-west-1' && i.variant === 'gp3',
    );
    await aws.ec2('eu-west-1').send(
      new ModifyImageAttributeCommand({
        ImageId: target.id,
        LaunchPermission: { Add: [{ Group: 'all' }] },
      }),
    );
    const copy = (await aws.images('eu-west-1')).find((i) => i.ImageId === target.id)!;
    const snapshotId = copy.BlockDeviceMappings![0]!.Ebs!.SnapshotId!;
    await aws.ec2('eu-west-1').send(
      new ModifySnapshotAttributeCommand({
        SnapshotId: snapshotId,
        Attribute: 'createVolumePermission',
        OperationType: 'add',
        GroupNames: ['all'],
      }),
    );
    const recordPath = join(world.dir, 'private.json');
    writeFileSync(recordPath, pre.stdout);

    const res = await runCli(
      'plume',
      ['verify', '--record', recordPath, '--config', world.configPath],
      world.env,
    );
    expect(res.code, res.stderr).toBe(4);
    expect(res.stdout).toContain(
      `eu-west-1 gp3: public: image is public but the release is private; snapshot ${snapshotId} is public but the release is private`,
    );
    expect(res.stdout).toContain('3 of 4 images verified');
    const repair = await runCli(
      'plume',
      ['verify', '--repair', '--record', recordPath, '--config', world.configPath],
      world.env,
    );
    expect(repair.code).toBe(4);
    expect(repair.stderr).toContain(
      'plume never withdraws an image: if it must be private, remove its launch and create-volume permissions by hand',
    );
    // Nothing else was made public meanwhile.
    expect((await aws.inventory(REGIONS)).images.filter((i) => i.Public).map((i) => i.ImageId)).toEqual([
      target.id,
    ]);
  });
});

describe('secrets never reach any output', { timeout: 180_000 }, () => {
  it('a whole release, its verify, amis, status, and failing runs print none of the secrets', async () => {
    const SECRET = 'plumeTestSecretKey-9f3c1a7e5b2d4c6e8a0b';
    const TOKEN = 'plumeTestSessionToken-4e6a8c0b2d4f6a8c0e2a';
    const FILE_SECRET = 'plumeTestFileSecret-1b3d5f7a9c1e3b5d7f9a';
    const env: Record<string, string> = {
      ...world.env,
      AWS_SECRET_ACCESS_KEY: SECRET,
      AWS_SESSION_TOKEN: TOKEN,
      PLUME_LOG_LEVEL: 'debug',
    };
    const outputs: RunResult[] = [];
    const run = async (args: string[], e: Record<string, string> = env) => {
      const res = await runCli('plume', [...args, '--config', world.configPath], e);
      outputs.push(res);
      return res;
    };
    const sel = ['--system', 'fedora', '--channel', 'cloud', '--arch', 'x86_64', '--compose', compose.url];
    const first = await run(['release', ...sel, '--verbose']);
    expect(first.code, first.stderr).toBe(0);
    const [record] = readdirSync(world.recordsDir);
    const recordPath = join(world.recordsDir, record!);
    expect((await run(['verify', '--record', recordPath, '--verbose'])).code).toBe(0);
    expect((await run(['amis', '--record', recordPath, '--format', 'json'])).code).toBe(0);
    expect((await run(['status', '--output', 'json'])).code).toBe(0);
    // Failing: access denied, and a bad credentials file given on the command line.
    const denied = world.emulator.addFault({ operation: 'DescribeImages', kind: 'access-denied' });
    expect((await run(['release', ...sel, '--verbose'])).code).toBe(1);
    world.emulator.removeFault(denied);
    const keys = file600(
      `[default]\naws_access_key_id = AKIAFILE0000000TEST\naws_secret_access_key = ${FILE_SECRET}\n`,
    );
    const { AWS_SECRET_ACCESS_KEY: _x, AWS_ACCESS_KEY_ID: _y, AWS_SESSION_TOKEN: _z, ...fileEnv } = env;
    expect((await run(['release', ...sel, '--aws-credentials', keys, '--verbose'], fileEnv)).code).toBe(0);
    chmodSync(keys, 0o644);
    expect((await run(['release', ...sel, '--aws-credentials', keys], fileEnv)).code).toBe(2);

    const all = outputs.map((o) => o.stdout + o.stderr).join('\n') + readFileSync(recordPath, 'utf8');
    expect(all.length).toBeGreaterThan(10_000);
    for (const secret of [SECRET, TOKEN, FILE_SECRET]) expect(all).not.toContain(secret);
  });
});

function file600(content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'plume-creds-')), 'credentials');
  writeFileSync(path, content, { mode: 0o600 });
  return path;
}
