/**
 * Benchmark inputs: sparse raw disks laid out like a freshly installed filesystem, compressed as a
 * single-block xz (what `xz` makes by default, decodable on one core only) and a multi-block xz (what
 * `xz -T0` makes, decodable in parallel). Generated once from fixed seeds and cached under `.bench/inputs`;
 * a manifest records what was made so a rerun checks sizes and goes straight to measuring.
 */
import { createCipheriv } from 'node:crypto';
import { existsSync } from 'node:fs';
import { link, mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { basename, join } from 'node:path';
import { mapBounded } from '../src/shared/concurrency.js';
import { compressFile, prng, sha256File } from '../tools/compose/sample-compose.js';

/** Bump when the layout or content changes, so stale caches are regenerated. */
const GENERATOR_VERSION = 5;
/**
 * Distributions ship at xz's default preset (-6), which compresses at about 1 MB/s here: -1 keeps a fresh
 * run inside its time budget, and decodes at much the same speed.
 */
const LEVEL = 1;

const KiB = 1024;
const MiB = 1024 * KiB;

export interface Extent {
  offset: number;
  length: number;
  /** What the bytes look like, which decides how well xz compresses them and how fast it decodes them. */
  kind: 'text' | 'binary' | 'compressed' | 'metadata';
}

export interface ImageLayoutSpec {
  size: number;
  dataFraction: number;
  seed: number;
}

const GROUP = 128 * MiB;
const FS_BLOCK = 4 * KiB;

/**
 * Where data sits on the disk. The shape follows ext4/xfs on a fresh cloud image: partition tables at both
 * ends, allocation-group metadata every 128 MiB, and files whose sizes span 4 KiB to 64 MiB (most files are
 * small, most bytes are in large ones), packed into groups with the front of the disk fuller than the back.
 * Small files scattered over many groups is what makes zero-skipping per 512 KiB block imperfect.
 */
export function imageLayout(spec: ImageLayoutSpec): Extent[] {
  const rand = prng(spec.seed);
  const groups = Math.max(1, Math.floor(spec.size / GROUP));
  const out: Extent[] = [
    { offset: 0, length: 17 * KiB, kind: 'metadata' },
    { offset: spec.size - 16 * KiB, length: 16 * KiB, kind: 'metadata' },
  ];
  const cursor: number[] = [];
  for (let g = 0; g < groups; g++) {
    const meta = (g === 0 ? 4 * MiB : 256 * KiB) + Math.floor(rand() * 8) * FS_BLOCK;
    const start = g === 0 ? MiB : g * GROUP;
    out.push({ offset: start, length: meta, kind: 'metadata' });
    cursor.push(start + meta);
  }
  const budget = spec.size * spec.dataFraction;
  let used = out.reduce((n, e) => n + e.length, 0);
  while (used < budget) {
    // Log-uniform size: as many 4-64 KiB files as 4-64 MiB ones.
    const length = Math.min(
      Math.ceil((4 * KiB * Math.pow(2, rand() * 14)) / FS_BLOCK) * FS_BLOCK,
      Math.ceil(budget - used),
    );
    // Squaring a uniform number favours low group numbers: the front of the disk fills first.
    let g = Math.floor(rand() * rand() * groups);
    // A full group passes the file on to the next one with room, as an allocator would.
    for (let tries = 0; tries < groups; tries++, g = (g + 1) % groups) {
      const end = g === groups - 1 ? spec.size - 16 * KiB : (g + 1) * GROUP;
      if (cursor[g]! + length <= end) break;
    }
    const end = g === groups - 1 ? spec.size - 16 * KiB : (g + 1) * GROUP;
    if (cursor[g]! + length > end) break;
    const r = rand();
    const kind: Extent['kind'] = r < 0.5 ? 'text' : r < 0.94 ? 'binary' : 'compressed';
    out.push({ offset: cursor[g]!, length, kind });
    // Free space between files, from none to a few blocks, as deletes and alignment leave.
    cursor[g] = cursor[g]! + length + Math.floor(rand() * rand() * 16) * FS_BLOCK;
    used += length;
  }
  return out.sort((a, b) => a.offset - b.offset);
}

/** Deterministic fast bytes: AES-CTR of zeros under a key derived from the seed. */
function keystream(seed: number, length: number): Buffer {
  const key = Buffer.alloc(16);
  key.writeUInt32LE(seed >>> 0, 0);
  key.writeUInt32LE(GENERATOR_VERSION, 4);
  return createCipheriv('aes-128-ctr', key, Buffer.alloc(16)).update(Buffer.alloc(length));
}

const WORDS = (
  'the of and to in is for on with as by at from this that it be are or an was config systemd kernel usr ' +
  'lib share locale python3 site packages fedora cloud init dnf rpm selinux policy module firmware include ' +
  'doc man html json yaml'
).split(' ');

/**
 * Content generators. Their mix is tuned so xz treats the data as it treats a real cloud image's (text
 * about 5:1, machine code about 2.5:1, already-compressed files not at all; about 3:1 overall) while
 * staying quick to generate and to compress, which is most of a fresh run's time.
 */
class Content {
  private readonly lines: Buffer[] = [];
  private readonly snippets: Buffer[] = [];

  constructor(private readonly rand: () => number) {
    // Configuration, docs and scripts repeat a limited set of lines.
    for (let i = 0; i < 8192; i++) {
      let line = '';
      for (let j = 0, k = 3 + Math.floor(rand() * 10); j < k; j++) {
        const word =
          rand() < 0.15
            ? Math.floor(rand() * 65536).toString(rand() < 0.5 ? 10 : 16)
            : WORDS[Math.floor(rand() * WORDS.length)]!;
        line += (j === 0 ? '' : rand() < 0.2 ? '/' : ' ') + word;
      }
      this.lines.push(Buffer.from(line + '\n'));
    }
    // Machine code: a skewed choice among a few thousand instruction sequences, with immediates.
    const ks = keystream(77, 4096 * 12);
    for (let i = 0; i < 4096; i++) this.snippets.push(ks.subarray(i * 12, i * 12 + 2 + (ks[i * 12]! % 10)));
  }

  fill(buf: Buffer, kind: Extent['kind'], seed: number): void {
    const rand = this.rand;
    let pos = 0;
    switch (kind) {
      case 'text':
        while (pos < buf.length) pos += this.lines[Math.floor(rand() * this.lines.length)]!.copy(buf, pos);
        return;
      case 'compressed':
        keystream(seed, buf.length).copy(buf);
        return;
      case 'binary':
      case 'metadata': {
        const imm = keystream(seed, buf.length >> 2);
        let q = 0;
        while (pos < buf.length) {
          pos += this.snippets[Math.floor(rand() * rand() * this.snippets.length)]!.copy(buf, pos);
          // A 32-bit immediate with a small value: two random bytes, two zeros.
          if (rand() < 0.2 && pos + 4 <= buf.length) {
            pos += imm.copy(buf, pos, q, q + 2);
            buf[pos++] = 0;
            buf[pos++] = 0;
            q += 2;
          }
        }
        return;
      }
    }
  }
}

export async function writeLayoutImage(path: string, spec: ImageLayoutSpec): Promise<Extent[]> {
  const extents = imageLayout(spec);
  const content = new Content(prng(spec.seed * 7919));
  const fh = await open(path, 'w');
  try {
    await fh.truncate(spec.size);
    for (const [i, e] of extents.entries()) {
      const buf = Buffer.allocUnsafe(e.length);
      content.fill(buf, e.kind, spec.seed * 1_000_003 + i);
      await fh.write(buf, 0, buf.length, e.offset);
    }
  } finally {
    await fh.close();
  }
  return extents;
}

export interface BenchFile {
  path: string;
  /** Compressed size. */
  bytes: number;
  sha256: string;
}

export interface BenchImage {
  name: string;
  rawBytes: number;
  dataBytes: number;
  single: BenchFile;
  multi: BenchFile;
}

interface Manifest {
  version: number;
  images: BenchImage[];
}

async function valid(img: BenchImage): Promise<boolean> {
  for (const f of [img.single, img.multi]) {
    if (!existsSync(f.path) || (await stat(f.path)).size !== f.bytes) return false;
  }
  return true;
}

/**
 * Make (or find) one image per size. `log` reports progress: generating takes a minute on a small
 * machine, and a silent minute looks like a hang.
 */
export async function ensureInputs(
  dir: string,
  sizes: { name: string; bytes: number }[],
  log: (line: string) => void,
): Promise<BenchImage[]> {
  await mkdir(dir, { recursive: true });
  const manifestPath = join(dir, 'manifest.json');
  let manifest: Manifest = { version: GENERATOR_VERSION, images: [] };
  try {
    const read = JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest;
    if (read.version === GENERATOR_VERSION) manifest = read;
  } catch {
    /* no cache yet */
  }
  // Paths are kept relative to the cache so a moved checkout still finds its inputs.
  const cached = (found: BenchImage): BenchImage => ({
    ...found,
    single: { ...found.single, path: join(dir, basename(found.single.path)) },
    multi: { ...found.multi, path: join(dir, basename(found.multi.path)) },
  });
  const out = new Map<string, BenchImage>();
  const missing: { size: { name: string; bytes: number }; seed: number }[] = [];
  for (const [i, size] of sizes.entries()) {
    const found = manifest.images.find((m) => m.name === size.name && m.rawBytes === size.bytes);
    if (found && (await valid(cached(found)))) out.set(size.name, cached(found));
    else missing.push({ size, seed: i + 1 });
  }
  if (missing.length > 0) {
    const started = performance.now();
    log(
      `generating ${missing.map((m) => `${m.size.name} (raw ${m.size.bytes / 2 ** 30} GiB)`).join(', ')}, 15% data...`,
    );
    // Laying out a disk takes seconds; compressing it takes minutes, so the compressions are what is
    // scheduled: one xz thread each, as many at once as there are cores, the biggest first. (xz -T0 next
    // to a single-threaded xz left a core idle for most of a run, and a fresh run has ten minutes.)
    const jobs: { raw: string; threads: 1 | '+1'; to: string; bytes: number }[] = [];
    const made = new Map<string, { extents: Extent[]; raw: string }>();
    for (const { size, seed } of missing) {
      const raw = join(dir, `${size.name}.raw`);
      const extents = await writeLayoutImage(raw, { size: size.bytes, dataFraction: 0.15, seed });
      made.set(size.name, { extents, raw });
      // xz writes `input + .xz`, so each compression reads the raw disk under a name of its own.
      const twin = join(dir, `${size.name}-twin.raw`);
      await rm(twin, { force: true });
      await link(raw, twin);
      jobs.push({ raw, threads: 1, to: singleName(dir, size.name), bytes: size.bytes });
      jobs.push({ raw: twin, threads: '+1', to: multiName(dir, size.name), bytes: size.bytes });
    }
    jobs.sort((a, b) => b.bytes - a.bytes);
    await mapBounded(jobs, availableParallelism(), async (job) => {
      await rename(await compressFile(job.raw, 'xz', { level: LEVEL, threads: job.threads }), job.to);
      await rm(job.raw);
    });
    const file = async (path: string): Promise<BenchFile> => ({
      path,
      bytes: (await stat(path)).size,
      sha256: await sha256File(path),
    });
    for (const { size } of missing) {
      const { extents } = made.get(size.name)!;
      const img: BenchImage = {
        name: size.name,
        rawBytes: size.bytes,
        dataBytes: extents.reduce((n, e) => n + e.length, 0),
        single: await file(singleName(dir, size.name)),
        multi: await file(multiName(dir, size.name)),
      };
      manifest.images = [...manifest.images.filter((m) => m.name !== size.name), img];
      out.set(size.name, img);
    }
    await writeFile(manifestPath, JSON.stringify(manifest, null, 2));
    log(`  done in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  }
  return sizes.map((s) => out.get(s.name)!);
}

const singleName = (dir: string, name: string) => join(dir, `${name}-single.raw.xz`);
const multiName = (dir: string, name: string) => join(dir, `${name}-multi.raw.xz`);
