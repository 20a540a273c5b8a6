import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, copyFile, mkdir, open, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { fixedVhdFooter } from '../emulator/azure/vhd.js';

/** A deterministic pseudo-random generator (mulberry32), so generated images are the same every run. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface RawImageSpec {
  /** Size of the raw disk in bytes. */
  size: number;
  /** Fraction of the disk that holds data (the rest reads as zeros). */
  dataFraction: number;
  seed?: number;
  /** Size of each data extent. */
  extentBytes?: number;
}

/**
 * Data extents for a raw disk: like a filesystem, a few dense areas at the start (superblock, metadata),
 * then files spread over the disk, not aligned to any block size.
 */
export function dataExtents(spec: RawImageSpec): { offset: number; length: number }[] {
  // No data at all: an empty or all-zero disk, the broken build plume must refuse.
  if (spec.dataFraction <= 0 || spec.size === 0) return [];
  const rand = prng(spec.seed ?? 1);
  const extent = spec.extentBytes ?? 3 * 1024 * 1024 + 4096 * 3;
  const count = Math.max(1, Math.round((spec.size * spec.dataFraction) / extent));
  const stride = Math.floor(spec.size / count);
  const out: { offset: number; length: number }[] = [];
  for (let i = 0; i < count; i++) {
    const jitter = Math.floor(rand() * Math.max(1, stride - extent));
    const offset = Math.min(i * stride + jitter, spec.size - extent);
    out.push({
      offset: Math.max(0, offset - (offset % 512) + (i % 7) * 512),
      length: Math.min(extent, spec.size),
    });
  }
  return out;
}

/** Compressible but not trivial content: text-like lines from a small vocabulary. */
export function fillData(buf: Buffer, rand: () => number): void {
  const words = [
    'fedora',
    'cloud',
    'kernel',
    'systemd',
    'cloud-init',
    'x86_64',
    'aarch64',
    'rpm',
    'ostree',
    'grub',
    'selinux',
    'dnf',
  ];
  let pos = 0;
  while (pos < buf.length) {
    const w = `${words[Math.floor(rand() * words.length)]} ${Math.floor(rand() * 1e9).toString(36)}\n`;
    pos += buf.write(w, pos);
  }
}

/** Write a raw disk image as a sparse file: only the data extents take space. */
export async function writeRawImage(
  path: string,
  spec: RawImageSpec,
): Promise<{ extents: { offset: number; length: number }[] }> {
  await mkdir(dirname(path), { recursive: true });
  const fh = await open(path, 'w');
  const rand = prng((spec.seed ?? 1) * 7919);
  const extents = dataExtents(spec);
  try {
    await fh.truncate(spec.size);
    for (const e of extents) {
      const buf = Buffer.alloc(e.length);
      fillData(buf, rand);
      await fh.write(buf, 0, buf.length, e.offset);
    }
  } finally {
    await fh.close();
  }
  return { extents };
}

/**
 * Run xz (or bzip2) on a file, writing `path + ext`. `threads` is xz's `--threads`: 1 makes a single-block
 * xz (one decoder thread possible), 0 or more than 1 a multi-block xz, and `'+1'` a multi-block xz made on
 * one thread (block sizes in the headers, so it decodes in parallel), which lets several run side by side.
 */
export async function compressFile(
  path: string,
  kind: 'xz' | 'bzip2',
  opts: { level?: number; threads?: number | '+1' } = {},
): Promise<string> {
  const args =
    kind === 'xz'
      ? ['--compress', '--keep', '--force', `-${opts.level ?? 1}`, `--threads=${opts.threads ?? 1}`, path]
      : ['--compress', '--keep', '--force', `-${opts.level ?? 1}`, path];
  await new Promise<void>((resolve, reject) => {
    const child = spawn(kind, args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${kind} exited ${code}`))));
  });
  return `${path}${kind === 'xz' ? '.xz' : '.bz2'}`;
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1024 * 1024 }))
    hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export interface SampleCompose {
  /** Directory that holds `compose/` (serve this). */
  root: string;
  composeId: string;
  /** Path of the compose/ directory relative to the root. */
  composePath: string;
  images: Record<string, { path: string; sha256: string; rawSize: number; build: string }>;
  /** The images of `moreImages`, by `{variant}/{arch}`. */
  more: Record<string, { path: string; sha256: string; rawSize: number; build: string }>;
  /** With `gce`: the GCE archives (a tar.gz holding disk.raw), by arch. */
  gce: Record<string, { path: string; sha256: string; rawSize: number; build: string }>;
  /** With `azure`: the Azure fixed VHDs (the raw disk and its footer, xz-compressed), by arch. */
  azure: Record<string, { path: string; sha256: string; rawSize: number; build: string }>;
}

export interface SampleComposeSpec {
  dir: string;
  composeId?: string;
  version?: string;
  date?: string;
  respin?: number;
  label?: string | null;
  releaseShort?: string;
  composeType?: string;
  /** Raw size of each image. */
  rawSize?: number;
  dataFraction?: number;
  arches?: ('x86_64' | 'aarch64')[];
  /** productmd images.json version. */
  productmdVersion?: string;
  /** Image file base name per arch, without `.raw.xz` (default Fedora-Cloud-Base-{version}-{date}.{respin}.{arch}). */
  buildName?: (arch: string) => string;
  /** Variant the cloud image is filed under. */
  variant?: string;
  subvariant?: string;
  /** Cloud images of other variants in the same compose (a release compose's AtomicHost images). */
  moreImages?: { variant: string; subvariant: string; buildName: (arch: string) => string }[];
  /** Also the GCE archive of each cloud image (`Fedora-Cloud-Base-GCE-...tar.gz`, type `tar-gz`). */
  gce?: boolean;
  /**
   * Also the Azure image of each cloud image (`Fedora-Cloud-Base-Azure-...vhdfixed.xz`, type
   * `vhd-compressed`): a fixed VHD, so `rawSize` must be a whole number of MiB.
   */
  azure?: boolean;
}

/** A fixed VHD of a raw disk, as image builders make it: the disk, then the 512-byte footer. */
export async function writeFixedVhd(raw: string, out: string, rawSize: number): Promise<void> {
  if (rawSize % 2 ** 20 !== 0)
    throw new Error(`an Azure VHD needs a whole number of MiB, not ${rawSize} bytes`);
  await mkdir(dirname(out), { recursive: true });
  await copyFile(raw, out);
  await appendFile(out, fixedVhdFooter(rawSize));
}

/**
 * A GCE image archive of a raw disk, as image builders make it: a gzip'd tar of a sparse member named
 * disk.raw (`tar --format=oldgnu -S`), so a sparse disk stays small.
 */
export async function writeGceArchive(raw: string, out: string): Promise<void> {
  await mkdir(dirname(out), { recursive: true });
  const args = [
    '--format=oldgnu',
    '-Sczf',
    out,
    '-C',
    dirname(raw),
    '--transform',
    's,.*,disk.raw,',
    basename(raw),
  ];
  await new Promise<void>((resolve, reject) => {
    const child = spawn('tar', args, { stdio: ['ignore', 'ignore', 'inherit'] });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`tar exited ${code}`))));
  });
}

/**
 * A Pungi-shaped compose on disk: compose/metadata/{images,composeinfo}.json and xz-compressed raw
 * images, with the decoys a real compose has (qcow2 and vagrant files, a Server raw-xz, a ppc64le image).
 */
export async function writeSampleCompose(spec: SampleComposeSpec): Promise<SampleCompose> {
  const version = spec.version ?? '30';
  const date = spec.date ?? '20190611';
  const respin = spec.respin ?? 0;
  const short = spec.releaseShort ?? 'Fedora-Cloud';
  const composeId = spec.composeId ?? `${short}-${version}-${date}.${respin}`;
  const composePath = join(composeId, 'compose');
  const composeDir = join(spec.dir, composePath);
  const variant = spec.variant ?? 'Cloud';
  const subvariant = spec.subvariant ?? 'Cloud_Base';
  const images: SampleCompose['images'] = {};
  const more: SampleCompose['more'] = {};
  const gce: SampleCompose['gce'] = {};
  const azure: SampleCompose['azure'] = {};
  const entries: Record<string, Record<string, unknown[]>> = { [variant]: {}, Server: {} };
  const sets = [
    {
      variant,
      subvariant,
      buildName: (arch: string) =>
        spec.buildName?.(arch) ?? `Fedora-Cloud-Base-${version}-${date}.${respin}.${arch}`,
      put: (arch: string, v: SampleCompose['images'][string]) => (images[arch] = v),
    },
    ...(spec.moreImages ?? []).map((m) => ({
      ...m,
      put: (arch: string, v: SampleCompose['images'][string]) => (more[`${m.variant}/${arch}`] = v),
    })),
  ];
  // Seeds count on across the sets, so the main set's images are the same as without `moreImages`.
  let seed = 0;
  for (const set of sets)
    for (const arch of spec.arches ?? ['x86_64']) {
      const i = seed++;
      const { variant, subvariant } = set;
      entries[variant] ??= {};
      const build = set.buildName(arch);
      const rel = `${variant}/${arch}/images/${build}.raw`;
      const rawSize = spec.rawSize ?? 64 * 1024 * 1024;
      await writeRawImage(join(composeDir, rel), {
        size: rawSize,
        dataFraction: spec.dataFraction ?? 0.1,
        seed: i + 1,
      });
      const { rm, stat } = await import('node:fs/promises');
      const extra: unknown[] = [];
      if (spec.gce && set.variant === variant) {
        const gceBuild = build.replace(/^Fedora-Cloud-Base-/, 'Fedora-Cloud-Base-GCE-');
        const gceRel = `${variant}/${arch}/images/${gceBuild}.tar.gz`;
        await writeGceArchive(join(composeDir, rel), join(composeDir, gceRel));
        const gceSha = await sha256File(join(composeDir, gceRel));
        gce[arch] = { path: gceRel, sha256: gceSha, rawSize, build: gceBuild };
        extra.push({
          checksums: { sha256: gceSha },
          format: 'tar.gz',
          path: gceRel,
          size: (await stat(join(composeDir, gceRel))).size,
          type: 'tar-gz',
        });
      }
      if (spec.azure && set.variant === variant) {
        const azureBuild = build.replace(/^Fedora-Cloud-Base-/, 'Fedora-Cloud-Base-Azure-');
        const vhdRel = `${variant}/${arch}/images/${azureBuild}.vhdfixed`;
        await writeFixedVhd(join(composeDir, rel), join(composeDir, vhdRel), rawSize);
        const vhdXz = await compressFile(join(composeDir, vhdRel), 'xz', { threads: 0 });
        await rm(join(composeDir, vhdRel));
        const vhdSha = await sha256File(vhdXz);
        azure[arch] = { path: `${vhdRel}.xz`, sha256: vhdSha, rawSize, build: azureBuild };
        extra.push({
          checksums: { sha256: vhdSha },
          format: 'vhdfixed.xz',
          path: `${vhdRel}.xz`,
          size: (await stat(vhdXz)).size,
          type: 'vhd-compressed',
        });
      }
      const xzPath = await compressFile(join(composeDir, rel), 'xz', { threads: 0 });
      await rm(join(composeDir, rel));
      const sha256 = await sha256File(xzPath);
      const size = (await stat(xzPath)).size;
      set.put(arch, { path: `${rel}.xz`, sha256, rawSize, build });
      const common = {
        arch,
        bootable: false,
        disc_count: 1,
        disc_number: 1,
        implant_md5: null,
        mtime: 1560244212,
        subvariant,
        volume_id: null,
      };
      entries[variant][arch] = [
        {
          ...common,
          checksums: { sha256: 'a'.repeat(64) },
          format: 'qcow2',
          path: `${variant}/${arch}/images/${build}.qcow2`,
          size: 316997632,
          type: 'qcow2',
        },
        { ...common, checksums: { sha256 }, format: 'raw.xz', path: `${rel}.xz`, size, type: 'raw-xz' },
        {
          ...common,
          checksums: { sha256: 'b'.repeat(64) },
          format: 'vagrant-libvirt.box',
          path: `${variant}/${arch}/images/${build.replace('Base', 'Base-Vagrant')}.vagrant-libvirt.box`,
          size: 300512345,
          type: 'vagrant-libvirt',
        },
        ...extra.map((e) => ({ ...common, ...(e as object) })),
      ];
      entries.Server![arch] = [
        {
          ...common,
          subvariant: 'Server',
          checksums: { sha256: 'c'.repeat(64) },
          format: 'raw.xz',
          path: `Server/${arch}/images/Fedora-Server-${version}-${date}.${respin}.${arch}.raw.xz`,
          size: 1234,
          type: 'raw-xz',
        },
      ];
    }
  entries.Server!.ppc64le = [
    {
      arch: 'ppc64le',
      bootable: false,
      checksums: { sha256: 'd'.repeat(64) },
      disc_count: 1,
      disc_number: 1,
      format: 'raw.xz',
      implant_md5: null,
      mtime: 1,
      path: `${variant}/ppc64le/images/Fedora-Cloud-Base-${version}-${date}.${respin}.ppc64le.raw.xz`,
      size: 1,
      subvariant,
      type: 'raw-xz',
      volume_id: null,
    },
  ];
  const compose = { date, id: composeId, respin, type: spec.composeType ?? 'production' };
  await mkdir(join(composeDir, 'metadata'), { recursive: true });
  await writeFile(
    join(composeDir, 'metadata', 'images.json'),
    JSON.stringify(
      {
        header: { type: 'productmd.images', version: spec.productmdVersion ?? '1.2' },
        payload: { compose, images: entries },
      },
      null,
      2,
    ),
  );
  await writeFile(
    join(composeDir, 'metadata', 'composeinfo.json'),
    JSON.stringify(
      {
        header: { type: 'productmd.composeinfo', version: '1.2' },
        payload: {
          compose: {
            ...compose,
            label: spec.label === undefined ? `RC-${date}.${respin}` : spec.label,
            final: true,
          },
          release: { internal: false, name: short, short, type: 'ga', version, is_layered: false },
          variants: {},
        },
      },
      null,
      2,
    ),
  );
  return { root: spec.dir, composeId, composePath, images, more, gce, azure };
}
