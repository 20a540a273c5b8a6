import { readFileSync, readdirSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHANNELS } from '../../../src/plume/systems/container-linux/specs.js';
import { dataExtents } from '../../../tools/compose/sample-compose.js';
import { Inspector } from '../../support/inspect.js';
import { runCli, startWorld, type World } from '../../support/world.js';
import { makeSigningKey, writeContainerLinuxBuild, writeCredentials, type SigningKey } from './helpers.js';

const COMMERCIAL = CHANNELS.find((c) => c.name === 'alpha')!.partitions[0]!.regions;
const GOVCLOUD = ['us-gov-west-1', 'us-gov-east-1'];
const RAW = 24 * 2 ** 20;
const BLOCK = 512 * 1024;

let world: World;
let aws: Inspector;
let key: SigningKey;
let stranger: SigningKey;
let credentials: string;
let tmp: string;

/** The builds live under `{files}/cl/{channel}/boards/{board}/{version}/`, as in the build buckets. */
function buildsDir(channel: string): string {
  return join(world.dir, 'composes', 'cl', channel, 'boards');
}

async function configure(extra = ''): Promise<void> {
  const channels = CHANNELS.map(
    (c) =>
      `[systems.container-linux.channels.${c.name}]\nbase_url = "${world.files.url}/cl/${c.name}/boards"\n`,
  ).join('\n');
  await world.writeConfig(
    `
[systems.container-linux]
verify_key = "${key.keyFile}"
${extra}
${channels}
`,
    ['us-east-1'],
  );
}

function plume(args: string[], env: Record<string, string> = {}) {
  return runCli('plume', [...args, '--config', world.configPath], { ...world.env, TMPDIR: tmp, ...env });
}

function calls(op: string): number {
  return world.emulator.calls().filter((c) => c.operation === op).length;
}

beforeAll(async () => {
  world = await startWorld();
  aws = new Inspector(world.emulator.endpoint);
  key = makeSigningKey('Plume Buildbot');
  stranger = makeSigningKey('Someone Else');
  credentials = writeCredentials(join(world.dir, 'aws-credentials'), ['default', 'govcloud']);
  tmp = join(world.dir, 'tmp');
  mkdirSync(tmp);
  await configure();
});
afterAll(async () => {
  aws?.destroy();
  key?.close();
  stranger?.close();
  await world?.close();
});

describe('container-linux release on the emulator', () => {
  it('releases a signed bzip2 image to the commercial and GovCloud partitions and writes the AMI lists', async () => {
    await writeContainerLinuxBuild(buildsDir('alpha'), 'amd64-usr', '1000.0.0', key, { rawSize: RAW });
    const res = await plume([
      'release',
      '--system',
      'container-linux',
      '--channel',
      'alpha',
      '--board',
      'amd64-usr',
      '--version',
      '1000.0.0',
      '--aws-credentials',
      credentials,
      '--output',
      'json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const records = Object.values(
      (
        JSON.parse(res.stdout) as {
          targets: Record<
            string,
            {
              key: string;
              status: string;
              images: { location: string; id: string; name: string }[];
              upload: { disk: string; blocksSent: number };
              plan: { settings: { partition: string; profile: string } };
            }
          >;
        }
      ).targets,
    );
    expect(records.map((r) => r.key)).toEqual([
      'container-linux/alpha/amd64-usr/1000.0.0/aws',
      'container-linux/alpha/amd64-usr/1000.0.0/aws-govcloud',
    ]);
    expect(records.map((r) => [r.status, r.plan.settings.partition, r.plan.settings.profile])).toEqual([
      ['complete', 'aws', 'default'],
      ['complete', 'aws-us-gov', 'govcloud'],
    ]);
    expect(records[0]!.images.map((i) => i.location).sort()).toEqual([...COMMERCIAL].sort());
    expect(records[1]!.images.map((i) => i.location).sort()).toEqual([...GOVCLOUD].sort());

    // The signature was checked before the upload, and the blocks sent are the image's data, once each.
    expect(res.stderr).toContain('image signature verified');
    expect(res.stderr).toContain(key.fingerprint);
    const touched = new Set<number>();
    for (const e of dataExtents({ size: RAW, dataFraction: 0.2, seed: 3 }))
      for (let b = Math.floor(e.offset / BLOCK); b <= Math.floor((e.offset + e.length - 1) / BLOCK); b++)
        touched.add(b);
    for (const r of records) {
      expect(r.upload.blocksSent).toBe(touched.size);
      expect(world.emulator.snapshotStats(r.upload.disk)!.completed).toBe(true);
    }
    // Nothing is left in the temporary directory: the compressed copy is removed, the raw image never written.
    expect(readdirSync(tmp)).toEqual([]);

    for (const region of [...COMMERCIAL, ...GOVCLOUD]) {
      const images = await aws.images(region);
      expect(images, region).toHaveLength(1);
      const image = images[0]!;
      expect(image).toMatchObject({
        Name: 'CoreOS-alpha-1000.0.0-hvm',
        Description: 'CoreOS Container Linux alpha 1000.0.0 (HVM)',
        State: 'available',
        Architecture: 'x86_64',
        VirtualizationType: 'hvm',
        EnaSupport: true,
        SriovNetSupport: 'simple',
        RootDeviceName: '/dev/xvda',
        Public: true,
      });
      const root = image.BlockDeviceMappings!.find((m) => m.DeviceName === '/dev/xvda')!;
      expect(root.Ebs).toMatchObject({ VolumeType: 'gp2', VolumeSize: 8 });
      const tags = Object.fromEntries(image.Tags!.map((t) => [t.Key, t.Value]));
      expect(tags).toMatchObject({ Channel: 'alpha', Version: '1000.0.0' });
    }

    // One AMI list over both partitions, in plume's formats.
    const dir = join(world.recordsDir, 'container-linux', 'alpha', 'amd64-usr', '1000.0.0');
    const byRegion = new Map(records.flatMap((r) => r.images.map((i) => [i.location, i.id] as const)));
    const sorted = [...byRegion.keys()].sort();
    const all = readFileSync(join(dir, 'coreos_production_ami_all.json'), 'utf8');
    expect(JSON.parse(all)).toEqual({ amis: sorted.map((name) => ({ name, hvm: byRegion.get(name) })) });
    expect(all.endsWith('}\n')).toBe(true);
    expect(readFileSync(join(dir, 'coreos_production_ami_hvm.txt'), 'utf8')).toBe(
      `${sorted.map((r) => `${r}=${byRegion.get(r)}`).join('|')}\n`,
    );
    for (const region of sorted)
      expect(readFileSync(join(dir, `coreos_production_ami_hvm_${region}.txt`), 'utf8')).toBe(
        `${byRegion.get(region)}\n`,
      );
    const amis = await runCli(
      'plume',
      ['amis', '-C', 'alpha', '-V', '1000.0.0', '--format', 'hvm.txt', '--config', world.configPath],
      world.env,
    );
    expect(amis.code, amis.stderr).toBe(0);
    expect(amis.stdout).toBe(`${sorted.map((r) => `${r}=${byRegion.get(r)}`).join('|')}\n`);
  });

  it('refuses an image whose signature does not match it, before any upload', async () => {
    await world.emulator.reset();
    const image = await writeContainerLinuxBuild(buildsDir('beta'), 'amd64-usr', '1001.0.0', key);
    // The image changes after it was signed.
    const bytes = readFileSync(image);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    writeFileSync(image, bytes);
    const res = await plume([
      'release',
      '--distro',
      'cl',
      '-C',
      'beta',
      '-V',
      '1001.0.0',
      '--aws-credentials',
      credentials,
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toBe(
      'plume: error: the OpenPGP signature of coreos_production_ami_image.bin.bz2 does not match it (BADSIG): the image is corrupt or was tampered with; nothing was uploaded',
    );
    expect(calls('StartSnapshot')).toBe(0);
    expect(calls('RegisterImage')).toBe(0);
    expect((await aws.inventory(['us-west-2', 'us-gov-west-1'])).snapshots).toEqual([]);
    expect(readdirSync(tmp)).toEqual([]);
  });

  it('refuses an image signed by a key other than the configured one, before any upload', async () => {
    await world.emulator.reset();
    const image = await writeContainerLinuxBuild(buildsDir('stable'), 'amd64-usr', '1002.0.0', key);
    stranger.sign(image, `${image}.sig`);
    const res = await plume(['release', '-C', 'stable', '-V', '1002.0.0', '--aws-credentials', credentials]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toMatch(
      new RegExp(
        `^plume: error: coreos_production_ami_image\\.bin\\.bz2 is signed by key [0-9A-F]{16,40}, which is not in ${key.keyFile.replace(/[.]/g, '\\.')}: nothing was uploaded`,
      ),
    );
    expect(stranger.fingerprint.endsWith(/key ([0-9A-F]+),/.exec(res.stderr)![1]!)).toBe(true);
    expect(calls('StartSnapshot')).toBe(0);
  });

  it('needs a key only to upload: a dry run plans without one, an upload without one is refused at once', async () => {
    await world.emulator.reset();
    await writeContainerLinuxBuild(buildsDir('alpha'), 'amd64-usr', '1003.0.0', key);
    await world.writeConfig(
      `
[systems.container-linux.channels.alpha]
base_url = "${world.files.url}/cl/alpha/boards"
`,
      ['us-east-1'],
    );
    try {
      const dry = await plume(['release', '-C', 'alpha', '-V', '1003.0.0', '--dry-run']);
      expect(dry.code, dry.stderr).toBe(0);
      expect(dry.stdout).toContain('key (none)');
      const res = await plume(['release', '-C', 'alpha', '-V', '1003.0.0', '--aws-credentials', credentials]);
      expect(res.code).toBe(2);
      expect(res.stderr.trim().split('\n').pop()).toMatch(
        /^plume: error: container-linux\/alpha\/amd64-usr\/1003\.0\.0\/aws: the image must be uploaded and its signature checked first, but no key to check it with is configured: pass --verify-key FILE or configure the system's key; releasing what a pre-release uploaded needs none$/,
      );
      expect(calls('StartSnapshot')).toBe(0);
    } finally {
      await configure();
    }
  });
});
