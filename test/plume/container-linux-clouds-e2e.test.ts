import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ImagesClient } from '@google-cloud/compute';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFileAuth } from '../emulator/gcp-helpers.js';
import { GCP_BUCKET, runCli, startWorld, type World } from '../support/world.js';
import {
  makeSigningKey,
  writeContainerLinuxFiles,
  writeCredentials,
  type SigningKey,
} from './systems/helpers.js';

/**
 * Container Linux to GCE and Azure beside AWS, as mantle's plume released it, against the emulators: a
 * build directory served over HTTP holding the AMI image, the GCE archive and the Azure VHD, each with its
 * detached OpenPGP signature made by a throwaway build key. GCE through Google's own clients (Compute
 * Engine and Cloud Storage emulator), Azure through Microsoft's (Azurite and the Compute Gallery fake).
 */

const MiB = 2 ** 20;
const CHANNELS = ['alpha', 'beta', 'stable', 'user'];

/** `YYYYMMDD` of a time, in UTC. */
const day = (t: Date) => t.toISOString().slice(0, 10).replaceAll('-', '');

interface Env {
  world: World;
  key: SigningKey;
  credentials: string;
}

/** The builds live under `{files}/cl/{channel}/boards/{board}/{version}/`, as in the build buckets. */
const buildsDir = (world: World, channel: string) => join(world.dir, 'composes', 'cl', channel, 'boards');

/**
 * Container Linux's section: the build key, each channel's builds on the test's server, and one AWS
 * partition of one region (the emulator's), so a release is quick.
 */
function clSection(world: World, key: SigningKey): string {
  return `
[systems.container-linux]
verify_key = "${key.keyFile}"
user = "core"
${CHANNELS.map(
  (c) => `
[systems.container-linux.channels.${c}]
base_url = "${world.files.url}/cl/${c}/boards"
[[systems.container-linux.channels.${c}.partitions]]
name = "AWS"
profile = "default"
base_region = "us-east-1"
regions = ["us-east-1"]
`,
).join('')}`;
}

async function setUp(opts: Parameters<typeof startWorld>[0]): Promise<Env> {
  const world = await startWorld({ regions: ['us-east-1'], ...opts });
  const key = makeSigningKey('Plume Buildbot');
  const credentials = writeCredentials(join(world.dir, 'aws-credentials'), ['default']);
  mkdirSync(join(world.dir, 'composes', 'cl'), { recursive: true });
  await world.writeConfig(clSection(world, key), ['us-east-1']);
  return { world, key, credentials };
}

function plume(env: Env, args: string[]) {
  return runCli(
    'plume',
    [...args, '--aws-credentials', env.credentials, '--config', env.world.configPath],
    env.world.env,
  );
}

/** Write a signed build of `version` on `channel`; the days its signatures can carry (made now). */
async function build(env: Env, channel: string, version: string, which: { gce?: boolean; azure?: boolean }) {
  const before = day(new Date());
  const files = await writeContainerLinuxFiles(buildsDir(env.world, channel), 'amd64-usr', version, env.key, {
    rawSize: 4 * MiB,
    ...which,
  });
  return { ...files, days: [...new Set([before, day(new Date())])] };
}

describe('container-linux to AWS and GCE', () => {
  let env: Env;
  let images: ImagesClient;
  beforeAll(async () => {
    env = await setUp({ gcp: true });
    images = new ImagesClient({
      ...env.world.gcp!.endpoints.computeClient,
      authClient: keyFileAuth(env.world.gcp!.keyFilePath),
    });
  });
  afterAll(async () => {
    await images?.close();
    env?.key.close();
    await env?.world.close();
  });

  const project = () => env.world.gcp!.project;
  const gcpCalls = (operation: string) =>
    env.world.gcp!.calls().filter((c) => c.operation === operation).length;
  const awsCalls = (operation: string) =>
    env.world.emulator.calls().filter((c) => c.operation === operation).length;
  async function listImages() {
    const [all] = await images.list({ project: project() });
    return all;
  }
  async function objects(): Promise<string[]> {
    const res = await fetch(`${env.world.gcp!.endpoints.storage}/storage/v1/b/${GCP_BUCKET}/o`, {
      headers: { authorization: `Bearer ${env.world.gcp!.accessToken()}` },
    });
    const body = (await res.json()) as { items?: { name: string }[] };
    return (body.items ?? []).map((o) => o.name);
  }

  it("releases a signed build to both with mantle's GCE name, family and features; a re-run creates nothing", async () => {
    const b = await build(env, 'stable', '2345.3.0', { gce: true });
    const args = ['release', '--system', 'container-linux', '--channel', 'stable', '--version', '2345.3.0'];
    const res = await plume(env, [...args, '--platform', 'aws,gcp', '--output', 'json']);
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(Object.values(record.targets).map((t) => (t as { key: string }).key)).toEqual([
      'container-linux/stable/amd64-usr/2345.3.0/aws',
      'container-linux/stable/amd64-usr/2345.3.0/gcp',
    ]);
    const gcp = Object.values(record.targets).find((t) => (t as { provider: string }).provider === 'gcp') as {
      status: string;
      images: { name: string; id: string }[];
      source: { url: string };
    };
    expect(gcp.status).toBe('complete');
    expect(gcp.source.url).toMatch(
      /\/cl\/stable\/boards\/amd64-usr\/2345\.3\.0\/coreos_production_gce\.tar\.gz$/,
    );
    const name = gcp.images[0]!.name;
    // The day the build's GCE archive was signed.
    expect(b.days.map((d) => `coreos-stable-2345-3-0-v${d}`)).toContain(name);
    expect(gcp.images[0]!.id).toBe(`projects/${project()}/global/images/${name}`);

    // Both signatures were checked with the build key before their uploads.
    expect(res.stderr.match(/image signature verified/g)).toHaveLength(2);
    expect(res.stderr).toContain('coreos_production_gce.tar.gz.sig');

    const [image] = await images.get({ project: project(), image: name });
    expect(image).toMatchObject({
      status: 'READY',
      family: 'coreos-stable',
      architecture: 'X86_64',
      description: `CoreOS, CoreOS stable, 2345.3.0, amd64-usr published on ${name.slice(-8, -4)}-${name.slice(-4, -2)}-${name.slice(-2)}`,
    });
    // BIOS boot (no UEFI_COMPATIBLE) and multi-queue SCSI, what mantle created CL's images with.
    expect(image.guestOsFeatures?.map((f) => f.type)).toEqual(['VIRTIO_SCSI_MULTIQUEUE']);
    expect(image.labels).toMatchObject({
      channel: 'stable',
      version: '2345-3-0',
      'plume-system': 'container-linux',
    });
    const [policy] = await images.getIamPolicy({ project: project(), resource: name });
    expect(policy.bindings?.find((x) => x.role === 'roles/compute.imageUser')?.members).toEqual([
      'allAuthenticatedUsers',
    ]);
    expect(await objects()).toEqual([]);

    // mantle's file naming the GCE image, beside the AMI lists.
    const dir = join(env.world.recordsDir, 'container-linux', 'stable', 'amd64-usr', '2345.3.0');
    expect(readFileSync(join(dir, 'coreos_production_gce.txt'), 'utf8')).toBe(
      `projects/${project()}/global/images/${name}\n`,
    );
    expect(JSON.parse(readFileSync(join(dir, 'coreos_production_ami_all.json'), 'utf8')).amis).toHaveLength(
      1,
    );

    // The same build again: the same image is found, nothing is uploaded or created on either cloud.
    env.world.gcp!.clearCalls();
    const registered = awsCalls('RegisterImage');
    const again = await plume(env, [...args, '--platform', 'aws,gcp', '--output', 'json']);
    expect(again.code, again.stderr).toBe(0);
    const gcpAgain = Object.values(JSON.parse(again.stdout).targets).find(
      (t) => (t as { provider: string }).provider === 'gcp',
    ) as { images: { name: string }[] };
    expect(gcpAgain.images[0]!.name).toBe(name);
    expect(gcpCalls('images.insert')).toBe(0);
    expect(gcpCalls('objects.insert')).toBe(0);
    expect(awsCalls('RegisterImage')).toBe(registered);
    expect((await listImages()).filter((i) => i.family === 'coreos-stable').map((i) => i.name)).toEqual([
      name,
    ]);
  });

  it('a GCE archive that does not match its signature is never uploaded, and no GCE image is made', async () => {
    const b = await build(env, 'beta', '2346.0.0', { gce: true });
    // The archive changes after it was signed.
    const bytes = readFileSync(b.gce!);
    bytes[bytes.length - 100] = bytes[bytes.length - 100]! ^ 0xff;
    writeFileSync(b.gce!, bytes);
    env.world.gcp!.clearCalls();
    const res = await plume(env, [
      'release',
      '--system',
      'cl',
      '-C',
      'beta',
      '-V',
      '2346.0.0',
      '--platform',
      'gcp',
    ]);
    expect(res.code).toBe(1);
    expect(res.stderr.trim().split('\n').pop()).toBe(
      'plume: error: the OpenPGP signature of coreos_production_gce.tar.gz does not match it (BADSIG): the image is corrupt or was tampered with; nothing was uploaded',
    );
    expect(env.world.gcp!.calls().filter((c) => c.operation.startsWith('objects.insert'))).toEqual([]);
    expect(gcpCalls('images.insert')).toBe(0);
    expect((await listImages()).filter((i) => i.family === 'coreos-beta')).toEqual([]);
    expect(await objects()).toEqual([]);
  });

  it('pre-release keeps the GCE image private; release makes it public without creating another', async () => {
    await build(env, 'user', '2347.0.0+jenkins2-master+local-999', { gce: true });
    const args = [
      '-C',
      'user',
      '-V',
      '2347.0.0+jenkins2-master+local-999',
      '--platform',
      'gcp',
      '--output',
      'json',
    ];
    const users = async (name: string) =>
      (await images.getIamPolicy({ project: project(), resource: name }))[0].bindings?.find(
        (x) => x.role === 'roles/compute.imageUser',
      )?.members ?? [];
    const pre = await plume(env, ['pre-release', ...args]);
    expect(pre.code, pre.stderr).toBe(0);
    const name = (Object.values(JSON.parse(pre.stdout).targets)[0] as { images: { name: string }[] })
      .images[0]!.name;
    expect(name).toMatch(/^coreos-user-2347-0-0-jenkins2-master-local-999-v\d{8}$/);
    expect(await users(name)).toEqual([]);
    env.world.gcp!.clearCalls();
    const rel = await plume(env, ['release', ...args]);
    expect(rel.code, rel.stderr).toBe(0);
    expect(gcpCalls('images.insert')).toBe(0);
    expect(await users(name)).toEqual(['allAuthenticatedUsers']);
  });

  it('three releases on a channel leave a deprecation chain in its family, the newest active', async () => {
    const names: string[] = [];
    for (const version of ['2400.0.0', '2401.0.0', '2402.0.0']) {
      await build(env, 'alpha', version, { gce: true });
      const res = await plume(env, [
        'release',
        '-C',
        'alpha',
        '-V',
        version,
        '--platform',
        'gcp',
        '--output',
        'json',
      ]);
      expect(res.code, res.stderr).toBe(0);
      names.push(
        (Object.values(JSON.parse(res.stdout).targets)[0] as { images: { name: string }[] }).images[0]!.name,
      );
    }
    const family = new Map(
      (await listImages()).filter((i) => i.family === 'coreos-alpha').map((i) => [i.name, i] as const),
    );
    expect([...family.keys()].sort()).toEqual([...names].sort());
    expect(family.get(names[0])?.deprecated).toMatchObject({
      state: 'DEPRECATED',
      replacement: expect.stringContaining(names[1]!),
    });
    expect(family.get(names[1])?.deprecated).toMatchObject({
      state: 'DEPRECATED',
      replacement: expect.stringContaining(names[2]!),
    });
    expect(family.get(names[2])?.deprecated?.state ?? 'ACTIVE').toBe('ACTIVE');
    const [latest] = await images.getFromFamily({ project: project(), family: 'coreos-alpha' });
    expect(latest.name).toBe(names[2]);
  });

  it('a config without [gcp] publishes to AWS only, as before', async () => {
    await build(env, 'beta', '2348.0.0', { gce: true });
    const config = join(env.world.dir, 'plume-aws-only.toml');
    const text = readFileSync(env.world.configPath, 'utf8').replace(/\n\[gcp\]\n[\s\S]*?(?=\n\[)/, '');
    expect(text).not.toContain('[gcp]');
    writeFileSync(config, text);
    env.world.gcp!.clearCalls();
    const res = await runCli(
      'plume',
      [
        'release',
        '-C',
        'beta',
        '-V',
        '2348.0.0',
        '--output',
        'json',
        '--aws-credentials',
        env.credentials,
        '--config',
        config,
      ],
      env.world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(Object.values(JSON.parse(res.stdout).targets).map((t) => (t as { key: string }).key)).toEqual([
      'container-linux/beta/amd64-usr/2348.0.0/aws',
    ]);
    expect(env.world.gcp!.calls().filter((c) => !c.operation.startsWith('token'))).toEqual([]);
  });
});

describe('container-linux to Azure', () => {
  let env: Env;
  let compute: ComputeManagementClient;
  beforeAll(async () => {
    env = await setUp({ azure: true });
    const emu = env.world.azure!.emulator;
    compute = new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, emu.armClientOptions());
  });
  afterAll(async () => {
    env?.key.close();
    await env?.world.close();
  });

  it('a build whose version is not three numbers is refused for Azure in one line, before anything', async () => {
    await build(env, 'user', '1745.0.0+jenkins2-master+local-999', { azure: true });
    const res = await plume(env, [
      'release',
      '-C',
      'user',
      '-V',
      '1745.0.0+jenkins2-master+local-999',
      '--platform',
      'azure',
    ]);
    expect(res.code).toBe(2);
    expect(res.stderr.trim().split('\n').pop()).toBe(
      'plume: error: container-linux version 1745.0.0+jenkins2-master+local-999 cannot name an Azure image version (three whole numbers, e.g. 1688.5.3): publish this build with --platform aws,gcp',
    );
    expect(env.world.azure!.emulator.calls().filter((c) => !c.operation.startsWith('token'))).toEqual([]);
    // Without --platform, the config's providers: Azure is left out of this build, and says why.
    const dry = await plume(env, [
      'release',
      '-C',
      'user',
      '-V',
      '1745.0.0+jenkins2-master+local-999',
      '--dry-run',
    ]);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain('target aws (aws)');
    expect(dry.stdout).not.toContain('(azure)');
    expect(`${dry.stdout}${dry.stderr}`).toContain('cannot name an Azure image version');
  });

  // A source of unknown size (bzip2) into a generation-1 definition.
  it("releases the signed VHD into the channel's definition, named by the version", async () => {
    await build(env, 'stable', '2345.3.0', { azure: true });
    const res = await plume(env, [
      'release',
      '-C',
      'stable',
      '-V',
      '2345.3.0',
      '--platform',
      'aws,azure',
      '--output',
      'json',
    ]);
    expect(res.code, res.stderr).toBe(0);
    const emu = env.world.azure!.emulator;
    const definition = await compute.galleryImages.get(
      emu.arm.resourceGroup,
      emu.arm.gallery,
      'CoreOS-Stable',
    );
    expect(definition).toMatchObject({
      osType: 'Linux',
      hyperVGeneration: 'V1',
      architecture: 'x64',
      identifier: { publisher: 'CoreOS', offer: 'CoreOS', sku: 'Stable' },
    });
    const version = await compute.galleryImageVersions.get(
      emu.arm.resourceGroup,
      emu.arm.gallery,
      'CoreOS-Stable',
      '2345.3.0',
    );
    expect(version.provisioningState).toBe('Succeeded');
    expect(res.stderr.match(/image signature verified/g)).toHaveLength(2);
    // A re-run creates nothing.
    const created = emu.calls().filter((c) => c.operation === 'GalleryImageVersions_CreateOrUpdate').length;
    const again = await plume(env, ['release', '-C', 'stable', '-V', '2345.3.0', '--platform', 'aws,azure']);
    expect(again.code, again.stderr).toBe(0);
    expect(emu.calls().filter((c) => c.operation === 'GalleryImageVersions_CreateOrUpdate')).toHaveLength(
      created,
    );
  });
});
