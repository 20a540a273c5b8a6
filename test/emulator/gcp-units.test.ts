import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  createReadStream,
  ftruncateSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkArchive } from '../../tools/emulator/gcp/archive.js';
import { parseFilter } from '../../tools/emulator/gcp/list-filter.js';
import { parseContentRange } from '../../tools/emulator/gcp/resumable.js';

const MiB = 2 ** 20;
let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'plume-gcp-units-'));
  mkdirSync(join(dir, 'src'));
  // A sparse 3 GiB disk with a little data at its start and at 2 GiB, and a 1 KiB side file.
  const fd = openSync(join(dir, 'src', 'disk.raw'), 'w');
  writeSync(fd, randomBytes(4096), 0, 4096, 0);
  writeSync(fd, randomBytes(4096), 0, 4096, 2 * 1024 * MiB);
  ftruncateSync(fd, 3 * 1024 * MiB);
  closeSync(fd);
  execFileSync('sh', ['-c', `head -c 1024 /dev/urandom > '${join(dir, 'src', 'README')}'`]);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function tar(...args: string[]) {
  const out = join(dir, `${randomBytes(6).toString('hex')}.tar.gz`);
  execFileSync('tar', ['-czf', out, '-C', join(dir, 'src'), ...args]);
  return createReadStream(out);
}

describe("GCE's reading of an image archive", () => {
  it.each([
    [
      'old GNU sparse (tar -S --format=oldgnu, what image builders use)',
      ['--format=oldgnu', '-S', 'disk.raw'],
    ],
    ['GNU sparse', ['--format=gnu', '-S', 'disk.raw']],
    ['pax sparse (GNU.sparse.* records)', ['--format=pax', '-S', 'disk.raw']],
    ['disk.raw after another member, as ./disk.raw', ['--format=gnu', '-S', './README', './disk.raw']],
  ])('finds disk.raw and its real size in %s', async (_what, args) => {
    expect(await checkArchive(tar(...args))).toEqual({ ok: true, diskBytes: 3 * 1024 * MiB });
  });

  it('refuses an archive without disk.raw, a tar that is not gzip-compressed, and gzip that is not tar', async () => {
    expect(await checkArchive(tar('--format=gnu', 'README'))).toMatchObject({
      ok: false,
      code: 'INVALID_IMAGE_FILE',
      message: 'The image archive does not contain a file named disk.raw.',
    });
    const plainTar = execFileSync('tar', ['-cf', '-', '-C', join(dir, 'src'), 'README']);
    expect(await checkArchive(Readable.from(plainTar))).toMatchObject({
      ok: false,
      code: 'INVALID_IMAGE_FILE',
    });
    expect(await checkArchive(Readable.from(gzipSync(randomBytes(4096))))).toMatchObject({
      ok: false,
      message: expect.stringContaining('not a valid tar file'),
    });
  });
});

describe('resumable Content-Range', () => {
  it('reads queries, chunks, final chunks and open-ended bodies; refuses the rest', () => {
    expect(parseContentRange('bytes */*')).toEqual({ kind: 'query' });
    expect(parseContentRange('bytes */100')).toEqual({ kind: 'query', total: 100 });
    expect(parseContentRange('bytes 0-262143/*')).toEqual({ kind: 'data', start: 0, end: 262143 });
    expect(parseContentRange('bytes 262144-299999/300000')).toEqual({
      kind: 'data',
      start: 262144,
      end: 299999,
      total: 300000,
    });
    expect(parseContentRange('bytes 0-*/*')).toEqual({ kind: 'data', start: 0 });
    for (const bad of [undefined, 'bytes 5-1/10', 'items 0-1/2', 'bytes 0-1'])
      expect(() => parseContentRange(bad)).toThrow(/Failed to parse Content-Range/);
  });
});

describe('list filters', () => {
  const image = {
    name: 'fedora-41',
    family: 'fedora',
    labels: { channel: 'cloud' },
    deprecated: { state: 'DEPRECATED' },
  };
  it.each([
    ['name = fedora-41', true],
    ['name != fedora-41', false],
    ['labels.channel = cloud', true],
    ['labels.missing = x', false],
    ['deprecated.state = DEPRECATED', true],
    ['(family = fedora) (labels.channel = rawhide)', false],
    ['(family = fedora) AND (labels.channel = cloud)', true],
    ['family = other OR name eq "fedora-[0-9]+"', true],
    ['name ne "fedora-.*"', false],
    ['name : fedora', true],
  ])('%s → %s', (filter, expected) => {
    expect(parseFilter(filter)(image)).toBe(expected);
  });

  it('refuses what it cannot read (400)', () => {
    for (const bad of ['name =', '(name = x', 'name ~ x', 'name = x)'])
      expect(() => parseFilter(bad)).toThrow(/Invalid list filter expression/);
  });
});
