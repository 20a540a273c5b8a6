import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readRecord } from '../../src/plume/record.js';
import { dataExtents } from '../../tools/compose/sample-compose.js';
import { Inspector } from '../support/inspect.js';
import { fedoraCloudArgs, runCli, startWorld, type World } from '../support/world.js';

const REGIONS = ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'ap-southeast-2'];
const RAW = 2 * 2 ** 30;
const BLOCK = 512 * 1024;
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

function count(op: string): number {
  return world.emulator.calls().filter((c) => c.operation === op).length;
}

describe('plume release of a 2 GiB sparse image to 5 regions x 2 volume types', () => {
  it('publishes, verifies, sends only non-zero blocks, and a rerun creates nothing', async () => {
    const compose = await world.compose({ rawSize: RAW, dataFraction: 0.02 });
    const args = fedoraCloudArgs(world, compose.url);

    const first = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(first.code, first.stderr).toBe(0);
    const release = JSON.parse(first.stdout);
    expect(release.status).toBe('complete');
    const record = release.targets.aws;
    expect(record.images).toHaveLength(10);
    expect(new Set(record.images.map((i: { location: string }) => i.location))).toEqual(new Set(REGIONS));

    // Only the blocks the generated data touches were sent, each exactly once.
    const touched = new Set<number>();
    for (const e of dataExtents({ size: RAW, dataFraction: 0.02, seed: 1 }))
      for (let b = Math.floor(e.offset / BLOCK); b <= Math.floor((e.offset + e.length - 1) / BLOCK); b++)
        touched.add(b);
    expect(record.upload.blocksSent).toBe(touched.size);
    expect(record.upload.bytesSent).toBe(touched.size * BLOCK);
    expect(record.upload.zeroBlocks).toBe(RAW / BLOCK - touched.size);
    const stats = world.emulator.snapshotStats(record.upload.disk)!;
    expect(stats.blocksPut).toBe(touched.size);
    expect(stats.completed).toBe(true);
    expect(count('PutSnapshotBlock')).toBe(touched.size);
    expect(record.source.rawBytes).toBe(RAW);
    expect(record.source.volumeGiB).toBe(2);

    // Every AMI has the attributes the plan asks for, is public, and so is its snapshot.
    for (const region of REGIONS) {
      const images = await aws.images(region);
      expect(images).toHaveLength(2);
      for (const image of images) {
        const vt = image.Name!.includes('-gp3-') ? 'gp3' : 'gp2';
        expect(image.Name).toBe(`${compose.images.x86_64!.build}-hvm-${region}-${vt}-0`);
        expect(image).toMatchObject({
          State: 'available',
          Architecture: 'x86_64',
          VirtualizationType: 'hvm',
          EnaSupport: true,
          SriovNetSupport: 'simple',
          BootMode: 'uefi-preferred',
          ImdsSupport: 'v2.0',
          RootDeviceName: '/dev/sda1',
          RootDeviceType: 'ebs',
          Public: true,
        });
        const root = image.BlockDeviceMappings!.find((m) => m.DeviceName === '/dev/sda1')!;
        expect(root.Ebs).toMatchObject({ VolumeType: vt, VolumeSize: 2, DeleteOnTermination: true });
        expect(await aws.snapshotPublic(region, root.Ebs!.SnapshotId!)).toBe(true);
        const tags = Object.fromEntries(image.Tags!.map((t) => [t.Key, t.Value]));
        expect(tags).toMatchObject({
          Name: image.Name,
          Channel: 'cloud',
          Version: '30',
          ComposeID: compose.composeId,
          Date: '2019-06-11',
          Arch: 'x86_64',
          'plume:release': record.key,
          'plume:volume-type': vt,
        });
      }
    }
    const inv = await aws.inventory(REGIONS);
    expect(inv.orphans).toEqual([]);

    // A second run finds everything and creates nothing.
    const creating = ['StartSnapshot', 'PutSnapshotBlock', 'RegisterImage', 'CopyImage'];
    const before = creating.map(count);
    const again = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(creating.map(count)).toEqual(before);
    const second = JSON.parse(again.stdout).targets.aws;
    // Nothing was uploaded this time: the record keeps what the first run's upload measured.
    expect(second.timings.upload).toBeUndefined();
    expect(second.upload).toEqual(record.upload);
    expect(second.source.rawBytes).toBe(record.source.rawBytes);
    expect(second.images).toEqual(record.images);
    expect((await aws.inventory(REGIONS)).images).toHaveLength(10);

    // The record on disk verifies, and prints as the table and the websites' JSON.
    const [file] = readdirSync(world.recordsDir);
    const path = join(world.recordsDir, file!);
    expect((await readRecord(path)).key).toBe(release.key);
    const verify = await runCli(
      'plume',
      ['verify', '--record', path, '--config', world.configPath],
      world.env,
    );
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toContain('10 of 10 images verified');
    const table = await runCli('plume', ['amis', '--record', path], world.env);
    expect(table.stdout.split('\n')[1]).toMatch(/^REGION\s+GP2\s+GP3$/);
    expect(table.stdout).toContain(record.images[0].id);
    const websites = JSON.parse(
      (await runCli('plume', ['amis', '--record', path, '--format', 'websites'], world.env)).stdout,
    );
    expect(Object.keys(websites['30'].x86_64).sort()).toEqual([...REGIONS].sort());
  });

  it('plume verify names each missing or wrong region and exits non-zero; --repair fixes them', async () => {
    const [file] = readdirSync(world.recordsDir);
    const path = join(world.recordsDir, file!);
    const record = (await readRecord(path)).targets.aws!;
    const { DeregisterImageCommand, ModifyImageAttributeCommand } = await import('@aws-sdk/client-ec2');
    const gone = record.images.find((i) => i.location === 'eu-west-1' && i.variant === 'gp3')!;
    await aws.ec2('eu-west-1').send(new DeregisterImageCommand({ ImageId: gone.id }));
    const priv = record.images.find((i) => i.location === 'us-west-2' && i.variant === 'gp2')!;
    await aws.ec2('us-west-2').send(
      new ModifyImageAttributeCommand({
        ImageId: priv.id,
        LaunchPermission: { Remove: [{ Group: 'all' }] },
      }),
    );

    const bad = await runCli('plume', ['verify', '--record', path, '--config', world.configPath], world.env);
    expect(bad.code).toBe(4);
    expect(bad.stdout).toContain('eu-west-1 gp3: missing');
    expect(bad.stdout).toContain('us-west-2 gp2: not-public: image is not public');
    expect(bad.stderr.trim().split('\n').pop()).toBe(
      'plume: error: verification failed in 2 region(s): eu-west-1, us-west-2: run `plume release` again (or `plume verify --repair`) to repair',
    );

    const fixed = await runCli(
      'plume',
      ['verify', '--repair', '--record', path, '--config', world.configPath],
      world.env,
    );
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout).toContain('10 of 10 images verified');
    const eu = await aws.images('eu-west-1');
    expect(eu.map((i) => i.Name).sort()).toEqual(
      record.images
        .filter((i) => i.location === 'eu-west-1')
        .map((i) => i.name)
        .sort(),
    );
    expect((await aws.inventory(REGIONS)).orphans).toEqual([]);
  });

  it('--dry-run prints the whole plan and calls nothing that writes', async () => {
    const compose = await world.compose({
      rawSize: 8 * 2 ** 20,
      version: '31',
      date: '20191029',
      arches: ['x86_64', 'aarch64'],
    });
    const calls = world.emulator.calls().length;
    const res = await runCli(
      'plume',
      [
        ...fedoraCloudArgs(world, compose.url, { arch: 'aarch64' }),
        '--dry-run',
        '--regions',
        'us-east-1,eu-west-1',
        '--volume-types',
        'gp3',
      ],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    const build = compose.images.aarch64!.build;
    expect(res.stdout).toContain(`build:       ${build}`);
    expect(res.stdout).toContain(
      'image:       arm64, boot uefi, ENA true, SR-IOV simple, IMDS v2.0, root /dev/sda1',
    );
    expect(res.stdout).toContain(`us-east-1/gp3            ${build}-hvm-us-east-1-gp3-0`);
    expect(res.stdout).toContain(`eu-west-1/gp3            ${build}-hvm-eu-west-1-gp3-0`);
    // AWS's name for the architecture is in the AWS settings; the release's own tags use the neutral one.
    expect(res.stdout).toContain('Arch=aarch64');
    expect(res.stdout).not.toContain('gp2');
    expect(world.emulator.calls().length).toBe(calls);
  });
});
