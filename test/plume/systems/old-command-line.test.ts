import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../../support/inspect.js';
import { runCli, startWorld, type World } from '../../support/world.js';
import { makeSigningKey, writeContainerLinuxBuild, writeCredentials, type SigningKey } from './helpers.js';

/**
 * plume's own command lines, as its release scripts and documentation wrote them (the Container Linux
 * release jobs, the developer-build instructions, the Fedora pre-release/release pair), run against the
 * emulator. The only change to each is `--config`, which points plume at the emulator and the local builds
 * (an operator's config file does the same for the real buckets and accounts).
 */

let world: World;
let aws: Inspector;
let key: SigningKey;
let credentials: string;

function plume(args: string[], env: Record<string, string> = {}) {
  return runCli('plume', [...args, '--config', world.configPath], { ...world.env, ...env });
}

function count(op: string): number {
  return world.emulator.calls().filter((c) => c.operation === op).length;
}

beforeAll(async () => {
  world = await startWorld();
  aws = new Inspector(world.emulator.endpoint);
  key = makeSigningKey('Buildbot');
  credentials = writeCredentials(join(world.dir, 'aws-credentials'), ['default', 'govcloud', 'coreos-cl']);
  const cl = `${world.files.url}/cl`;
  await world.writeConfig(
    `
[systems.container-linux]
verify_key = "${key.keyFile}"
user = "core"
[systems.container-linux.channels.alpha]
base_url = "${cl}/alpha/boards"
[[systems.container-linux.channels.alpha.partitions]]
name = "AWS"
partition = "aws"
profile = "default"
base_region = "us-west-2"
regions = ["us-west-2", "us-east-1", "eu-west-1"]
[[systems.container-linux.channels.alpha.partitions]]
name = "AWS GovCloud"
partition = "aws-us-gov"
profile = "govcloud"
base_region = "us-gov-west-1"
regions = ["us-gov-west-1"]
[systems.container-linux.channels.user]
base_url = "${cl}/users/{user}/boards"
[systems.fedora.channels.rawhide]
base_url = "${world.files.url}"
`,
    ['us-east-1', 'us-east-2'],
  );
});
afterAll(async () => {
  aws?.destroy();
  key?.close();
  await world?.close();
});

describe("plume's old command lines", () => {
  it('the Container Linux release job: pre-release with an image list, then release', async () => {
    await writeContainerLinuxBuild(
      join(world.dir, 'composes', 'cl', 'alpha', 'boards'),
      'amd64-usr',
      '1745.1.0',
      key,
    );
    const verifyAsc = key.keyFile;
    const pre = await plume([
      'pre-release',
      '--debug',
      '--platform=aws',
      `--aws-credentials=${credentials}`,
      `--gce-json-key=${join(world.dir, 'unused.json')}`,
      '--board=amd64-usr',
      '--channel=alpha',
      '--version=1745.1.0',
      `--write-image-list=${join(world.dir, 'images.json')}`,
      `--verify-key=${verifyAsc}`,
    ]);
    expect(pre.code, pre.stderr).toBe(0);
    // The job then read: jq -r '.aws.amis[]|select(.name == "us-west-2").hvm' images.json
    const list = JSON.parse(readFileSync(join(world.dir, 'images.json'), 'utf8')) as {
      aws: { amis: { name: string; hvm: string }[] };
    };
    expect(list.aws.amis.map((a) => a.name)).toEqual([
      'eu-west-1',
      'us-east-1',
      'us-gov-west-1',
      'us-west-2',
    ]);
    const hvm = list.aws.amis.find((a) => a.name === 'us-west-2')!.hvm;
    expect(hvm).toMatch(/^ami-/);
    const [image] = await aws.images('us-west-2');
    expect(image).toMatchObject({ ImageId: hvm, Name: 'CoreOS-alpha-1745.1.0-hvm', Public: false });

    const uploads = count('StartSnapshot');
    const rel = await plume([
      'release',
      `--aws-credentials=${credentials}`,
      '--board=amd64-usr',
      '--channel=alpha',
      '--version=1745.1.0',
    ]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(count('StartSnapshot')).toBe(uploads);
    for (const region of ['us-west-2', 'us-east-1', 'eu-west-1', 'us-gov-west-1']) {
      const images = await aws.images(region);
      expect(images.map((i) => [i.Name, i.Public])).toEqual([['CoreOS-alpha-1745.1.0-hvm', true]]);
    }
  });

  it("a developer's own build: the short flags of the SDK instructions", async () => {
    await writeContainerLinuxBuild(
      join(world.dir, 'composes', 'cl', 'users', 'core', 'boards'),
      'amd64-usr',
      '1746.0.0+dev-1',
      key,
    );
    const env = { AWS_SHARED_CREDENTIALS_FILE: credentials };
    const dry = await plume(
      [
        'pre-release',
        '-n',
        '-C',
        'user',
        '--verify-key',
        key.keyFile,
        '-B',
        'amd64-usr',
        '-V',
        '1746.0.0+dev-1',
      ],
      env,
    );
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('Container-Linux-user-1746.0.0_dev-1-hvm');
    const pre = await plume(
      ['pre-release', '-C', 'user', '--verify-key', key.keyFile, '-B', 'amd64-usr', '-V', '1746.0.0+dev-1'],
      env,
    );
    expect(pre.code, pre.stderr).toBe(0);
    const rel = await plume(['release', '-C', 'user', '-B', 'amd64-usr', '-V', '1746.0.0+dev-1'], env);
    expect(rel.code, rel.stderr).toBe(0);
    for (const region of ['us-west-1', 'us-west-2', 'eu-west-3', 'us-east-1'])
      expect((await aws.images(region)).map((i) => [i.Name, i.Public])).toContainEqual([
        'Container-Linux-user-1746.0.0_dev-1-hvm',
        true,
      ]);
  });

  it('the Fedora pre-release and release, by compose id', async () => {
    const compose = await world.compose({
      composeId: 'Fedora-Rawhide-20240501.n.0',
      version: 'Rawhide',
      date: '20240501',
      releaseShort: 'Fedora',
      composeType: 'nightly',
      label: null,
      buildName: (arch) => `Fedora-Cloud-Base-Rawhide-20240501.n.0.${arch}`,
    });
    const args = [
      '--distro',
      'fedora',
      '--channel',
      'rawhide',
      '--compose-id',
      'Fedora-Rawhide-20240501.n.0',
      '--version',
      'Rawhide',
      '--timestamp',
      '20240501',
      '--respin',
      '0',
      '--image-type',
      'Cloud-Base',
      '--arch',
      'x86_64',
      '--environment',
      'prod',
      '--aws-credentials',
      credentials,
    ];
    const pre = await plume(['pre-release', ...args]);
    expect(pre.code, pre.stderr).toBe(0);
    const name = (region: string, vt: string) => `${compose.images.x86_64!.build}-hvm-${region}-${vt}-0`;
    expect((await aws.images('us-east-2')).map((i) => [i.Name, i.Public]).sort()).toEqual([
      [name('us-east-2', 'gp2'), false],
      [name('us-east-2', 'gp3'), false],
    ]);
    const rel = await plume(['release', ...args]);
    expect(rel.code, rel.stderr).toBe(0);
    expect((await aws.images('us-east-2')).every((i) => i.Public)).toBe(true);

    const wrong = await plume(['release', ...args.map((a) => (a === '20240501' ? '20240502' : a))]);
    expect(wrong.code).toBe(2);
    expect(wrong.stderr.trim().split('\n').pop()).toBe(
      'plume: error: compose Fedora-Rawhide-20240501.n.0 has timestamp 20240501, not 20240502: check --timestamp and the compose',
    );
  });

  it('release publishes what pre-release uploaded with no signing key, and a dry run never needs one', async () => {
    await writeContainerLinuxBuild(
      join(world.dir, 'composes', 'cl', 'alpha', 'boards'),
      'amd64-usr',
      '1745.2.0',
      key,
    );
    // The release job's machine has the key; whoever publishes later need not.
    const noKey = join(world.dir, 'no-key.toml');
    writeFileSync(noKey, readFileSync(world.configPath, 'utf8').replace(/^verify_key = .*$/m, ''));
    const run = (args: string[]) =>
      runCli('plume', [...args, '--config', noKey], {
        ...world.env,
        AWS_SHARED_CREDENTIALS_FILE: credentials,
      });

    const dry = await run([
      'release',
      '--distro',
      'cl',
      '--channel',
      'stable',
      '--version',
      '1745.2.0',
      '--board',
      'amd64-usr',
      '--dry-run',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('CoreOS-stable-1745.2.0-hvm');

    const alpha = ['-C', 'alpha', '-B', 'amd64-usr', '-V', '1745.2.0'];
    const pre = await run(['pre-release', ...alpha, '--verify-key', key.keyFile]);
    expect(pre.code, pre.stderr).toBe(0);
    const uploads = count('StartSnapshot');
    const rel = await run(['release', ...alpha]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(count('StartSnapshot')).toBe(uploads);
    expect(
      (await aws.images('us-east-1'))
        .filter((i) => i.Name === 'CoreOS-alpha-1745.2.0-hvm')
        .map((i) => i.Public),
    ).toEqual([true]);

    // A build nobody pre-released must be uploaded, so checked: without a key, refused before any download.
    await writeContainerLinuxBuild(
      join(world.dir, 'composes', 'cl', 'alpha', 'boards'),
      'amd64-usr',
      '1745.3.0',
      key,
    );
    const unchecked = await run(['release', '-C', 'alpha', '-B', 'amd64-usr', '-V', '1745.3.0']);
    expect(unchecked.code).toBe(2);
    expect(unchecked.stderr).toContain(
      "the image must be uploaded and its signature checked first, but no key to check it with is configured: pass --verify-key FILE or configure the system's key",
    );
    expect(count('StartSnapshot')).toBe(uploads);
  });

  it('refuses a credentials file others can read', async () => {
    const open = writeCredentials(join(world.dir, 'open-credentials'), ['default'], 0o644);
    const res = await plume(['release', '--aws-credentials', open, '-C', 'alpha', '-V', '1745.1.0', '-n']);
    expect(res.code).toBe(2);
    expect(res.stderr.trim()).toBe(
      `plume: error: refusing AWS credentials file ${open}: its mode 0644 lets group or others read it: chmod 600 ${open}`,
    );
  });
});
