import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { GCE_NAME } from '../../src/plume/providers/gcp/settings.js';
import { labelsFor } from '../../src/plume/providers/gcp/labels.js';
import { inspectTarball, parseTarHeader } from '../../src/plume/providers/gcp/tarball.js';
import { gceName } from '../../src/plume/systems/gce-names.js';
import { fedimgBuildName, parseLabel } from '../../src/plume/systems/fedora/naming.js';
import { gceFamily, gceImageName } from '../../src/plume/systems/fedora/targets.js';

/** A build name as Fedora's plan makes it from a compose's GCE file. */
const build = (path: string, version: string, arch: string, label?: string) =>
  fedimgBuildName(path, { version, arch, label: parseLabel(label) });

describe('GCE image names from real Fedora file names', () => {
  it.each([
    // fedora-image-uploader named the RC 1.14 image of Fedora 40 fedora-cloud-40-1-14-x86-64.
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-GCE-40-1.14.x86_64.tar.gz',
      '40',
      'x86_64',
      'RC-1.14',
      'fedora-cloud-40-1-14-x86-64',
    ],
    [
      'Cloud/aarch64/images/Fedora-Cloud-Base-GCE-41_Beta-1.2.aarch64.tar.gz',
      '41',
      'aarch64',
      'Beta-1.2',
      'fedora-cloud-41-beta-1-2-aarch64',
    ],
    // The 2023 Rawhide compose's file was named GCP, not GCE.
    [
      'Cloud/x86_64/images/Fedora-Cloud-Base-GCP-Rawhide-20230502.n.0.x86_64.tar.gz',
      'Rawhide',
      'x86_64',
      undefined,
      'fedora-cloud-rawhide-20230502-n-0-x86-64',
    ],
  ])('%s → %s', (path, version, arch, label, name) => {
    const got = gceImageName(build(path, version, arch, label));
    expect(got).toBe(name);
    expect(got).toMatch(GCE_NAME);
  });

  it('families per release, channel and arch', () => {
    const r = { respin: 0, labelKind: 'none' as const };
    expect(gceFamily({ ...r, channel: 'cloud', version: '41', arch: 'x86_64' })).toBe('fedora-cloud-41');
    expect(gceFamily({ ...r, channel: 'cloud', version: '41', arch: 'aarch64' })).toBe(
      'fedora-cloud-41-arm64',
    );
    expect(gceFamily({ ...r, channel: 'rawhide', version: 'Rawhide', arch: 'x86_64' })).toBe(
      'fedora-cloud-rawhide',
    );
    expect(gceFamily({ ...r, channel: 'branched', version: '42', arch: 'x86_64' })).toBe(
      'fedora-cloud-42-branched',
    );
  });
});

describe('GCE names from anything', () => {
  it('lowercase, hyphens, a letter first, at most 63 characters, and distinct when shortened', () => {
    expect(gceName('CoreOS-stable-1688.5.3')).toBe('coreos-stable-1688-5-3');
    expect(gceName('42-foo')).toBe('i-42-foo');
    const long = `Fedora-Cloud-Base-${'Very-Long-'.repeat(10)}`;
    const a = gceName(`${long}1`);
    const b = gceName(`${long}2`);
    for (const n of [a, b]) {
      expect(n).toMatch(GCE_NAME);
      expect(n.length).toBeLessThanOrEqual(63);
    }
    expect(a).not.toBe(b);
  });

  it('within a shorter limit when the caller appends its own suffix, still distinct', () => {
    const version = 'coreos-developer-1745.0.0+jenkins2-master+local-999-and-a-long-branch-name';
    const a = gceName(`${version}-1`, 53);
    const b = gceName(`${version}-2`, 53);
    for (const n of [a, b]) {
      expect(n.length).toBeLessThanOrEqual(53);
      expect(`${n}-v20180601`).toMatch(GCE_NAME);
    }
    expect(a).not.toBe(b);
    // Names that fit are the same whatever the limit.
    expect(gceName('coreos-stable-1688.5.3', 53)).toBe(gceName('coreos-stable-1688.5.3'));
  });
});

describe('GCE labels from a plan', () => {
  it("obey GCE's rules and carry the release", () => {
    const labels = labelsFor({
      key: 'fedora/cloud/Fedora-41-20240912.0/Cloud-Base/x86_64/gcp',
      tags: { ComposeID: 'Fedora-41-20240912.0', Channel: 'cloud', Date: '2024-09-12', '9lives': 'X' },
    });
    expect(labels).toMatchObject({
      composeid: 'fedora-41-20240912-0',
      channel: 'cloud',
      date: '2024-09-12',
      k9lives: 'x',
      // What `plume prune` finds the channel's images by.
      'plume-system': 'fedora',
      'plume-channel': 'cloud',
    });
    expect(labels['plume-release']).toMatch(/^[0-9a-f]{32}$/);
    for (const [k, v] of Object.entries(labels)) {
      expect(k).toMatch(/^[a-z][a-z0-9_-]{0,62}$/);
      expect(v).toMatch(/^[a-z0-9_-]{0,63}$/);
    }
  });
});

describe('the first tar header of a GCE archive', () => {
  /** A real `tar --format=oldgnu -Sczf` of a sparse disk, as image builders make them. */
  function archive(member: string, size: number): Buffer {
    const dir = mkdtempSync(join(tmpdir(), 'plume-tar-'));
    try {
      writeFileSync(join(dir, member), 'boot sector');
      execFileSync('truncate', ['-s', String(size), join(dir, member)]);
      execFileSync('tar', ['--format=oldgnu', '-Sczf', join(dir, 'a.tar.gz'), '-C', dir, member]);
      return readFileSync(join(dir, 'a.tar.gz'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  it("reads disk.raw's real size from a sparse member, passing every byte through", async () => {
    const data = archive('disk.raw', 3 * 2 ** 30);
    const seen: string[] = [];
    const t = inspectTarball(Readable.from([data.subarray(0, 10), data.subarray(10)]), (d) =>
      seen.push(`${d.member} ${d.bytes}`),
    );
    const out: Buffer[] = [];
    for await (const c of t.chunks) out.push(c);
    expect(Buffer.concat(out).equals(data)).toBe(true);
    expect(seen).toEqual([`disk.raw ${3 * 2 ** 30}`]);
    expect(t.disk()).toEqual({ member: 'disk.raw', bytes: 3 * 2 ** 30 });
  });

  it('stops at the header when the check refuses it', async () => {
    const t = inspectTarball(Readable.from([archive('root.img', 2 ** 20)]), (d) => {
      if (d.member !== 'disk.raw') throw new Error(`not disk.raw: ${d.member}`);
    });
    await expect(async () => {
      for await (const _ of t.chunks);
    }).rejects.toThrow('not disk.raw: root.img');
  });

  it('refuses what is not gzip, and a header that does not check', async () => {
    const t = inspectTarball(Readable.from([Buffer.from('plain text, not an archive')]), () => undefined);
    await expect(async () => {
      for await (const _ of t.chunks);
    }).rejects.toThrow(/not gzip data/);
    expect(() => parseTarHeader(Buffer.alloc(512, 7))).toThrow(/not a tar file/);
  });
});
