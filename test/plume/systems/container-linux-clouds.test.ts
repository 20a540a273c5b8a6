import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TargetSettings } from '../../../src/plume/plan.js';
import { GCE_NAME } from '../../../src/plume/providers/gcp/settings.js';
import { VERSION_NAME } from '../../../src/plume/providers/azure/settings.js';
import { PlumeError } from '../../../src/shared/errors.js';
import {
  containerLinux,
  type ContainerLinuxFacts,
} from '../../../src/plume/systems/container-linux/index.js';
import {
  CHANNELS,
  azureDefinition,
  azureVersionName,
  gceFamily,
  gceImageDescription,
  gceImageName,
} from '../../../src/plume/systems/container-linux/specs.js';
import { releaseFiles } from '../../../src/plume/systems/container-linux/outputs.js';
import { signatureCreationTime } from '../../../src/plume/systems/openpgp.js';
import type { ReleaseRecord } from '../../../src/plume/record.js';
import { makeSigningKey, type SigningKey } from './helpers.js';

const GOLDEN_SIG = new URL(
  '../golden/composes/cl/stable/boards/amd64-usr/1688.5.3/coreos_production_gce.tar.gz.sig',
  import.meta.url,
).pathname;

describe("mantle's GCE names for Container Linux", () => {
  it.each([
    ['stable', '1688.5.3', '20180601', 'coreos-stable-1688-5-3-v20180601'],
    ['beta', '2345.3.0', '20200301', 'coreos-beta-2345-3-0-v20200301'],
    ['alpha', '2512.1.0', '20200512', 'coreos-alpha-2512-1-0-v20200512'],
    // A developer's build: `+` and `.` become dashes, as mantle's sanitizeVersion made them.
    [
      'user',
      '1745.0.0+jenkins2-master+local-999',
      '20180501',
      'coreos-user-1745-0-0-jenkins2-master-local-999-v20180501',
    ],
    [
      'developer',
      '1745.0.0+jenkins2-master+local-999',
      '20180501',
      'coreos-developer-1745-0-0-jenkins2-master-local-999-v20180501',
    ],
  ])('%s %s signed on %s → %s', (channel, version, day, name) => {
    const got = gceImageName(channel, version, day);
    expect(got.name).toBe(name);
    expect(got.name).toMatch(GCE_NAME);
    expect(got.name.startsWith(got.prefix)).toBe(true);
    expect(got.prefix).toBe(name.slice(0, -'20180601'.length));
    expect(gceFamily(channel)).toBe(`coreos-${channel}`);
  });

  it('a version too long for 63 characters is shortened before the day, which still ends the name', () => {
    const long = '1745.0.0+jenkins2-master+local-999-with-a-much-longer-branch-name-than-fits';
    const other = '1745.0.0+jenkins2-master+local-999-with-a-much-longer-branch-name-than-fit2';
    const a = gceImageName('developer', long, '20180501');
    const b = gceImageName('developer', other, '20180501');
    expect(a.name).toHaveLength(63);
    expect(a.name).toMatch(GCE_NAME);
    expect(a.name).toMatch(/^coreos-developer-1745-0-0-jenkins2-master-.*-[0-9a-f]{8}-v20180501$/);
    expect(a.name.startsWith(a.prefix)).toBe(true);
    expect(a.prefix).toMatch(GCE_NAME);
    // Two versions cut to the same characters stay apart (the digest is of the whole version).
    expect(b.name).not.toBe(a.name);
    // The same version names the same image on every run.
    expect(gceImageName('developer', long, '20180501')).toEqual(a);
  });

  it("describes an image as mantle did, with the build's day", () => {
    const stable = CHANNELS.find((c) => c.name === 'stable')!;
    const user = CHANNELS.find((c) => c.name === 'user')!;
    expect(gceImageDescription(stable, '1688.5.3', 'amd64-usr', '2018-06-01')).toBe(
      'CoreOS, CoreOS stable, 1688.5.3, amd64-usr published on 2018-06-01',
    );
    expect(gceImageDescription(user, '1745.0.0+local-1', 'amd64-usr', '2018-05-01')).toBe(
      'CoreOS Container Linux development image, 1745.0.0+local-1, amd64-usr published on 2018-05-01',
    );
  });
});

describe('Azure definitions and versions for Container Linux', () => {
  it('one definition per channel, identified as the Marketplace did (CoreOS:CoreOS:Stable)', () => {
    expect(azureDefinition('stable')).toEqual({ definition: 'CoreOS-Stable', sku: 'Stable' });
    expect(azureDefinition('alpha')).toEqual({ definition: 'CoreOS-Alpha', sku: 'Alpha' });
    expect(azureDefinition('developer')).toEqual({ definition: 'CoreOS-Developer', sku: 'Developer' });
  });

  it.each([
    ['1688.5.3', '1688.5.3'],
    ['2345.3.0', '2345.3.0'],
    ['1745.0.0+jenkins2-master+local-999', undefined],
    ['1688.5', undefined],
    ['01688.5.3', undefined],
    ['1688.5.3.1', undefined],
    // Each number is an Int32 in Azure.
    ['2147483648.0.0', undefined],
  ])('%s → %s', (version, name) => {
    expect(azureVersionName(version)).toBe(name);
    if (name) expect(name).toMatch(VERSION_NAME);
  });
});

describe("an OpenPGP signature's creation time", () => {
  let key: SigningKey;
  let dir: string;
  beforeAll(() => {
    key = makeSigningKey('Plume Buildbot');
    dir = mkdtempSync(join(tmpdir(), 'plume-sigtime-'));
  });
  afterAll(() => {
    key?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A detached signature gpg makes at a given time (after the key's own: gpg signs nothing before it). */
  function signAt(time: string, armor: boolean): Buffer {
    const file = join(dir, 'image');
    writeFileSync(file, 'the image\n');
    const out = join(dir, armor ? 'image.asc' : 'image.sig');
    execFileSync(
      'gpg',
      [
        '--homedir',
        key.home,
        '--batch',
        '--no-tty',
        '--pinentry-mode',
        'loopback',
        '--passphrase',
        '',
        '--faked-system-time',
        `${time}!`,
        '--yes',
        '--local-user',
        key.fingerprint,
        ...(armor ? ['--armor'] : []),
        '--output',
        out,
        '--detach-sign',
        file,
      ],
      { stdio: 'ignore' },
    );
    return readFileSync(out);
  }

  it('is read from a binary and from an armoured signature, as gpg made them', () => {
    expect(signatureCreationTime(signAt('20300301T235959', false), 'x').toISOString()).toBe(
      '2030-03-01T23:59:59.000Z',
    );
    expect(signatureCreationTime(signAt('20311231T000001', true), 'x').toISOString()).toBe(
      '2031-12-31T00:00:01.000Z',
    );
    expect(signatureCreationTime(readFileSync(GOLDEN_SIG), 'x').toISOString()).toBe(
      '2018-06-01T17:30:00.000Z',
    );
  });

  it('refuses what is not a signature in one line that names the file', () => {
    for (const bytes of [
      Buffer.from('not a signature'),
      Buffer.alloc(0),
      readFileSync(GOLDEN_SIG).subarray(0, 12),
    ]) {
      let err: unknown;
      try {
        signatureCreationTime(bytes, 'coreos_production_gce.tar.gz');
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(PlumeError);
      expect((err as PlumeError).message).toMatch(
        /^the signature of coreos_production_gce\.tar\.gz is not an OpenPGP signature plume can read: [^\n]+$/,
      );
    }
  });
});

/** The facts locate finds for a build with every provider's file (the GCE archive signed on 1 June 2018). */
function facts(channel: string, version: string, providers = ['aws', 'gcp', 'azure']): ContainerLinuxFacts {
  const dir = `https://builds.example.org/${channel}/boards/amd64-usr/${version}/`;
  const files: Record<string, string> = {
    aws: 'coreos_production_ami_image.bin.bz2',
    gcp: 'coreos_production_gce.tar.gz',
    azure: 'coreos_production_azure_image.vhd.bz2',
  };
  const spec = CHANNELS.find((c) => c.name === channel)!;
  return {
    request: { system: 'container-linux', channel, version },
    channel,
    board: 'amd64-usr',
    version,
    baseName: spec.baseName,
    baseDescription: spec.baseDescription,
    artifacts: Object.fromEntries(
      providers.map((p) => [p, { url: `${dir}${files[p]}`, signatureUrl: `${dir}${files[p]}.sig` }]),
    ),
    missing: [],
    gceDay: '20180601',
    keyFile: '/keys/buildbot.asc',
  };
}

const target = (provider: string, extra: Partial<TargetSettings> = {}): TargetSettings => ({
  provider,
  name: provider,
  primaryLocation: provider === 'gcp' ? 'global' : provider === 'azure' ? 'westus2' : 'us-west-2',
  locations: provider === 'gcp' ? ['global'] : provider === 'azure' ? ['westus2', 'eastus'] : ['us-west-2'],
  variants: provider === 'gcp' ? ['image'] : provider === 'azure' ? ['version'] : ['gp2'],
  visibility: { public: true, accounts: [] },
  settings: {},
  ...extra,
});

describe("Container Linux's plan for GCE and Azure (pure)", () => {
  it('each provider gets its own signed file, names and settings; the AWS target is as before', () => {
    const plan = containerLinux.plan(facts('stable', '1688.5.3'), [
      target('aws'),
      target('gcp'),
      target('azure'),
    ]);
    expect(plan.targets.map((t) => t.key)).toEqual([
      'container-linux/stable/amd64-usr/1688.5.3/aws',
      'container-linux/stable/amd64-usr/1688.5.3/gcp',
      'container-linux/stable/amd64-usr/1688.5.3/azure',
    ]);
    const [aws, gcp, azure] = plan.targets;
    expect(aws!.images[0]!.name).toBe('CoreOS-stable-1688.5.3-hvm');
    expect(aws!.settings).toMatchObject({ rootDeviceName: '/dev/xvda', bootMode: 'legacy-bios' });

    expect(gcp!.source).toEqual({
      url: 'https://builds.example.org/stable/boards/amd64-usr/1688.5.3/coreos_production_gce.tar.gz',
      compression: 'none',
      signatureUrl:
        'https://builds.example.org/stable/boards/amd64-usr/1688.5.3/coreos_production_gce.tar.gz.sig',
      signatureKey: '/keys/buildbot.asc',
      volumeGiB: undefined,
    });
    expect(gcp!.images).toEqual([
      { location: 'global', variant: 'image', name: 'coreos-stable-1688-5-3-v20180601' },
    ]);
    expect(gcp!.settings).toEqual({
      family: 'coreos-stable',
      guestOsFeatures: ['VIRTIO_SCSI_MULTIQUEUE'],
      namePrefix: 'coreos-stable-1688-5-3-v',
    });
    expect(gcp!.description).toBe('CoreOS, CoreOS stable, 1688.5.3, amd64-usr published on 2018-06-01');

    expect(azure!.source).toMatchObject({
      url: 'https://builds.example.org/stable/boards/amd64-usr/1688.5.3/coreos_production_azure_image.vhd.bz2',
      compression: 'bzip2',
      signatureUrl:
        'https://builds.example.org/stable/boards/amd64-usr/1688.5.3/coreos_production_azure_image.vhd.bz2.sig',
    });
    expect(azure!.images.map((i) => [i.location, i.name])).toEqual([
      ['westus2', '1688.5.3'],
      ['eastus', '1688.5.3'],
    ]);
    expect(azure!.settings).toEqual({
      definition: 'CoreOS-Stable',
      sku: 'Stable',
      features: [],
      excludeFromLatest: false,
      hyperVGeneration: 'V1',
    });
  });

  it('names the same GCE image on every run of the same build', () => {
    const names = [1, 2].map(
      () => containerLinux.plan(facts('alpha', '2512.1.0'), [target('gcp')]).targets[0]!.images[0]!.name,
    );
    expect(names).toEqual(['coreos-alpha-2512-1-0-v20180601', 'coreos-alpha-2512-1-0-v20180601']);
  });

  it('a provider the build has no file for is left out with its reason', () => {
    const f = { ...facts('user', '1745.0.0+jenkins2-master+local-999', ['aws', 'gcp']) };
    f.missing = [{ provider: 'azure', reason: 'version ... cannot name an Azure image version' }];
    const plan = containerLinux.plan(f, [target('aws'), target('gcp'), target('azure')]);
    expect(plan.targets.map((t) => t.provider)).toEqual(['aws', 'gcp']);
    expect(plan.skipped).toEqual(f.missing);
    expect(plan.targets[1]!.images[0]!.name).toBe('coreos-user-1745-0-0-jenkins2-master-local-999-v20180601');
  });
});

describe('what a Container Linux release writes beside its records', () => {
  const record = (
    targets: Record<string, { provider: string; images: { location: string; id: string }[] }>,
  ) =>
    ({
      channel: 'stable',
      arch: 'amd64-usr',
      version: '1688.5.3',
      targets,
    }) as unknown as ReleaseRecord;

  it('the GCE image file as mantle wrote it, and the image list with each provider released to', () => {
    const files = releaseFiles([
      record({
        gcp: {
          provider: 'gcp',
          images: [
            {
              location: 'global',
              id: 'projects/coreos-cloud/global/images/coreos-stable-1688-5-3-v20180601',
            },
          ],
        },
        azure: {
          provider: 'azure',
          images: [{ location: 'westus2', id: '/subscriptions/s/versions/1688.5.3' }],
        },
      }),
    ]);
    expect(files.map((f) => f.path)).toEqual([
      'container-linux/stable/amd64-usr/1688.5.3/coreos_production_gce.txt',
      'container-linux/stable/amd64-usr/1688.5.3/images.json',
    ]);
    expect(files[0]!.contents).toBe('projects/coreos-cloud/global/images/coreos-stable-1688-5-3-v20180601\n');
    expect(JSON.parse(files[1]!.contents)).toEqual({
      azure: { image: '/subscriptions/s/versions/1688.5.3' },
      gce: { image: 'projects/coreos-cloud/global/images/coreos-stable-1688-5-3-v20180601' },
    });
  });

  it('an AWS release writes the AMI lists and the image list as before', () => {
    const files = releaseFiles([
      record({ aws: { provider: 'aws', images: [{ location: 'us-west-2', id: 'ami-1' }] } }),
    ]);
    expect(files.map((f) => f.path.split('/').pop())).toEqual([
      'coreos_production_ami_all.json',
      'coreos_production_ami_hvm.txt',
      'coreos_production_ami_hvm_us-west-2.txt',
      'images.json',
    ]);
    expect(JSON.parse(files[3]!.contents)).toEqual({ aws: { amis: [{ name: 'us-west-2', hvm: 'ami-1' }] } });
  });
});
