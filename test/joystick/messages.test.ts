import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  composeFailed,
  releaseAnnouncements,
  uploadFailed,
  uploadStarted,
  type ImageFacts,
} from '../../src/joystick/messages.js';
import type { TargetRecord } from '../../src/plume/record.js';
import { contractErrors } from '../support/schemas.js';

const fixture = (name: string) =>
  JSON.parse(readFileSync(new URL(`../fixtures/messages/${name}`, import.meta.url), 'utf8'));

/** Same keys at every level, and the same JSON type for each value. */
function shape(v: unknown): unknown {
  if (v === null) return 'null';
  if (Array.isArray(v)) return v.map(shape);
  if (typeof v === 'object')
    return Object.fromEntries(
      Object.entries(v)
        .map(([k, x]) => [k, shape(x)])
        .sort(),
    );
  return typeof v;
}

const facts: ImageFacts = {
  jobId: 'J',
  composeId: 'Fedora-28-20180425.0',
  imageUrl:
    'https://kojipkgs.fedoraproject.org/compose/28/Fedora-28-20180425.0/compose/Cloud/x86_64/images/Fedora-Cloud-Base-28-1.1.x86_64.raw.xz',
  build: 'Fedora-Cloud-Base-28-1.1.x86_64',
  architecture: 'x86_64',
  ec2Architecture: 'x86_64',
  channel: 'cloud',
  uploader: { imageName: 'Fedora-Cloud-Base-AmazonEC2.x86_64-28-1.1', subvariant: 'Cloud_Base', release: 28 },
};

const image = (location: string, variant: string, id: string) => ({
  location,
  variant,
  id,
  name: `${facts.build}-hvm-${location}-${variant}-0`,
});
const record = {
  provider: 'aws',
  status: 'complete',
  mode: 'release',
  primaryLocation: 'us-east-1',
  images: [
    image('us-east-1', 'gp3', 'ami-1'),
    image('us-east-1', 'gp2', 'ami-2'),
    image('eu-west-1', 'gp3', 'ami-3'),
    image('eu-west-1', 'gp2', 'ami-4'),
  ],
  problems: [],
  plan: { images: [{ location: 'us-east-1', variant: 'gp3' }] },
  finishedAt: '2026-01-01T00:00:00Z',
} as unknown as TargetRecord;

/** Every key of the real message is in ours, with a value of the same JSON type, at every level. */
function sameFields(ours: unknown, real: unknown, where = 'body'): string[] {
  if (real === null || typeof real !== 'object' || Array.isArray(real))
    return shape(ours) === shape(real) || (real === null && (ours === null || typeof ours === 'string'))
      ? []
      : [
          `${where}: ${JSON.stringify(shape(ours))} where the real message has ${JSON.stringify(shape(real))}`,
        ];
  if (ours === null || typeof ours !== 'object') return [`${where}: not an object`];
  return Object.entries(real).flatMap(([k, v]) =>
    k in ours
      ? sameFields((ours as Record<string, unknown>)[k], v, `${where}.${k}`)
      : [`${where}.${k}: missing`],
  );
}

describe("announcements keep fedimg's and fedora-image-uploader's fields", () => {
  const out = releaseAnnouncements(facts, record, { fedimg: true, uploader: true });
  const byTopic = (t: string) => out.filter((m) => m.topic === t);

  it('every one satisfies the contract its topic names (the schemas written from fedimg and fedora-image-uploader)', () => {
    const all = [
      ...out,
      ...uploadStarted(facts, 'us-east-1', ['gp3', 'gp2']),
      ...uploadFailed(facts, 'us-east-1', ['gp3'], 3),
    ].filter((m) => !m.topic.startsWith('joystick.'));
    expect(all.flatMap((m) => contractErrors(m.topic, m.body))).toEqual([]);
    // The schemas can fail: the copy's AMI name where fedimg put the build name, AWS's arch name for
    // fedora-image-uploader, a topic that does not match the body.
    const copy = byTopic('fedimg.image.copy')[0]!;
    expect(
      contractErrors(copy.topic, {
        ...copy.body,
        image_name: 'Fedora-Cloud-Base-28-1.1.x86_64-hvm-eu-west-1-gp2-0',
      }),
    ).toHaveLength(1);
    const u = out.find((m) => m.topic.startsWith('fedora_image_uploader.'))!;
    expect(contractErrors(u.topic, { ...u.body, architecture: 'arm64' })).toHaveLength(1);
    expect(contractErrors(u.topic.replace('x86_64', 'aarch64'), u.body)).toHaveLength(1);
    // The real messages satisfy the same schemas (which is what makes them the contract).
    for (const name of ['fedimg-image-upload.json', 'fedimg-image-copy.json', 'fedimg-image-publish.json']) {
      const real = fixture(name) as { topic: string; body: unknown };
      expect(contractErrors(real.topic, real.body), name).toEqual([]);
    }
  });

  it('upload: one per volume type, base region, with the fields of fedimg 2.x', () => {
    const up = byTopic('fedimg.image.upload');
    expect(up).toHaveLength(2);
    const fx = fixture('fedimg-image-upload.json').body;
    for (const m of up) expect(sameFields(m.body, fx)).toEqual([]);
    expect(up.find((m) => (m.body.extra as { vol_type: string }).vol_type === 'gp2')?.body).toEqual({
      ...fx,
      extra: { ...fx.extra, id: 'ami-2' },
    });
    const started = uploadStarted(facts, 'us-east-1', ['gp3']);
    expect(started[0]!.body).toEqual({
      ...fx,
      status: 'started',
      extra: { virt_type: 'hvm', vol_type: 'gp3' },
    });
    // A failure carries exactly what fedimg's did (the reason is in joystick.release.failed).
    expect(uploadFailed(facts, 'us-east-1', ['gp3'], 1)[0]!.body).toEqual({
      ...fx,
      status: 'failed',
      extra: { virt_type: 'hvm', vol_type: 'gp3' },
    });
  });
  it('copy: one per region and volume type outside the base region, named by the build as fedimg did', () => {
    const copies = byTopic('fedimg.image.copy');
    expect(copies).toHaveLength(2);
    const real = fixture('fedimg-image-copy.json').body;
    const gp2 = copies.find((m) => (m.body.extra as { vol_type: string }).vol_type === 'gp2')!;
    expect(sameFields(gp2.body, real)).toEqual([]);
    expect(gp2.body).toEqual({
      image_name: 'Fedora-Cloud-Base-28-1.1.x86_64',
      destination: 'eu-west-1',
      architecture: 'x86_64',
      service: 'EC2',
      compose_id: 'Fedora-28-20180425.0',
      extra: { id: 'ami-4', virt_type: 'hvm', vol_type: 'gp2', source_image_id: 'ami-2' },
    });
  });
  it('publish: every region and volume type, image_url only for the base region', () => {
    const pubs = byTopic('fedimg.image.publish');
    expect(pubs).toHaveLength(4);
    const real = fixture('fedimg-image-publish.json').body;
    const eu = pubs.find(
      (m) => m.body.destination === 'eu-west-1' && (m.body.extra as { vol_type: string }).vol_type === 'gp2',
    )!;
    expect(sameFields(eu.body, real)).toEqual([]);
    expect(eu.body).toEqual({
      image_name: 'Fedora-Cloud-Base-28-1.1.x86_64',
      image_url: null,
      architecture: 'x86_64',
      destination: 'eu-west-1',
      service: 'EC2',
      compose: 'Fedora-28-20180425.0',
      extra: { id: 'ami-4', virt_type: 'hvm', vol_type: 'gp2' },
    });
    expect(pubs.find((m) => m.body.destination === 'us-east-1')!.body.image_url).toBe(facts.imageUrl);
  });
  it('fedora-image-uploader: one per image, its topic, schema and regions map', () => {
    const real = fixture('image-uploader-published-aws.json');
    const [u] = out.filter((m) => m.topic.startsWith('fedora_image_uploader.'));
    expect(u!.topic).toBe('fedora_image_uploader.published.v1.aws.Cloud_Base.28.x86_64');
    expect(u!.schema).toBe(real.headers.fedora_messaging_schema);
    expect(sameFields({ ...u!.body, regions: {} }, { ...real.body, regions: {} })).toEqual([]);
    expect(u!.body).toEqual({
      architecture: 'x86_64',
      compose_id: 'Fedora-28-20180425.0',
      image_name: 'Fedora-Cloud-Base-AmazonEC2.x86_64-28-1.1',
      regions: { 'us-east-1': 'ami-1', 'eu-west-1': 'ami-3' },
      release: 28,
      subvariant: 'Cloud_Base',
    });
  });
  it.each([
    ['x86_64', 'x86_64'],
    ['aarch64', 'arm64'],
  ])(
    "%s: Fedora's name in fedora-image-uploader's topic and body and joystick's own, EC2's (%s) in fedimg's",
    (arch, ec2) => {
      const f: ImageFacts = {
        ...facts,
        architecture: arch,
        ec2Architecture: ec2,
        build: `Fedora-Cloud-Base-28-1.1.${arch}`,
        uploader: { ...facts.uploader!, imageName: `Fedora-Cloud-Base-AmazonEC2.${arch}-28-1.1` },
      };
      const msgs = releaseAnnouncements(
        f,
        {
          ...record,
          status: 'partial',
          problems: [{ location: 'ap-south-1', variant: 'gp3', kind: 'missing', detail: 'x' }],
        },
        { fedimg: true, uploader: true },
      );
      const [u] = msgs.filter((m) => m.topic.startsWith('fedora_image_uploader.'));
      expect(u!.topic).toBe(`fedora_image_uploader.published.v1.aws.Cloud_Base.28.${arch}`);
      expect(u!.body.architecture).toBe(arch);
      expect(msgs.find((m) => m.topic === 'joystick.release.partial')!.body.architecture).toBe(arch);
      for (const m of msgs.filter(
        (x) => x.topic === 'fedimg.image.copy' || x.topic === 'fedimg.image.publish',
      ))
        expect(m.body.architecture).toBe(ec2);
    },
  );

  it('every message has a distinct key, and failures are ERROR', () => {
    expect(new Set(out.map((m) => m.key)).size).toBe(out.length);
    const partial = releaseAnnouncements(
      facts,
      {
        ...record,
        status: 'partial',
        problems: [{ location: 'ap-south-1', variant: 'gp3', kind: 'missing', detail: 'copy failed' }],
      },
      { fedimg: false, uploader: false },
    );
    expect(partial).toHaveLength(1);
    expect(partial[0]).toMatchObject({ topic: 'joystick.release.partial', severity: 40 });
    expect(partial[0]!.body.regions).toEqual(['ap-south-1']);
    expect(composeFailed('C', 'L', 'cloud', 'no images.json').severity).toBe(40);
  });
});

describe("GCE's and Azure's images are announced as fedora-image-uploader announced them", () => {
  const f: ImageFacts = {
    ...facts,
    composeId: 'Fedora-40-20240414.0',
    build: 'Fedora-Cloud-Base-GCE-40-1.14.x86_64',
  };
  const uploader = { imageName: 'x', subvariant: 'Cloud_Base', release: 40 };

  it('GCE: one published.v1.gcp per image, with its family, URL and storage locations', () => {
    const gce = {
      ...record,
      provider: 'gcp',
      primaryLocation: 'global',
      images: [
        {
          location: 'global',
          variant: 'image',
          name: 'fedora-cloud-40-1-14-x86-64',
          id: 'projects/fedora-cloud/global/images/fedora-cloud-40-1-14-x86-64',
        },
      ],
      plan: { images: [], settings: { family: 'fedora-cloud-40', storageLocations: ['us'] } },
    } as unknown as TargetRecord;
    const out = releaseAnnouncements({ ...f, uploader }, gce, { fedimg: true, uploader: true });
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({
      topic: 'fedora_image_uploader.published.v1.gcp',
      schema: 'fedora_image_uploader.published.v1.gcp',
      severity: 20,
    });
    expect(out[0]!.body).toEqual({
      architecture: 'x86_64',
      compose_id: 'Fedora-40-20240414.0',
      release: 40,
      subvariant: 'Cloud_Base',
      family: 'fedora-cloud-40',
      image_name: 'fedora-cloud-40-1-14-x86-64',
      image_url:
        'https://www.googleapis.com/compute/v1/projects/fedora-cloud/global/images/fedora-cloud-40-1-14-x86-64',
      storage_locations: ['us'],
    });
    expect(contractErrors(out[0]!.topic, out[0]!.body)).toEqual([]);
    // No fedimg message for GCE: fedimg only ever spoke of EC2.
    expect(out.filter((m) => m.topic.startsWith('fedimg.'))).toEqual([]);
  });

  it('Azure: one published.v1.azure per version, with its definition, resource id and regions', () => {
    const id =
      '/CommunityGalleries/Fedora-5e266ba4-2250-406d-adad-5d73860d958f/Images/Fedora-Cloud-40-x64/Versions/40.20240501.0';
    const azure = {
      ...record,
      provider: 'azure',
      primaryLocation: 'eastus',
      images: ['eastus', 'eastus2', 'centralus'].map((location) => ({
        location,
        variant: 'version',
        name: '40.20240501.0',
        id,
      })),
      plan: { images: [], settings: { definition: 'Fedora-Cloud-40-x64' } },
    } as unknown as TargetRecord;
    const out = releaseAnnouncements({ ...f, composeId: 'Fedora-40-20240501.n.0', uploader }, azure, {
      fedimg: true,
      uploader: true,
    });
    expect(out.map((m) => m.topic)).toEqual(['fedora_image_uploader.published.v1.azure']);
    expect(out[0]!.body).toEqual({
      architecture: 'x86_64',
      compose_id: 'Fedora-40-20240501.n.0',
      image_definition_name: 'Fedora-Cloud-40-x64',
      image_version_name: '40.20240501.0',
      image_resource_id: id,
      regions: ['centralus', 'eastus', 'eastus2'],
      release: 40,
      subvariant: 'Cloud_Base',
    });
    expect(contractErrors(out[0]!.topic, out[0]!.body)).toEqual([]);
  });

  it('a GCE or Azure target with problems pages someone, as an AWS one does', () => {
    const failed = {
      ...record,
      provider: 'gcp',
      status: 'failed',
      images: [],
      problems: [{ location: 'global', variant: 'image', kind: 'missing', detail: 'no image' }],
    } as unknown as TargetRecord;
    const out = releaseAnnouncements({ ...f, uploader }, failed, { fedimg: true, uploader: true });
    expect(out.map((m) => [m.topic, m.severity])).toEqual([['joystick.release.failed', 40]]);
  });
});
