import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  composeMeaning,
  fedimgBuildName,
  fedora,
  parseComposeId,
  parseLabel,
  releasesForCompose,
  uploaderImageName,
} from '../../../src/plume/systems/fedora/index.js';
import { parsePungiBody } from '../../../src/joystick/pungi.js';
import { DEFAULT_SOURCE_POLICY } from '../../../src/plume/source/policy.js';
import { sourceAccess, targetSettings } from '../../../src/plume/runtime.js';
import { awsModule } from '../../../src/plume/providers/aws/module.js';
import type { SourcePolicy } from '../../../src/plume/source/policy.js';
import type { Logger } from '../../../src/shared/log.js';

/** How the runtime gives a system its sources: through the policy, for AWS here. */
const locateCtx = (policy: SourcePolicy, log: Logger) => ({
  source: sourceAccess(policy),
  log,
  providers: ['aws'],
});
import { parseConfig } from '../../../src/plume/config.js';
import type { PlumeError } from '../../../src/shared/errors.js';
import { createLogger } from '../../../src/shared/log.js';
import { serveDirectory, type FileServer } from '../../../tools/compose/http-server.js';
import type { ComposeWatch } from '../../../src/plume/systems/types.js';
import { pungiBody } from '../../../tools/reliability/pungi.js';

const GOLDEN_COMPOSES = join(new URL('../golden/', import.meta.url).pathname, 'composes');

describe('what a compose means', () => {
  it.each([
    [
      'Rawhide nightly',
      {
        composeId: 'Fedora-Rawhide-20240501.n.0',
        releaseShort: 'Fedora',
        composeType: 'nightly',
        composeLabel: null,
        releaseVersion: 'Rawhide',
      },
      { ours: true, channel: 'rawhide', imageTypes: ['Cloud-Base'], labelKind: 'none', version: 'Rawhide' },
    ],
    [
      'branched nightly of a release with Atomic Host',
      {
        composeId: 'Fedora-28-20180321.n.0',
        releaseShort: 'Fedora',
        composeType: 'nightly',
        composeLabel: null,
        releaseVersion: '28',
      },
      {
        ours: true,
        channel: 'branched',
        imageTypes: ['Cloud-Base', 'AtomicHost'],
        labelKind: 'none',
        version: '28',
      },
    ],
    [
      'branched nightly after Atomic Host ended',
      {
        composeId: 'Fedora-41-20240901.n.0',
        releaseShort: 'Fedora',
        composeType: 'nightly',
        releaseVersion: '41',
      },
      { ours: true, channel: 'branched', imageTypes: ['Cloud-Base'], labelKind: 'none' },
    ],
    [
      'Beta candidate of the main compose',
      {
        composeId: 'Fedora-41-20240912.0',
        releaseShort: 'Fedora',
        composeType: 'production',
        composeLabel: 'Beta-1.2',
        releaseVersion: '41',
      },
      {
        ours: true,
        channel: 'cloud',
        imageTypes: ['Cloud-Base'],
        labelKind: 'Beta',
        labelVersion: '1.2',
        version: '41',
      },
    ],
    [
      'release candidate of the main compose',
      {
        composeId: 'Fedora-41-20241020.0',
        releaseShort: 'Fedora',
        composeType: 'production',
        composeLabel: 'RC-1.4',
        releaseVersion: '41',
      },
      { ours: true, channel: 'cloud', imageTypes: ['Cloud-Base'], labelKind: 'RC', labelVersion: '1.4' },
    ],
    [
      "release candidate of Fedora 28's own compose, which held Atomic Host too",
      {
        composeId: 'Fedora-28-20180425.0',
        releaseShort: 'Fedora',
        composeType: 'production',
        composeLabel: 'RC-1.1',
        releaseVersion: '28',
      },
      {
        ours: true,
        channel: 'cloud',
        imageTypes: ['Cloud-Base', 'AtomicHost'],
        labelKind: 'RC',
        labelVersion: '1.1',
      },
    ],
    [
      'Fedora-Cloud two-week compose',
      {
        composeId: 'Fedora-Cloud-30-20190611.0',
        releaseShort: 'Fedora-Cloud',
        composeType: 'production',
        composeLabel: 'RC-20190611.0',
        releaseVersion: '30',
      },
      {
        ours: true,
        channel: 'cloud',
        imageTypes: ['Cloud-Base'],
        labelKind: 'RC',
        labelVersion: '20190611.0',
      },
    ],
    [
      'two-week Atomic Host release',
      {
        composeId: 'Fedora-AtomicHost-28-20180625.1',
        releaseShort: 'Fedora-AtomicHost',
        composeType: 'production',
        releaseVersion: '28',
      },
      { ours: true, channel: 'updates', imageTypes: ['AtomicHost'], labelKind: 'none' },
    ],
    [
      'only a compose id (the message carried nothing else)',
      { composeId: 'Fedora-Rawhide-20240501.n.0' },
      { ours: true, channel: 'rawhide', version: 'Rawhide' },
    ],
  ] as const)('%s', (_name, input, expected) => {
    expect(composeMeaning(input)).toMatchObject(expected);
  });

  it.each([
    [
      { composeId: 'Fedora-Cloud-31-20191020.t.3' },
      'is a test compose; only production and nightly composes are released',
    ],
    [{ composeId: 'Fedora-41-20241020.ci.0' }, 'is a ci compose'],
    [
      { composeId: 'Fedora-29-updates-20190101.0' },
      'is an updates compose, which holds packages, not cloud images',
    ],
    [
      { composeId: 'Fedora-40-20240414.0', composeLabel: null },
      'production compose without a Beta or RC label',
    ],
    [
      { composeId: 'Fedora-26-20170701.0', composeLabel: 'Alpha-1.1' },
      'is labelled Alpha-1.1; only Beta and RC composes are released',
    ],
    [
      { composeId: 'Fedora-IoT-40-20240501.0', releaseShort: 'Fedora-IoT' },
      'Fedora-IoT composes (Fedora-IoT-40-20240501.0) are not Fedora cloud image releases',
    ],
    [{ composeId: 'hello' }, 'cannot tell the release of compose hello'],
  ] as const)('not ours: %j', (input, reason) => {
    const m = composeMeaning(input);
    expect(m.ours).toBe(false);
    expect(m.ours ? '' : m.reason).toContain(reason);
  });

  it.each([
    ['http://kojipkgs.fedoraproject.org/compose//rawhide/Fedora-24-20151208.n.7/compose', 'rawhide'],
    ['https://kojipkgs.fedoraproject.org/compose/rawhide/Fedora-24-20151208.n.7/compose/', 'rawhide'],
    ['https://kojipkgs.fedoraproject.org/compose/branched/Fedora-24-20151208.n.7/compose', 'branched'],
    // Only the directory holding the compose counts, not a word elsewhere in the URL.
    ['https://rawhide.example.org/compose/Fedora-24-20151208.n.7/compose', 'branched'],
    [undefined, 'branched'],
  ])('an old-style Rawhide id (Fedora-24-20151208.n.7) at %s is %s', (location, channel) => {
    expect(composeMeaning({ composeId: 'Fedora-24-20151208.n.7', location })).toMatchObject({
      ours: true,
      channel,
      version: '24',
    });
  });

  it('reads the updates release type from the compose id', () => {
    expect(parseComposeId('Fedora-29-updates-testing-20190101.0')).toMatchObject({
      releaseShort: 'Fedora',
      version: '29',
      releaseType: 'updates-testing',
    });
    expect(parseComposeId('Fedora-40-20240414.0')?.releaseType).toBe('ga');
  });
});

describe('names the websites expect', () => {
  it.each([
    // fedimg's build names for Beta and RC composes, from Pungi's file names.
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-28_Beta-1.1.x86_64.raw.xz',
      '28',
      'x86_64',
      'Beta-1.1',
      'Fedora-Cloud-Base-28_Beta-1.1.x86_64',
    ],
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-28-1.1.x86_64.raw.xz',
      '28',
      'x86_64',
      'RC-1.1',
      'Fedora-Cloud-Base-28-1.1.x86_64',
    ],
    // The dedicated AWS build of kiwi-era composes comes back to the same scheme.
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4.raw.xz',
      '41',
      'x86_64',
      'RC-1.4',
      'Fedora-Cloud-Base-41-1.4.x86_64',
    ],
    [
      'Cloud/aarch64/images/Fedora-Cloud-Base-AmazonEC2.aarch64-41-Prerelease-1.2.raw.xz',
      '41',
      'aarch64',
      'Beta-1.2',
      'Fedora-Cloud-Base-41_Beta-1.2.aarch64',
    ],
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-AmazonEC2-40-1.14.x86_64.raw.xz',
      '40',
      'x86_64',
      'RC-1.14',
      'Fedora-Cloud-Base-40-1.14.x86_64',
    ],
    // Nightlies keep the file's name.
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-Rawhide-20240501.n.0.x86_64.raw.xz',
      'Rawhide',
      'x86_64',
      null,
      'Fedora-Cloud-Base-Rawhide-20240501.n.0.x86_64',
    ],
    [
      'AtomicHost/x86_64/images/Fedora-AtomicHost-28-20180625.1.x86_64.raw.xz',
      '28',
      'x86_64',
      null,
      'Fedora-AtomicHost-28-20180625.1.x86_64',
    ],
  ])('%s (%s) → %s', (path, version, arch, label, expected) => {
    expect(fedimgBuildName(path, { version, arch, label: parseLabel(label) })).toBe(expected);
  });

  it.each([
    [
      'Beta-1.2',
      '41',
      'Fedora-41-20240912.0',
      'x86_64',
      'Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2',
    ],
    ['RC-1.4', '41', 'Fedora-41-20241020.0', 'x86_64', 'Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4'],
    ['RC-1.4', '41', 'Fedora-41-20241020.0', 'aarch64', 'Fedora-Cloud-Base-AmazonEC2.aarch64-41-1.4'],
    [
      null,
      'Rawhide',
      'Fedora-Rawhide-20250101.n.0',
      'x86_64',
      'Fedora-Cloud-Base-AmazonEC2.x86_64-Rawhide-20250101.n.0',
    ],
  ])('fedora-image-uploader name for %s of %s', (label, version, composeId, arch, expected) => {
    expect(
      uploaderImageName({ imageType: 'Cloud-Base', arch, version, label: parseLabel(label), composeId }),
    ).toBe(expected);
  });

  it('announces releases under the uploader name, subvariant and release number', () => {
    const plan = {
      version: '41',
      arch: 'x86_64',
      imageType: 'Cloud-Base',
      compose: 'Fedora-41-20240912.0',
      label: 'Beta-1.2',
    };
    expect(fedora.uploaderAnnouncement!(plan as never)).toEqual({
      imageName: 'Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2',
      subvariant: 'Cloud_Base',
      release: 41,
    });
    expect(fedora.uploaderAnnouncement!({ ...plan, version: 'Rawhide' } as never)).toBeUndefined();
  });
});

describe('what a finished compose calls for', () => {
  let server: FileServer;
  const ctx = () => ({
    source: sourceAccess({ ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 }),
    log: createLogger({ level: 'silent', name: 'test' }),
    providers: ['aws'],
  });
  const watch: ComposeWatch = {
    channels: ['rawhide', 'branched', 'updates', 'cloud'],
    arches: ['x86_64', 'aarch64'],
  };
  beforeAll(async () => {
    server = await serveDirectory(join(new URL('../golden/', import.meta.url).pathname, 'composes'));
  });
  afterAll(async () => server?.close());
  const facts = (id: string) => ({ id, location: `${server.url}/${id}/compose`, status: 'FINISHED' });

  it('a branched nightly: one request per image type and arch, from the compose id alone', async () => {
    const d = await releasesForCompose(facts('Fedora-28-20180321.n.0'), watch, ctx());
    expect(d.kind).toBe('release');
    if (d.kind !== 'release') return;
    expect(d.channel).toBe('branched');
    expect(d.requests.map((r) => `${r.imageType}/${r.arch}`)).toEqual([
      'Cloud-Base/x86_64',
      'Cloud-Base/aarch64',
      'AtomicHost/x86_64',
      'AtomicHost/aarch64',
    ]);
    expect(d.requests[0]).toMatchObject({
      system: 'fedora',
      channel: 'branched',
      compose: `${server.url}/Fedora-28-20180321.n.0/compose`,
      composeId: 'Fedora-28-20180321.n.0',
      version: '28',
      respin: 0,
    });
  });

  it('a Beta compose: the label comes from composeinfo.json when the message lacks it', async () => {
    const d = await releasesForCompose(
      facts('Fedora-41-20240912.0'),
      { ...watch, environment: 'staging' },
      ctx(),
    );
    expect(d).toMatchObject({ kind: 'release', channel: 'cloud' });
    if (d.kind !== 'release') return;
    expect(d.requests).toHaveLength(2);
    expect(d.requests[0]).toMatchObject({
      label: 'Beta-1.2',
      imageType: 'Cloud-Base',
      environment: 'staging',
    });
  });

  it('ignores channels nobody watches', async () => {
    const d = await releasesForCompose(
      facts('Fedora-Rawhide-20180625.n.0'),
      { ...watch, channels: ['cloud'] },
      ctx(),
    );
    expect(d).toEqual({
      kind: 'ignore',
      reason: 'Fedora-Rawhide-20180625.n.0 is a rawhide compose, a channel not watched',
    });
  });

  it('a watched compose without the images is broken, loudly', async () => {
    // A two-week Atomic Host compose whose images.json lists no AtomicHost image (here: the F41 compose's
    // images, under the Atomic compose's own composeinfo.json).
    const id = 'Fedora-AtomicHost-28-20180625.1';
    const dir = mkdtempSync(join(tmpdir(), 'plume-broken-'));
    const meta = join(dir, id, 'compose', 'metadata');
    mkdirSync(meta, { recursive: true });
    const golden = (c: string, f: string) =>
      readFileSync(join(GOLDEN_COMPOSES, c, 'compose', 'metadata', f), 'utf8');
    writeFileSync(join(meta, 'composeinfo.json'), golden(id, 'composeinfo.json'));
    writeFileSync(
      join(meta, 'images.json'),
      golden('Fedora-41-20240912.0', 'images.json').replaceAll('Fedora-41-20240912.0', id),
    );
    const local = await serveDirectory(dir);
    try {
      const d = await releasesForCompose(
        { id, location: `${local.url}/${id}/compose`, status: 'FINISHED' },
        watch,
        ctx(),
      );
      expect(d.kind).toBe('broken');
      expect(d.kind === 'broken' && d.reason).toContain(
        `compose ${id} has no AtomicHost raw-xz image for x86_64: its raw-xz images are: Cloud/Cloud_Base/aarch64, Cloud/Cloud_Base/x86_64`,
      );
    } finally {
      await local.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("Fedora 28's release candidate, its message carrying another label", () => {
  // The real compose: label RC-1.1 in its composeinfo.json, Cloud and AtomicHost images for two arches
  // (and qcow2, Vagrant and ppc64le files); the message edited to say RC-20180425.0.
  const id = 'Fedora-28-20180425.0';
  let server: FileServer;
  beforeAll(async () => {
    server = await serveDirectory(GOLDEN_COMPOSES);
  });
  afterAll(async () => server?.close());

  async function decide(watchArches = ['x86_64', 'aarch64']) {
    const lines: { msg: string; image?: string }[] = [];
    const log = createLogger({
      level: 'info',
      destination: new Writable({
        write(chunk: Buffer, _enc, done) {
          for (const l of chunk.toString().split('\n').filter(Boolean)) lines.push(JSON.parse(l) as never);
          done();
        },
      }),
    });
    const message = pungiBody(id, `${server.url}/${id}/compose`, 'FINISHED', {
      compose_label: 'RC-20180425.0',
    });
    const parsed = parsePungiBody(message);
    if (!parsed.ok) throw new Error(parsed.reason);
    const policy = { ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 };
    const d = await releasesForCompose(
      parsed.compose,
      { channels: ['cloud'], arches: watchArches },
      locateCtx(policy, log),
    );
    return { d, lines, policy, log };
  }

  it("publishes Cloud Base and Atomic Host for both arches, named from the compose's label", async () => {
    const { d, policy, log } = await decide();
    expect(d).toMatchObject({ kind: 'release', channel: 'cloud' });
    if (d.kind !== 'release') return;
    expect(d.requests.map((r) => `${r.imageType}/${r.arch}/${r.label}`)).toEqual([
      'Cloud-Base/x86_64/RC-1.1',
      'Cloud-Base/aarch64/RC-1.1',
      'AtomicHost/x86_64/RC-1.1',
      'AtomicHost/aarch64/RC-1.1',
    ]);
    const builds = [];
    for (const request of d.requests) {
      const facts = await fedora.locate(request, locateCtx(policy, log));
      const plan = fedora.plan(
        facts,
        awsModule.targetSettings(
          parseConfig('[aws]\nregions = ["us-east-1"]\nvolume_types = ["gp3"]'),
          [[]],
          {},
        ),
      );
      builds.push(plan.build);
      expect(plan.label).toBe('RC-1.1');
    }
    // The names the websites look for, not Fedora-Cloud-Base-28-20180425.0.x86_64.
    expect(builds).toEqual([
      'Fedora-Cloud-Base-28-1.1.x86_64',
      'Fedora-Cloud-Base-28-1.1.aarch64',
      'Fedora-AtomicHost-28-1.1.x86_64',
      'Fedora-AtomicHost-28-1.1.aarch64',
    ]);
  });

  it('says, one INFO line each, which cloud images it leaves out and why, and that it followed the compose', async () => {
    const { lines } = await decide(['x86_64']);
    const skipped = Object.fromEntries(
      lines
        .filter((l) => l.image)
        .map((l) => [l.image!.split('/').pop(), l.msg.replace(/^not publishing [^:]+: /, '')]),
    );
    expect(skipped).toEqual({
      'Fedora-Cloud-Base-28-1.1.x86_64.qcow2':
        'it is a qcow2 file; AWS images are made from the raw-xz disk image',
      'Fedora-Cloud-Base-Vagrant-28-1.1.x86_64.vagrant-libvirt.box':
        'it is a vagrant-libvirt file; AWS images are made from the raw-xz disk image',
      'Fedora-Cloud-Base-28-1.1.aarch64.qcow2':
        'it is a qcow2 file; AWS images are made from the raw-xz disk image',
      'Fedora-Cloud-Base-28-1.1.aarch64.raw.xz': 'aarch64 is not among the watched arches',
      'Fedora-Cloud-Base-Vagrant-28-1.1.aarch64.vagrant-libvirt.box':
        'it is a vagrant-libvirt file; AWS images are made from the raw-xz disk image',
      'Fedora-Cloud-Base-28-1.1.ppc64le.raw.xz': 'AWS runs no ppc64le images',
      'Fedora-AtomicHost-28-1.1.x86_64.qcow2':
        'it is a qcow2 file; AWS images are made from the raw-xz disk image',
      'Fedora-AtomicHost-28-1.1.aarch64.qcow2':
        'it is a qcow2 file; AWS images are made from the raw-xz disk image',
      'Fedora-AtomicHost-28-1.1.aarch64.raw.xz': 'aarch64 is not among the watched arches',
    });
    // One line per image: nothing said twice, and the Server image (not a cloud variant) not at all.
    expect(lines.filter((l) => l.image)).toHaveLength(Object.keys(skipped).length);
    expect(lines.map((l) => l.msg)).toContain(
      'following the compose\'s composeinfo.json where the message differs: label "RC-1.1" (the message said "RC-20180425.0")',
    );
  });
});

describe('an old-style Rawhide compose, as its fedmsg-bridged message announced it', () => {
  it('is published on the rawhide channel, the location telling what the id does not', async () => {
    const fixtures = new URL('../../fixtures/', import.meta.url).pathname;
    const dump = JSON.parse(
      readFileSync(join(fixtures, 'messages', 'pungi-status-finished-rawhide-2015-fedmsg.json'), 'utf8'),
    ) as { body: { msg: { location: string } } };
    const server = await serveDirectory(fixtures);
    try {
      // The same path (double slash and all) on the local server instead of kojipkgs.
      const body = {
        ...dump.body,
        msg: {
          ...dump.body.msg,
          location: dump.body.msg.location.replace(
            'http://kojipkgs.fedoraproject.org/compose/',
            `${server.url}/composes/`,
          ),
        },
      };
      const parsed = parsePungiBody(body);
      expect(parsed.ok).toBe(true);
      if (!parsed.ok) return;
      const d = await releasesForCompose(
        parsed.compose,
        { channels: ['rawhide', 'branched'], arches: ['x86_64'] },
        locateCtx(
          { ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 },
          createLogger({ level: 'silent' }),
        ),
      );
      expect(d).toMatchObject({ kind: 'release', channel: 'rawhide' });
      if (d.kind !== 'release') return;
      expect(d.requests.map((r) => [r.channel, r.imageType, r.arch, r.version])).toEqual([
        ['rawhide', 'Cloud-Base', 'x86_64', '24'],
      ]);
    } finally {
      await server.close();
    }
  });
});

describe('a compose host that cannot be reached', () => {
  const ctx = locateCtx(
    { ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 },
    createLogger({ level: 'silent' }),
  );
  const watch = { channels: ['cloud'], arches: ['x86_64'] };
  it('ignores at once a compose whose message says it is none of ours, and retries one that may be', async () => {
    const iot = pungiBody(
      'Fedora-IoT-40-20240501.0',
      'http://127.0.0.1:1/Fedora-IoT-40-20240501.0/compose',
      'FINISHED',
    );
    const parsed = parsePungiBody(iot);
    if (!parsed.ok) throw new Error(parsed.reason);
    expect(await releasesForCompose(parsed.compose, watch, ctx)).toMatchObject({
      kind: 'ignore',
      reason: expect.stringContaining('Fedora-IoT composes') as string,
    });
    const cloud = parsePungiBody(
      pungiBody(
        'Fedora-Cloud-40-20240501.0',
        'http://127.0.0.1:1/Fedora-Cloud-40-20240501.0/compose',
        'FINISHED',
      ),
    );
    if (!cloud.ok) throw new Error(cloud.reason);
    const err = await releasesForCompose(cloud.compose, watch, ctx).then(
      () => undefined,
      (e: unknown) => e as PlumeError,
    );
    expect(err?.retryable).toBe(true);
  });
});

describe('a message that points at another compose than it names', () => {
  it('publishes nothing from it: broken when the message is ours, ignored when it is not', async () => {
    const server = await serveDirectory(GOLDEN_COMPOSES);
    const ctx = locateCtx(
      { ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 },
      createLogger({ level: 'silent' }),
    );
    const watch = { channels: ['cloud', 'branched'], arches: ['x86_64'] };
    const at = (id: string) => {
      const parsed = parsePungiBody(pungiBody(id, `${server.url}/Fedora-28-20180425.0/compose`, 'FINISHED'));
      if (!parsed.ok) throw new Error(parsed.reason);
      return parsed.compose;
    };
    try {
      expect(await releasesForCompose(at('Fedora-28-20180426.0'), watch, ctx)).toEqual({
        kind: 'broken',
        channel: 'cloud',
        reason: `the message names compose Fedora-28-20180426.0, but its location ${server.url}/Fedora-28-20180425.0/compose holds compose Fedora-28-20180425.0: nothing is published from it; check the message`,
      });
      expect(await releasesForCompose(at('Fedora-28-20180426.t.0'), watch, ctx)).toMatchObject({
        kind: 'ignore',
      });
    } finally {
      await server.close();
    }
  });
});

describe('a finished compose without metadata', () => {
  it('is broken on its channel, naming the missing file', async () => {
    const server = await serveDirectory(join(new URL('../golden/', import.meta.url).pathname, 'composes'));
    try {
      const d = await releasesForCompose(
        {
          id: 'Fedora-Cloud-32-20200101.0',
          location: `${server.url}/Fedora-Cloud-32-20200101.0/compose`,
          status: 'FINISHED',
        },
        { channels: ['cloud'], arches: ['x86_64'] },
        {
          source: sourceAccess({ ...DEFAULT_SOURCE_POLICY, allowedHosts: ['127.0.0.1'], attempts: 1 }),
          log: createLogger({ level: 'silent' }),
          providers: ['aws'],
        },
      );
      expect(d).toMatchObject({ kind: 'broken', channel: 'cloud' });
      expect(d.kind === 'broken' && d.reason).toMatch(/^not found \(HTTP 404\): .*\/metadata\/images\.json/);
    } finally {
      await server.close();
    }
  });
});

describe('fedora environments', () => {
  it('production by default, staging private, others refused', () => {
    const settings = (environment: string | undefined, config = parseConfig('')) =>
      targetSettings(config, fedora, { system: 'fedora', channel: 'rawhide', environment });
    expect(settings(undefined)).toEqual(settings('production'));
    expect(settings('prod')).toEqual(settings('production'));
    expect(settings('production')).toMatchObject([{ name: 'aws', visibility: { public: true } }]);
    expect(settings('dev')).toEqual(settings('staging'));
    expect(settings('staging')).toMatchObject([{ name: 'aws', visibility: { public: false } }]);
    let err: unknown;
    try {
      settings('qa');
    } catch (e) {
      err = e;
    }
    expect((err as PlumeError).oneLine()).toBe(
      'unknown environment "qa" for fedora: choose one of: production, staging (or configure [systems.fedora.environments.qa])',
    );
    expect(() =>
      settings(undefined, parseConfig('[systems.fedora.environments.production]\nregions = "everywhere"')),
    ).toThrow(/config: systems\.fedora\.environments\.production\.regions/);
  });
});
