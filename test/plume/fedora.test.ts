import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseComposeId } from '../../src/plume/systems/fedora/compose-id.js';
import { amiName, buildName, selectImage } from '../../src/plume/systems/fedora/images.js';
import { fedora, type FedoraFacts } from '../../src/plume/systems/fedora/index.js';
import { parseImagesJson } from '../../src/plume/systems/fedora/productmd.js';
import { PlumeError } from '../../src/shared/errors.js';
import { parseConfig } from '../../src/plume/config.js';
import { awsModule } from '../../src/plume/providers/aws/module.js';

const fixture = readFileSync(new URL('../fixtures/images-cloud.json', import.meta.url));

function withSha(raw: Buffer): Buffer {
  return Buffer.from(raw.toString().replace(/<sha256 of [^>]+>/g, 'ab'.repeat(32)));
}

describe('compose ids', () => {
  it.each([
    [
      'Fedora-Cloud-30-20190611.0',
      { releaseShort: 'Fedora-Cloud', version: '30', date: '20190611', type: 'production', respin: 0 },
    ],
    [
      'Fedora-Rawhide-20240501.n.0',
      { releaseShort: 'Fedora', version: 'Rawhide', date: '20240501', type: 'nightly', respin: 0 },
    ],
    [
      'Fedora-40-20240414.0',
      { releaseShort: 'Fedora', version: '40', date: '20240414', type: 'production', respin: 0 },
    ],
    [
      'Fedora-28-20180321.n.2',
      { releaseShort: 'Fedora', version: '28', date: '20180321', type: 'nightly', respin: 2 },
    ],
    [
      'Fedora-AtomicHost-28-20180625.1',
      { releaseShort: 'Fedora-AtomicHost', version: '28', date: '20180625', type: 'production', respin: 1 },
    ],
    ['Fedora-Cloud-31-20191020.t.3', { version: '31', type: 'test', respin: 3 }],
    ['Fedora-41-20241020.ci.0', { version: '41', type: 'ci' }],
    ['Fedora-41-20241020.d.0', { version: '41', type: 'development' }],
  ])('%s', (id, expected) => {
    expect(parseComposeId(id)).toMatchObject(expected);
  });
  it('rejects what is not a compose id', () => {
    expect(parseComposeId('hello')).toBeUndefined();
    expect(parseComposeId('Fedora-Cloud-30')).toBeUndefined();
  });
});

describe('image selection', () => {
  const images = parseImagesJson(withSha(fixture), 'fixture');
  it('picks the Cloud_Base raw-xz of the arch, not the qcow2 or vagrant', () => {
    expect(selectImage(images, 'Cloud-Base', 'x86_64').path).toBe(
      'Cloud/x86_64/images/Fedora-Cloud-Base-30-20190611.0.x86_64.raw.xz',
    );
    expect(selectImage(images, 'Cloud-Base', 'aarch64').path).toBe(
      'Cloud/aarch64/images/Fedora-Cloud-Base-30-20190611.0.aarch64.raw.xz',
    );
  });
  it('says what the compose holds when the image is missing', () => {
    let err: unknown;
    try {
      selectImage(images, 'AtomicHost', 'x86_64');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlumeError);
    expect((err as PlumeError).oneLine()).toBe(
      'compose Fedora-Cloud-30-20190611.0 has no AtomicHost raw-xz image for x86_64: its raw-xz images are: Cloud/Cloud_Base/aarch64, Cloud/Cloud_Base/x86_64',
    );
  });
  it('prefers the AmazonEC2 build where the compose has one', () => {
    const data = JSON.parse(withSha(fixture).toString());
    const generic = data.payload.images.Cloud.x86_64[0];
    data.payload.images.Cloud.x86_64.push({
      ...generic,
      path: 'Cloud/x86_64/images/Fedora-Cloud-Base-AmazonEC2-40-1.14.x86_64.raw.xz',
    });
    expect(selectImage(parseImagesJson(JSON.stringify(data), 'x'), 'Cloud-Base', 'x86_64').path).toContain(
      'AmazonEC2',
    );
  });
  it('accepts the Fedora 25 CloudImages layout with both subvariants', () => {
    const data = JSON.parse(withSha(fixture).toString());
    const img = data.payload.images.Cloud.x86_64[0];
    data.payload.images = {
      CloudImages: {
        x86_64: [
          img,
          {
            ...img,
            subvariant: 'Atomic',
            path: 'CloudImages/x86_64/images/Fedora-Atomic-25-20170106.0.x86_64.raw.xz',
          },
        ],
      },
    };
    const parsed = parseImagesJson(JSON.stringify(data), 'x');
    expect(selectImage(parsed, 'AtomicHost', 'x86_64').path).toContain('Fedora-Atomic-25');
    expect(selectImage(parsed, 'Cloud-Base', 'x86_64').path).toContain('Cloud-Base');
  });
  it('refuses unknown productmd versions and damaged files', () => {
    expect(() => parseImagesJson('{"header":{"version":"9.0"},"payload":{}}', 'images.json')).toThrow(
      /version 9.0, which plume does not know/,
    );
    expect(() => parseImagesJson('not json', 'images.json')).toThrow(/is not JSON/);
    expect(() =>
      parseImagesJson('{"header":{"version":"1.2"},"payload":{"compose":{}}}', 'images.json'),
    ).toThrow(/not a productmd images file/);
  });
});

describe('naming', () => {
  it('keeps the AMI name scheme the websites read', () => {
    expect(buildName('Cloud/x86_64/images/Fedora-Cloud-Base-30-20190611.0.x86_64.raw.xz')).toBe(
      'Fedora-Cloud-Base-30-20190611.0.x86_64',
    );
    expect(amiName('Fedora-Cloud-Base-30-20190611.0.x86_64', 'eu-west-1', 'gp3', 0)).toBe(
      'Fedora-Cloud-Base-30-20190611.0.x86_64-hvm-eu-west-1-gp3-0',
    );
  });
});

describe('plan', () => {
  const images = parseImagesJson(withSha(fixture), 'fixture');
  const facts = (arch: 'x86_64' | 'aarch64'): FedoraFacts => ({
    request: { system: 'fedora', channel: 'cloud', arch },
    location: 'https://kojipkgs.fedoraproject.org/compose/cloud/Fedora-Cloud-30-20190611.0/compose',
    composeId: 'Fedora-Cloud-30-20190611.0',
    composeDate: '20190611',
    composeType: 'production',
    respin: 0,
    version: '30',
    releaseShort: 'Fedora-Cloud',
    arch,
    imageType: 'Cloud-Base',
    artifacts: {
      aws: {
        image: selectImage(images, 'Cloud-Base', arch),
        url: 'https://kojipkgs.fedoraproject.org/x.raw.xz',
      },
    },
    missing: [],
  });
  const config = parseConfig('[aws]\nregions = ["us-east-1", "eu-west-1"]\nvolume_types = ["gp3", "gp2"]');
  const settings = awsModule.targetSettings(config, [[]], {});
  /** The AWS target as the runtime plans it: the system decides, the provider checks and completes. */
  const awsTarget = (arch: 'x86_64' | 'aarch64') =>
    awsModule.check(fedora.plan(facts(arch), settings).targets[0]!);
  it('sets the architecture and boot mode right for each arch', () => {
    const x86 = awsTarget('x86_64');
    expect(x86.settings).toMatchObject({
      architecture: 'x86_64',
      bootMode: 'uefi-preferred',
      enaSupport: true,
      sriovNetSupport: 'simple',
      rootDeviceName: '/dev/sda1',
      imdsSupport: 'v2.0',
    });
    const arm = awsTarget('aarch64');
    expect(arm.settings).toMatchObject({ architecture: 'arm64', bootMode: 'uefi' });
    // AWS's name for the architecture stays in the AWS settings; the release's facts use Fedora's.
    expect(arm.tags.Arch).toBe('aarch64');
    expect(arm.architecture).toBe('aarch64');
  });
  it('names one image per region and volume type, and tags the release', () => {
    const plan = awsTarget('x86_64');
    expect(plan.images.map((t) => t.name)).toEqual([
      'Fedora-Cloud-Base-30-20190611.0.x86_64-hvm-us-east-1-gp3-0',
      'Fedora-Cloud-Base-30-20190611.0.x86_64-hvm-us-east-1-gp2-0',
      'Fedora-Cloud-Base-30-20190611.0.x86_64-hvm-eu-west-1-gp3-0',
      'Fedora-Cloud-Base-30-20190611.0.x86_64-hvm-eu-west-1-gp2-0',
    ]);
    expect(plan.tags).toMatchObject({
      Channel: 'cloud',
      Version: '30',
      ComposeID: 'Fedora-Cloud-30-20190611.0',
      Date: '2019-06-11',
      Arch: 'x86_64',
    });
    expect(plan.source).toMatchObject({ sha256: 'ab'.repeat(32), compression: 'xz' });
  });
});
