import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  composeFailed,
  releaseAnnouncements,
  uploadStarted,
  type ImageFacts,
} from '../../src/joystick/messages.js';
import type { ReleaseRecord } from '../../src/plume/record.js';

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
  plan: { targets: [{ location: 'us-east-1', variant: 'gp3' }] },
  finishedAt: '2026-01-01T00:00:00Z',
} as unknown as ReleaseRecord;

describe("announcements keep fedimg's and fedora-image-uploader's shapes", () => {
  const out = releaseAnnouncements(facts, record, { fedimg: true, uploader: true });
  const byTopic = (t: string) => out.filter((m) => m.topic === t);

  it('upload: one per volume type, base region, same fields as fedimg', () => {
    const up = byTopic('fedimg.image.upload');
    expect(up).toHaveLength(2);
    const fx = fixture('fedimg-image-upload.json').body;
    for (const m of up) expect(shape(m.body)).toEqual(shape(fx));
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
  });
  it("copy: one per region and volume type outside the base region, with the copy's full name", () => {
    const copies = byTopic('fedimg.image.copy');
    expect(copies).toHaveLength(2);
    const fx = fixture('fedimg-image-copy.json').body;
    const gp2 = copies.find((m) => (m.body.extra as { vol_type: string }).vol_type === 'gp2')!;
    expect(shape(gp2.body)).toEqual(shape(fx));
    expect(gp2.body).toEqual({ ...fx, extra: { ...fx.extra, id: 'ami-4', source_image_id: 'ami-2' } });
  });
  it('publish: every region and volume type, image_url only for the base region', () => {
    const pubs = byTopic('fedimg.image.publish');
    expect(pubs).toHaveLength(4);
    const fx = fixture('fedimg-image-publish.json').body;
    const eu = pubs.find(
      (m) => m.body.destination === 'eu-west-1' && (m.body.extra as { vol_type: string }).vol_type === 'gp2',
    )!;
    expect(eu.body).toEqual({ ...fx, extra: { ...fx.extra, id: 'ami-4' } });
    expect(pubs.find((m) => m.body.destination === 'us-east-1')!.body.image_url).toBe(facts.imageUrl);
  });
  it('fedora-image-uploader: one per image, its topic, schema and regions map', () => {
    const fx = fixture('image-uploader-published-aws.json');
    const [u] = out.filter((m) => m.topic.startsWith('fedora_image_uploader.'));
    expect(u!.topic).toBe('fedora_image_uploader.published.v1.aws.Cloud_Base.28.x86_64');
    expect(u!.schema).toBe(fx.headers.fedora_messaging_schema);
    // Same fields and types; the regions map's keys are the regions published.
    expect(shape({ ...u!.body, regions: {} })).toEqual(shape({ ...fx.body, regions: {} }));
    expect(Object.values(u!.body.regions as object).every((v) => typeof v === 'string')).toBe(true);
    expect(u!.body.regions).toEqual({ 'us-east-1': 'ami-1', 'eu-west-1': 'ami-3' });
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
