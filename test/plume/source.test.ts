import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { splitBlocks, type BlockStats } from '../../src/plume/source/blocks.js';
import { decompress } from '../../src/plume/source/decompress.js';
import { fetchDocument, probeSource, streamSource } from '../../src/plume/source/fetch.js';
import { openImage } from '../../src/plume/source/image.js';
import {
  DEFAULT_SOURCE_POLICY,
  checkSource,
  childUrl,
  type SourcePolicy,
} from '../../src/plume/source/policy.js';
import { xzUncompressedSize } from '../../src/plume/source/xz-index.js';
import { serveDirectory, type FileServer } from '../../tools/compose/http-server.js';
import { PlumeError } from '../../src/shared/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'plume-source-'));
let server: FileServer;
const policy: SourcePolicy = {
  ...DEFAULT_SOURCE_POLICY,
  allowedHosts: ['127.0.0.1'],
  attempts: 3,
  idleTimeoutMs: 2000,
};

async function collect(it: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of it) parts.push(c);
  return Buffer.concat(parts);
}

beforeAll(async () => {
  const data = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < data.length; i += 4096) data.write(`block ${i}`, i);
  writeFileSync(join(dir, 'raw'), data);
  execFileSync('xz', ['-k', '-1', join(dir, 'raw')]);
  execFileSync('xz', ['-k', '-1', '-T2', '--block-size=1MiB', '-c', join(dir, 'raw')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  writeFileSync(
    join(dir, 'multi.xz'),
    execFileSync('xz', ['-1', '-T2', '--block-size=1MiB', '-c', join(dir, 'raw')]),
  );
  // Two concatenated streams with stream padding between them, as `cat a.xz b.xz` or pxz can make.
  const one = execFileSync('xz', ['-1', '-c', join(dir, 'raw')]);
  writeFileSync(join(dir, 'concat.xz'), Buffer.concat([one, Buffer.alloc(8), one]));
  const whole = readFileSync(join(dir, 'raw.xz'));
  writeFileSync(join(dir, 'truncated.xz'), whole.subarray(0, Math.floor(whole.length / 2)));
  const noise = Buffer.alloc(2 * 1024 * 1024);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 2654435761) >>> 24;
  writeFileSync(join(dir, 'noise.bin'), noise);
  server = await serveDirectory(dir);
});

afterAll(async () => server.close());

describe('xz index', () => {
  const readAt = (file: string) => {
    const buf = readFileSync(join(dir, file));
    return { size: buf.length, read: async (o: number, l: number) => buf.subarray(o, o + l) };
  };
  it('reads the uncompressed size of single-block, multi-block and concatenated files', async () => {
    const raw = 3 * 1024 * 1024 + 123;
    for (const [file, expected] of [
      ['raw.xz', raw],
      ['multi.xz', raw],
      ['concat.xz', 2 * raw],
    ] as const) {
      const f = readAt(file);
      expect(await xzUncompressedSize(f.size, f.read), file).toBe(expected);
    }
  });
  it('refuses a file that is not a complete xz', async () => {
    const f = readAt('truncated.xz');
    await expect(xzUncompressedSize(f.size, f.read)).rejects.toThrow(/not a complete xz file/);
  });
});

describe('block splitting', () => {
  it('cuts fixed blocks, skips all-zero ones and pads the tail', async () => {
    const chunks = [Buffer.alloc(1000), Buffer.from('x'), Buffer.alloc(2047), Buffer.alloc(100, 1)];
    const stats: BlockStats = { bytes: 0, blocks: 0, zeroBlocks: 0 };
    const blocks = [];
    for await (const b of splitBlocks(
      (async function* () {
        yield* chunks;
      })(),
      1024,
      1 << 20,
      stats,
    ))
      blocks.push(b);
    // 'x' at byte 1000 → block 0; block 1 all zero; ones from byte 3048 → blocks 2 and 3 (the padded tail).
    expect(blocks.map((b) => b.index)).toEqual([0, 2, 3]);
    expect(blocks[0]!.data[1000]).toBe('x'.charCodeAt(0));
    expect(stats).toEqual({ bytes: 3148, blocks: 4, zeroBlocks: 1 });
    const last = blocks[2]!.data;
    expect(last.length).toBe(1024);
    expect(last.subarray(0, 76).every((b) => b === 1)).toBe(true);
    expect(last.subarray(76).every((b) => b === 0)).toBe(true);
  });
  it('refuses more data than the volume holds', async () => {
    const stats: BlockStats = { bytes: 0, blocks: 0, zeroBlocks: 0 };
    const gen = splitBlocks(
      (async function* () {
        yield Buffer.alloc(4096, 1);
      })(),
      1024,
      2048,
      stats,
    );
    await expect(
      collect(
        (async function* () {
          for await (const b of gen) yield b.data;
        })(),
      ),
    ).rejects.toThrow(/larger than its/);
  });
});

describe('decompression', () => {
  it('round-trips through xz', async () => {
    const out = await collect(
      decompress(streamSource(await probeSource(new URL(`${server.url}/multi.xz`), policy), policy), 'xz'),
    );
    expect(out.equals(readFileSync(join(dir, 'raw')))).toBe(true);
  });
  it('reports a truncated stream clearly', async () => {
    const src = streamSource(await probeSource(new URL(`${server.url}/truncated.xz`), policy), policy);
    await expect(collect(decompress(src, 'xz'))).rejects.toThrow(
      /not a valid xz stream \(.*Unexpected end of input/,
    );
  });
});

describe('fetching', () => {
  it('resumes a broken download with a Range request and yields exactly the file', async () => {
    server.faults.push({ pathSuffix: '/noise.bin', cutAfterBytes: 1_000_000 });
    const info = await probeSource(new URL(`${server.url}/noise.bin`), policy);
    const body = await collect(streamSource(info, policy));
    expect(body.equals(readFileSync(join(dir, 'noise.bin')))).toBe(true);
    // The server cut the connection after 1 MB; the client resumes from what it actually received.
    const resumed = server.requests.filter((r) => r.path === '/noise.bin' && r.range?.startsWith('bytes='));
    expect(resumed).toHaveLength(1);
    expect(Number(/bytes=(\d+)-/.exec(resumed[0]!.range!)![1])).toBeGreaterThan(0);
  });
  it('retries a 503 and fails clearly on a 404', async () => {
    server.faults.push({ pathSuffix: '/raw', status: 503 });
    expect((await fetchDocument(`${server.url}/raw`, policy)).length).toBe(3 * 1024 * 1024 + 123);
    await expect(fetchDocument(`${server.url}/nope.json`, policy)).rejects.toThrow(/not found \(HTTP 404\)/);
  });
  it('refuses hosts, schemes and files the policy does not allow', () => {
    expect(() => checkSource('https://evil.example.com/x', policy)).toThrow(/not an allowed image source/);
    expect(() => checkSource('ftp://127.0.0.1/x', policy)).toThrow(/unsupported URL scheme/);
    expect(() => checkSource('/etc/passwd', policy)).toThrow(/refusing to read local file/);
    expect(() =>
      checkSource('http://kojipkgs.fedoraproject.org/x', {
        ...policy,
        allowedHosts: ['kojipkgs.fedoraproject.org'],
      }),
    ).toThrow(/plain http/);
    expect(
      checkSource('https://a.fedoraproject.org/x', { ...policy, allowedHosts: ['*.fedoraproject.org'] }).host,
    ).toBe('a.fedoraproject.org');
    expect(() =>
      checkSource('https://fedoraproject.org.evil.com/x', {
        ...policy,
        allowedHosts: ['*.fedoraproject.org'],
      }),
    ).toThrow();
  });
  it('keeps image paths inside the compose', () => {
    const base = new URL('https://h/compose/Fedora-1/compose');
    expect(childUrl(base, 'Cloud/x86_64/images/a.raw.xz').href).toBe(
      'https://h/compose/Fedora-1/compose/Cloud/x86_64/images/a.raw.xz',
    );
    for (const bad of [
      '../../etc/passwd',
      'Cloud/../../x',
      '/abs/path',
      'https://evil/x',
      'file:///etc/passwd',
    ])
      expect(() => childUrl(base, bad), bad).toThrow(PlumeError);
  });
  it('refuses a redirect to a host that is not allowed', async () => {
    const { createServer } = await import('node:http');
    const redirector = createServer((_req, res) =>
      res.writeHead(302, { location: 'http://localhost.evil.example/x' }).end(),
    );
    await new Promise<void>((r) => redirector.listen(0, '127.0.0.1', r));
    const port = (redirector.address() as { port: number }).port;
    await expect(fetchDocument(`http://127.0.0.1:${port}/x`, policy)).rejects.toThrow(
      /not an allowed image source/,
    );
    redirector.close();
  });
});

describe('opening an image', () => {
  it('knows the raw size from the xz index and checks the checksum at the end', async () => {
    const url = new URL(`${server.url}/raw.xz`);
    const image = await openImage({ url, compression: 'xz', sha256: '0'.repeat(64) }, policy);
    expect(image.rawBytes).toBe(3 * 1024 * 1024 + 123);
    expect(image.volumeGiB).toBe(1);
    const reader = image.read(512 * 1024);
    let n = 0;
    for await (const _ of reader.blocks) n++;
    expect(n).toBe(7);
    expect(() => reader.finish()).toThrow(/sha256 mismatch/);
  });
});
