import { appendFile, copyFile, link, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { compressFile, prng, sha256File, writeRawImage } from '../compose/sample-compose.js';
import { pungiBody } from './pungi.js';

/**
 * A simulated season of Fedora composes, as Pungi announces them on the bus: nightlies of Rawhide and
 * of the branched release for both arches, the two-week Cloud releases with a respin, the release
 * candidates, with what goes wrong in real seasons mixed in: DOOMED nightlies (re-run as a respin),
 * FINISHED_INCOMPLETE composes (one holding only one arch), composes missing their images or their
 * metadata, duplicated messages, and the three message shapes seen on the bus. Deterministic for a seed.
 */

export type ComposeKind = 'rawhide' | 'branched' | 'two-week' | 'rc';
export type Shape = 'full' | 'minimal' | 'fedmsg';

export interface SeasonCompose {
  id: string;
  kind: ComposeKind;
  day: number;
  /** What Pungi reports at the end. */
  status: 'FINISHED' | 'FINISHED_INCOMPLETE' | 'DOOMED';
  /** What joystick must make of it. */
  expect: 'publish' | 'ignore' | 'broken';
  /** Why it is broken, for the report. */
  broken?: 'no-images' | 'no-metadata';
  /**
   * Its image must never be published: all zeros, or a decompression bomb (more than Fedora's 16 GiB
   * maximum volume from a few MB of xz). Its jobs fail and are announced at ERROR.
   */
  refused?: 'empty' | 'bomb';
  /** Its compose host serves images.json at 1 byte/s to the first request: no other compose may wait for it. */
  slow?: boolean;
  /** Arches whose cloud image the compose holds. */
  arches: string[];
  shape: Shape;
  /** Extra copies of the final message (a flaky bridge, a replay). */
  duplicates: number;
  version: string;
  date: string;
  respin: number;
  label: string | null;
  releaseShort: string;
  type: 'nightly' | 'production';
  /** The image file names (without directory) per arch. */
  files: Record<string, string>;
}

export interface SeasonMessage {
  /** Offset from the start of the season, in ms. */
  at: number;
  composeId: string;
  what: 'started' | 'final' | 'duplicate';
  body: Record<string, unknown>;
}

export interface Season {
  composes: SeasonCompose[];
  messages: SeasonMessage[];
}

export interface SeasonOptions {
  days: number;
  daySeconds: number;
  seed: number;
  arches: string[];
  /** Share of nightlies that end DOOMED (then re-run as respin 1 the same day). */
  doomedRate?: number;
  /** Share of final messages sent more than once. */
  duplicateRate?: number;
}

const BRANCHED = '41';
const TWO_WEEK = '40';

function dateOf(day: number): string {
  const d = new Date(Date.UTC(2024, 7, 1) + day * 86_400_000);
  return d.toISOString().slice(0, 10).replace(/-/g, '');
}

export function planSeason(o: SeasonOptions): Season {
  const rand = prng(o.seed);
  const doomedRate = o.doomedRate ?? 0.06;
  const duplicateRate = o.duplicateRate ?? 0.08;
  const composes: SeasonCompose[] = [];
  const add = (c: Omit<SeasonCompose, 'shape' | 'duplicates'> & Partial<SeasonCompose>) =>
    composes.push({ shape: 'full', duplicates: 0, ...c });

  for (let day = 0; day < o.days; day++) {
    const date = dateOf(day);
    for (const kind of ['rawhide', 'branched'] as const) {
      const version = kind === 'rawhide' ? 'Rawhide' : BRANCHED;
      const nightly = (respin: number, status: SeasonCompose['status'], arches = o.arches) => {
        const id = `Fedora-${version}-${date}.n.${respin}`;
        add({
          id,
          kind,
          day,
          status,
          expect: status === 'DOOMED' ? 'ignore' : 'publish',
          arches,
          version,
          date,
          respin,
          label: null,
          releaseShort: 'Fedora',
          type: 'nightly',
          files: Object.fromEntries(
            arches.map((a) => [a, `Fedora-Cloud-Base-Generic-${version}-${date}.n.${respin}.${a}.raw.xz`]),
          ),
        });
      };
      if (rand() < doomedRate) {
        nightly(0, 'DOOMED');
        nightly(1, 'FINISHED');
      } else nightly(0, 'FINISHED');
    }
    // The two-week Cloud release, with a respin of the first one.
    if (day % 14 === 3) {
      const respins = day === 3 ? [0, 1] : [0];
      for (const respin of respins)
        add({
          id: `Fedora-Cloud-${TWO_WEEK}-${date}.${respin}`,
          kind: 'two-week',
          day,
          status: 'FINISHED',
          expect: 'publish',
          arches: o.arches,
          version: TWO_WEEK,
          date,
          respin,
          label: `RC-${date}.${respin}`,
          releaseShort: 'Fedora-Cloud',
          type: 'production',
          files: Object.fromEntries(
            o.arches.map((a) => [a, `Fedora-Cloud-Base-${TWO_WEEK}-${date}.${respin}.${a}.raw.xz`]),
          ),
        });
    }
  }
  // Release candidates of the branched release near the end of the season: RC-1.1, then its respin RC-1.2.
  for (const [k, day] of [Math.max(0, o.days - 6), Math.max(0, o.days - 4)].entries()) {
    const date = dateOf(day);
    add({
      id: `Fedora-${BRANCHED}-${date}.${k}`,
      kind: 'rc',
      day,
      status: 'FINISHED',
      expect: 'publish',
      arches: o.arches,
      version: BRANCHED,
      date,
      respin: k,
      label: `RC-1.${k + 1}`,
      releaseShort: 'Fedora',
      type: 'production',
      files: Object.fromEntries(
        o.arches.map((a) => [a, `Fedora-Cloud-Base-Generic-${BRANCHED}-1.${k + 1}.${a}.raw.xz`]),
      ),
    });
  }

  // What goes wrong: an incomplete nightly holding one arch only, another incomplete but whole, one
  // compose that lost its cloud images, one without metadata at all.
  const nightlies = composes.filter((c) => c.type === 'nightly' && c.status === 'FINISHED');
  const pick = () => nightlies.splice(Math.floor(rand() * nightlies.length), 1)[0]!;
  if (nightlies.length >= 6) {
    const partial = pick();
    partial.status = 'FINISHED_INCOMPLETE';
    partial.arches = partial.arches.slice(0, 1);
    partial.files = Object.fromEntries(Object.entries(partial.files).slice(0, 1));
    pick().status = 'FINISHED_INCOMPLETE';
    Object.assign(pick(), { expect: 'broken', broken: 'no-images', arches: [], files: {} });
    Object.assign(pick(), { expect: 'broken', broken: 'no-metadata', arches: [], files: {} });
    pick().shape = 'minimal';
    pick().shape = 'fedmsg';
  }
  // Hostile inputs (issue 13): an empty image, a bomb, and slow compose hosts.
  if (nightlies.length >= 4) {
    pick().refused = 'empty';
    pick().refused = 'bomb';
    pick().slow = true;
    pick().slow = true;
  }
  for (const c of composes)
    if (c.expect !== 'ignore' && rand() < duplicateRate) c.duplicates = rand() < 0.3 ? 2 : 1;

  // Messages: STARTED at the start of the compose's day, the end a little later, duplicates soon after
  // or on the next day (a replay).
  const dayMs = o.daySeconds * 1000;
  const messages: SeasonMessage[] = [];
  for (const c of composes) {
    const location = `{compose-host}/${c.id}/compose`;
    const start = c.day * dayMs + Math.floor(rand() * dayMs * 0.3);
    const end = start + Math.floor(dayMs * (0.2 + rand() * 0.4));
    messages.push({ at: start, composeId: c.id, what: 'started', body: shaped(c, location, 'STARTED') });
    messages.push({ at: end, composeId: c.id, what: 'final', body: shaped(c, location, c.status) });
    for (let i = 0; i < c.duplicates; i++)
      messages.push({
        at: end + (i === 0 ? 200 : dayMs),
        composeId: c.id,
        what: 'duplicate',
        body: shaped(c, location, c.status),
      });
  }
  messages.sort((a, b) => a.at - b.at);
  return { composes, messages };
}

function shaped(c: SeasonCompose, location: string, status: string): Record<string, unknown> {
  const full = pungiBody(c.id, location, status, { compose_label: c.label });
  if (c.shape === 'minimal') return { compose_id: c.id, location, status };
  if (c.shape === 'fedmsg') return { i: 1, timestamp: 1722470400, msg_id: `2024-${c.id}`, msg: full };
  return full;
}

/** Replace the compose host placeholder in a message body. */
export function withHost(body: Record<string, unknown>, host: string): Record<string, unknown> {
  return JSON.parse(JSON.stringify(body).replaceAll('{compose-host}', host)) as Record<string, unknown>;
}

export interface SeasonImage {
  path: string;
  sha256: string;
  size: number;
}

/**
 * One small raw image per arch, compressed once; every compose links to it under its own name. Beside
 * them (`ARCH/empty`, `ARCH/bomb`) an image of zeros and a bomb: the same image followed by 136 xz streams
 * of 128 MiB of zeros, 17 GiB raw from about 3 MB.
 */
export async function makeImages(
  dir: string,
  arches: string[],
  rawBytes: number,
): Promise<Record<string, SeasonImage>> {
  const out: Record<string, SeasonImage> = {};
  const entry = async (xz: string) => ({
    path: xz,
    sha256: await sha256File(xz),
    size: (await stat(xz)).size,
  });
  const zeros = join(dir, 'zeros-128m.raw');
  await writeRawImage(zeros, { size: 128 * 2 ** 20, dataFraction: 0 });
  const zerosXz = await readFile(await compressFile(zeros, 'xz', { threads: 1 }));
  for (const [i, arch] of arches.entries()) {
    const raw = join(dir, `season-${arch}.raw`);
    await writeRawImage(raw, { size: rawBytes, dataFraction: 0.25, seed: i + 11 });
    const xz = await compressFile(raw, 'xz', { threads: 0 });
    out[arch] = await entry(xz);
    const empty = join(dir, `season-${arch}-empty.raw`);
    await writeRawImage(empty, { size: rawBytes, dataFraction: 0 });
    out[`${arch}/empty`] = await entry(await compressFile(empty, 'xz', { threads: 0 }));
    const bomb = join(dir, `season-${arch}-bomb.raw.xz`);
    await copyFile(xz, bomb);
    for (let k = 0; k < 136; k++) await appendFile(bomb, zerosXz);
    out[`${arch}/bomb`] = await entry(bomb);
  }
  return out;
}

/** Write a compose's tree as Pungi lays it out (what joystick reads of it: metadata and images). */
export async function writeSeasonCompose(
  root: string,
  c: SeasonCompose,
  images: Record<string, SeasonImage>,
): Promise<void> {
  if (c.broken === 'no-metadata' || c.expect === 'ignore') return;
  const dir = join(root, c.id, 'compose');
  const entries: Record<string, Record<string, unknown[]>> = { Cloud: {}, Server: {} };
  const common = { bootable: false, disc_count: 1, disc_number: 1, implant_md5: null, mtime: 1722470400 };
  for (const [arch, file] of Object.entries(c.files)) {
    const rel = `Cloud/${arch}/images/${file}`;
    const img = images[c.refused ? `${arch}/${c.refused}` : arch]!;
    await mkdir(dirname(join(dir, rel)), { recursive: true });
    await link(img.path, join(dir, rel));
    entries.Cloud![arch] = [
      {
        ...common,
        arch,
        checksums: { sha256: img.sha256 },
        format: 'raw.xz',
        path: rel,
        size: img.size,
        subvariant: 'Cloud_Base',
        type: 'raw-xz',
        volume_id: null,
      },
      {
        ...common,
        arch,
        checksums: { sha256: 'a'.repeat(64) },
        format: 'qcow2',
        path: rel.replace(/\.raw\.xz$/, '.qcow2'),
        size: 1,
        subvariant: 'Cloud_Base',
        type: 'qcow2',
        volume_id: null,
      },
    ];
  }
  // Every compose also holds a Server raw-xz: a compose without cloud images still has raw-xz files.
  for (const arch of ['x86_64', 'aarch64'])
    entries.Server![arch] = [
      {
        ...common,
        arch,
        checksums: { sha256: 'c'.repeat(64) },
        format: 'raw.xz',
        path: `Server/${arch}/images/Fedora-Server-${c.version}-${c.date}.${c.respin}.${arch}.raw.xz`,
        size: 1234,
        subvariant: 'Server',
        type: 'raw-xz',
        volume_id: null,
      },
    ];
  if (c.broken === 'no-images') delete entries.Cloud;
  const compose = { date: c.date, id: c.id, respin: c.respin, type: c.type };
  await mkdir(join(dir, 'metadata'), { recursive: true });
  await writeFile(
    join(dir, 'metadata', 'images.json'),
    JSON.stringify({
      header: { type: 'productmd.images', version: '1.2' },
      payload: { compose, images: entries },
    }),
  );
  await writeFile(
    join(dir, 'metadata', 'composeinfo.json'),
    JSON.stringify({
      header: { type: 'productmd.composeinfo', version: '1.2' },
      payload: {
        compose: { ...compose, label: c.label, final: c.type === 'production' },
        release: {
          internal: false,
          name: c.releaseShort,
          short: c.releaseShort,
          type: 'ga',
          version: c.version,
          is_layered: false,
        },
        variants: {},
      },
    }),
  );
}
