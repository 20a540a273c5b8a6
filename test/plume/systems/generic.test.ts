import { mkdirSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sha256For } from '../../../src/plume/systems/generic/index.js';
import { compressFile, sha256File, writeRawImage } from '../../../tools/compose/sample-compose.js';
import { Inspector } from '../../support/inspect.js';
import { runCli, startWorld, type World } from '../../support/world.js';

const REGIONS = ['us-east-1', 'eu-west-1', 'ap-southeast-2'];
let world: World;
let aws: Inspector;

/** A distribution plume has no code for, described in the config file alone. */
function acme(extra = ''): string {
  const base = `${world.files.url}/acme/{channel}/{version}`;
  return `
[systems.acme]
description = "Acme Linux cloud images"
channels = ["stable", "testing"]
arches = ["x86_64", "aarch64"]
source = "${base}/acme-{version}.{arch}.raw.xz"
checksum = "${base}/SHA256SUMS"
build = "Acme-{version}-{channel}.{arch}"
name = "{build}-{region}-{volume_type}"
image_description = "Acme Linux {version} ({channel}, {arch})"
tags = { Channel = "{channel}", Version = "{version}", Distro = "acme" }
volume_types = ["gp3"]
${extra}
`;
}

async function publishBuild(channel: string, version: string, sums: (sha: string, file: string) => string) {
  const dir = join(world.dir, 'composes', 'acme', channel, version);
  mkdirSync(dir, { recursive: true });
  const raw = join(dir, `acme-${version}.x86_64.raw`);
  await writeRawImage(raw, { size: 16 * 2 ** 20, dataFraction: 0.2, seed: 7 });
  const image = await compressFile(raw, 'xz');
  await rm(raw);
  writeFileSync(join(dir, 'SHA256SUMS'), sums(await sha256File(image), `acme-${version}.x86_64.raw.xz`));
}

function plume(args: string[]) {
  return runCli('plume', [...args, '--config', world.configPath], world.env);
}

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  aws = new Inspector(world.emulator.endpoint);
  await world.writeConfig(acme(), REGIONS);
});
afterAll(async () => {
  aws?.destroy();
  await world?.close();
});

describe('a system defined in the config file', () => {
  it('is listed with its channels and arches', async () => {
    const res = await plume(['systems']);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('acme: Acme Linux cloud images');
    expect(res.stdout).toMatch(
      /acme: [^\n]*\n {2}arches: x86_64, aarch64\n {2}channels:\n {4}stable {5}acme stable\n {4}testing {4}acme testing/,
    );
  });

  it('publishes an image, checked against its SHA256SUMS, with no code', async () => {
    await publishBuild(
      'stable',
      '2.1',
      (sha, file) =>
        `# Acme Linux 2.1\n${'0'.repeat(64)}  acme-2.1.aarch64.raw.xz\n${sha}  ${file}\n${'1'.repeat(64)}  acme-2.1.x86_64.qcow2\n`,
    );
    const res = await plume([
      'release',
      '--system',
      'acme',
      '--channel',
      'stable',
      '--arch',
      'x86_64',
      '--version',
      '2.1',
      '--output',
      'json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(record).toMatchObject({ status: 'complete', system: 'acme', key: 'acme/stable/2.1/x86_64' });
    expect(record.targets.aws.images).toHaveLength(REGIONS.length);
    for (const region of REGIONS) {
      const images = await aws.images(region);
      expect(images).toHaveLength(1);
      expect(images[0]).toMatchObject({
        Name: `Acme-2.1-stable.x86_64-${region}-gp3`,
        Description: 'Acme Linux 2.1 (stable, x86_64)',
        Architecture: 'x86_64',
        BootMode: 'uefi-preferred',
        Public: true,
        State: 'available',
      });
      const tags = Object.fromEntries(images[0]!.Tags!.map((t) => [t.Key, t.Value]));
      expect(tags).toMatchObject({ Channel: 'stable', Version: '2.1', Distro: 'acme' });
    }
  });

  it('refuses an image whose sha256 does not match, and uploads nothing', async () => {
    await world.emulator.reset();
    await publishBuild('testing', '2.2', (_sha, file) => `SHA256 (${file}) = ${'f'.repeat(64)}\n`);
    const res = await plume([
      'release',
      '--system',
      'acme',
      '--channel',
      'testing',
      '--arch',
      'x86_64',
      '--version',
      '2.2',
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toMatch(
      /^plume: error: sha256 mismatch for .*acme-2\.2\.x86_64\.raw\.xz: expected f{64}, got [0-9a-f]{64}: the image changed or is corrupt; nothing was registered/,
    );
    expect((await aws.inventory(REGIONS)).images).toEqual([]);
  });

  it('a mistake in the definition is found when the config is read', async () => {
    await world.writeConfig(acme().replace('{build}-{region}', '{build}-{regoin}'), REGIONS);
    try {
      const res = await plume(['systems']);
      expect(res.code).toBe(2);
      expect(res.stderr.trim()).toBe(
        'plume: error: config: systems.acme.name: unknown placeholder {regoin}: use {channel}, {version}, {arch}, {aws_arch}, {timestamp}, {respin}, {compose_id}, {label}, {build}, {region}, {volume_type}',
      );
    } finally {
      await world.writeConfig(acme(), REGIONS);
    }
  });
});

describe('checksum documents', () => {
  const hex = 'ab'.repeat(32);
  it.each([
    ['GNU SHA256SUMS', `${'0'.repeat(64)}  other.raw.xz\n${hex}  img.raw.xz\n`],
    ['GNU binary mode', `${hex} *img.raw.xz\n`],
    [
      'BSD CHECKSUM with comments',
      `# Fedora-style\nSHA256 (img.raw.xz) = ${hex}\nSHA256 (x.iso) = ${'1'.repeat(64)}\n`,
    ],
    ['a .sha256 file with only the digest', `${hex}\n`],
  ])('%s', (_name, doc) => {
    expect(sha256For(doc, 'img.raw.xz', 'SUMS')).toBe(hex);
  });
  it('names what the document lists when the file is missing', () => {
    expect(() => sha256For(`${hex}  other.raw.xz\n`, 'img.raw.xz', 'SUMS')).toThrow(
      'SUMS has no sha256 for img.raw.xz',
    );
  });
});
