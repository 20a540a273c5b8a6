/**
 * `npm run bench`: plume against the physical limit and against the old way, as ratios measured side by
 * side in one run, plus peak memory as the image grows. Prints a table and writes .bench/results.json.
 *
 * Every figure is a median of a few runs, each in its own process (so each has its own peak memory), with
 * its baseline run right next to it: the machine may be shared, and a baseline taken minutes apart would
 * compare different loads. BENCH_QUICK=1 does the 1 GiB image once, for working on the benchmark itself.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import { basename, join } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';
import { serveDirectory } from '../tools/compose/http-server.js';
import { ensureInputs, type BenchFile, type BenchImage } from './inputs.js';
import type { Job, Measured } from './measure.js';
import { measureProviders, type ProvidersMeasured } from './providers.js';

const ROOT = new URL('..', import.meta.url).pathname;
const DIR = join(ROOT, '.bench');
const QUICK = process.env.BENCH_QUICK === '1';
const GiB = 2 ** 30;
const MB = 1e6;
const SIZES = QUICK
  ? [{ name: 'disk-1g', bytes: GiB }]
  : [
      { name: 'disk-1g', bytes: GiB },
      { name: 'disk-4g', bytes: 4 * GiB },
    ];
/**
 * Rounds by image size. A round is every measurement once (the old way only in the first); the 4 GiB image
 * repeats only the ratio measurements (its upload and old-way runs take a minute each), so a fresh run
 * stays within 10 minutes.
 */
const ROUNDS: Record<string, { rounds: number; fullRounds: number }> = QUICK
  ? { 'disk-1g': { rounds: 1, fullRounds: 1 } }
  : { 'disk-1g': { rounds: 3, fullRounds: 3 }, 'disk-4g': { rounds: 2, fullRounds: 1 } };
/** 22 commercial regions, the primary first, with a made-up copy time each (farther is slower). */
const REGIONS = [
  'us-east-1',
  'us-east-2',
  'us-west-1',
  'us-west-2',
  'ca-central-1',
  'sa-east-1',
  'eu-west-1',
  'eu-west-2',
  'eu-west-3',
  'eu-central-1',
  'eu-north-1',
  'eu-south-1',
  'af-south-1',
  'me-south-1',
  'ap-south-1',
  'ap-east-1',
  'ap-northeast-1',
  'ap-northeast-2',
  'ap-northeast-3',
  'ap-southeast-1',
  'ap-southeast-2',
  'ap-southeast-3',
];
const COPY_MS = Object.fromEntries(REGIONS.map((r, i) => [r, 300 + ((i * 7) % 10) * 50]));

const started = performance.now();
const log = (line: string) =>
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const AWS_ENV = {
  AWS_ACCESS_KEY_ID: 'AKIABENCH00000000000',
  AWS_SECRET_ACCESS_KEY: 'bench-secret-not-a-real-key',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
};

/**
 * Measurements run as plain JavaScript against dist/: the TypeScript loader would add its own 60 MiB to
 * every peak-memory figure. Only the benchmark's own two files need compiling, and only their imports of
 * src/ need pointing at the build (BENCH_DIST picks another build, to compare before and after a change).
 */
async function compileMeasure(): Promise<string> {
  const dist = pathToFileURL(process.env.BENCH_DIST ?? join(ROOT, 'dist')).href;
  const out = join(DIR, 'build');
  await mkdir(out, { recursive: true });
  for (const name of ['measure', 'memory']) {
    const source = await readFile(join(ROOT, 'bench', `${name}.ts`), 'utf8');
    const js = ts.transpileModule(source, {
      compilerOptions: {
        module: ts.ModuleKind.ESNext,
        target: ts.ScriptTarget.ES2022,
        verbatimModuleSyntax: true,
      },
    }).outputText;
    await writeFile(join(out, `${name}.js`), js.replace(/from '\.\.\/src\//g, `from '${dist}/`));
  }
  return join(out, 'measure.js');
}

let measureScript = '';

async function measure(job: Job): Promise<Measured> {
  const child = spawn(process.execPath, [measureScript, JSON.stringify(job)], {
    cwd: ROOT,
    env: { ...process.env, ...AWS_ENV },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`measurement ${JSON.stringify(job)} failed (exit ${code})`);
  return JSON.parse(out.trim().split('\n').pop()!) as Measured;
}

/** A helper process that prints one JSON line when ready (the sink, the emulator). */
async function startService(args: string[]): Promise<{ child: ChildProcess; info: { endpoint: string } }> {
  const child = spawn(process.execPath, ['--import', 'tsx', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...AWS_ENV },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const [line] = (await once(lines, 'line')) as [string];
  return { child, info: JSON.parse(line) as { endpoint: string } };
}

/** A benchmark of its own (bench/NAME.ts), run to the end; what it wrote to .bench/NAME.json. */
async function script(name: string, args: string[]): Promise<Record<string, number>> {
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench', `${name}.ts`), ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const [code] = (await once(child, 'close')) as [number];
  if (code !== 0) throw new Error(`bench/${name}.ts failed (exit ${code})`);
  return JSON.parse(await readFile(join(DIR, `${name}.json`), 'utf8')) as Record<string, number>;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Every sample of one image, by measurement: `single.xz`, `single.pipeline`, `multi.upload`, `oldway`... */
type Samples = Record<string, Measured[]>;

const secs = (ms: Measured[]) => median(ms.map((m) => m.seconds));
const peak = (ms: Measured[]) => Math.max(...ms.map((m) => m.peakRss));
const childPeak = (ms: Measured[], name: string) => Math.max(0, ...ms.map((m) => m.children[name] ?? 0));

function versions(): { node: string; xz: string; kernel: string } {
  const first = (cmd: string, args: string[]) => {
    try {
      return execFileSync(cmd, args, { encoding: 'utf8' }).split('\n')[0]!.trim();
    } catch {
      return 'unknown';
    }
  };
  return { node: process.version, xz: first('xz', ['--version']), kernel: first('uname', ['-r']) };
}

async function main() {
  const machine = {
    cores: cpus().length,
    cpu: cpus()[0]?.model ?? 'unknown',
    memoryGiB: Math.round(totalmem() / GiB),
    ...versions(),
    loadBefore: loadavg().map((l) => Number(l.toFixed(2))),
  };
  log(
    `machine: ${machine.cores} cores (${machine.cpu}), ${machine.memoryGiB} GiB, node ${machine.node}, load ${machine.loadBefore.join(' ')}`,
  );
  measureScript = await compileMeasure();
  const images = await ensureInputs(join(DIR, 'inputs'), SIZES, log);
  const inputsDone = (performance.now() - started) / 1000;

  const files = await serveDirectory(join(DIR, 'inputs'));
  const sink = await startService([join(ROOT, 'bench', 'ebs-sink.ts')]);
  const emulator = await startService([join(ROOT, 'tools', 'emulator', 'main.ts'), '--pending-ms', '0']);
  const url = (f: BenchFile) => `${files.url}/${basename(f.path)}`;
  const results: Record<string, unknown> = {};
  try {
    const idle = await measure({ kind: 'idle' });
    results.idle = idle;

    const perImage: Record<string, Samples> = {};
    for (const img of images) {
      const { rounds: reps, fullRounds } = ROUNDS[img.name] ?? { rounds: 1, fullRounds: 1 };
      const r: Samples = {};
      perImage[img.name] = r;
      const add = (key: string, m: Measured) => (r[key] ??= []).push(m);
      // One round is every measurement once, baselines next to their subjects; rounds repeat.
      for (let rep = 1; rep <= reps; rep++) {
        for (const format of ['single', 'multi'] as const) {
          const file = img[format];
          const threads = format === 'single' ? 1 : 0;
          const full = rep <= fullRounds;
          // The old way (a minute on 4 GiB) is its own baseline: once per size is enough.
          const oldWay = format === 'single' && rep === 1;
          const extra = full ? `, upload${oldWay ? ', old way' : ''}` : '';
          log(`${img.name} ${format}-block, round ${rep}/${reps}: xz, pipeline${extra}`);
          add(`${format}.xz`, await measure({ kind: 'xz', file: file.path, threads }));
          add(`${format}.pipeline`, await measure({ kind: 'pipeline', url: url(file), sha256: file.sha256 }));
          if (!full) continue;
          add(
            `${format}.upload`,
            await measure({
              kind: 'upload',
              url: url(file),
              sha256: file.sha256,
              endpoint: sink.info.endpoint,
            }),
          );
          if (oldWay)
            add(
              'oldway',
              await measure({
                kind: 'oldway',
                url: url(file),
                threads,
                endpoint: sink.info.endpoint,
                workDir: join(DIR, 'work'),
              }),
            );
        }
      }
    }
    const small = images[0]!;
    log(`${small.name}: upload into moto through the emulator (reference)`);
    const moto = await measure({
      kind: 'upload',
      url: url(small.multi),
      sha256: small.multi.sha256,
      endpoint: emulator.info.endpoint,
    });
    log(
      `fan-out: ${REGIONS.length} regions, copies of ${Math.min(...Object.values(COPY_MS))}-${Math.max(...Object.values(COPY_MS))} ms each, parallel vs serial`,
    );
    const fanout = await measure({
      kind: 'fanout',
      endpoint: emulator.info.endpoint,
      copyMs: COPY_MS,
      workDir: join(DIR, 'work-fanout'),
    });
    log('one compose to two providers: each alone, then both (joystick, simulated provider latencies)');
    const providers = await measureProviders(join(DIR, 'work-providers'));
    log('page-blob upload (Azure) into a local sink, against the raw read rate');
    const pageBlob = await script('azure-pages', ['--mib', '512', '--rounds', '3']);
    log('Cloud Storage upload (GCE) into a local sink, against the raw read rate');
    const gcs = await script('gcs-upload', ['--mib', '512', '--rounds', '3']);
    await report({ machine, images, perImage, idle, moto, fanout, providers, pageBlob, gcs, inputsDone });
  } finally {
    sink.child.kill('SIGTERM');
    emulator.child.kill('SIGTERM');
    await files.close();
    await once(emulator.child, 'close');
  }
}

type Machine = {
  cores: number;
  cpu: string;
  memoryGiB: number;
  node: string;
  xz: string;
  kernel: string;
  loadBefore: number[];
};

interface Report {
  machine: Machine;
  images: BenchImage[];
  perImage: Record<string, Samples>;
  idle: Measured;
  moto: Measured;
  fanout: Measured;
  providers: ProvidersMeasured;
  pageBlob: Record<string, number>;
  gcs: Record<string, number>;
  inputsDone: number;
}

function report(r: Report) {
  const rows: [string, string, string][] = [];
  const summary: Record<string, unknown> = {};
  const mb = (bytes: number, s: number) => (bytes / MB / s).toFixed(0);
  const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(0)} MiB`;
  const cpuOf = (ms: Measured[]) =>
    median(ms.map((m) => m.cpu.self + Object.values(m.cpu.children).reduce((a, b) => a + b, 0)));
  for (const img of r.images) {
    const res = r.perImage[img.name]!;
    for (const format of ['single', 'multi'] as const) {
      const xz = res[`${format}.xz`]!;
      const pipe = res[`${format}.pipeline`]!;
      const up = res[`${format}.upload`]!;
      const limit = secs(xz);
      const p = secs(pipe);
      const ratio = limit / p;
      const tool = format === 'single' ? 'xz -dc' : 'xz -dc -T0';
      rows.push([
        `${img.name} ${format}-block: pipeline / ${tool}`,
        ratio.toFixed(2),
        `${p.toFixed(2)} s vs ${limit.toFixed(2)} s (${mb(img.rawBytes, p)} vs ${mb(img.rawBytes, limit)} MB/s raw); ` +
          `CPU ${cpuOf(pipe).toFixed(1)} s vs ${cpuOf(xz).toFixed(1)} s; target >= 0.90`,
      ]);
      const upSecs = secs(up);
      const sent = up[0]!.bytesSent!;
      const blocks = up[0]!.blocksSent!;
      rows.push([
        `${img.name} ${format}-block: upload into fast sink`,
        '-',
        `${upSecs.toFixed(2)} s: ${mb(sent, upSecs)} MB/s sent, ${(blocks / upSecs).toFixed(0)} PutSnapshotBlock/s ` +
          `(${blocks} of ${up[0]!.blocks} blocks), ${mb(img.rawBytes, upSecs)} MB/s of raw image`,
      ]);
      summary[`${img.name}.${format}`] = {
        limitSeconds: limit,
        pipelineSeconds: p,
        pipelineRatio: ratio,
        limitCpuSeconds: cpuOf(xz),
        pipelineCpuSeconds: cpuOf(pipe),
        uploadSeconds: upSecs,
        uploadMBps: sent / MB / upSecs,
        uploadRequestsPerSecond: blocks / upSecs,
        pipelinePeakRss: peak(pipe),
        uploadPeakRss: peak(up),
        decompressorPeakRss: Math.max(childPeak(pipe, 'xz'), childPeak(up, 'xz')),
      };
    }
    const o = res.oldway!;
    const old = secs(o);
    const plume = secs(res['single.upload']!);
    const stages = o.map((m) => m.stages!);
    const stage = (k: string) => median(stages.map((st) => st[k]!)).toFixed(1);
    rows.push([
      `${img.name}: plume / old way (wall time)`,
      (plume / old).toFixed(2),
      `${plume.toFixed(2)} s vs ${old.toFixed(2)} s (download ${stage('download')} s, decompress to disk ` +
        `${stage('decompress')} s, upload the file ${stage('upload')} s)`,
    ]);
    summary[`${img.name}.oldway`] = { plumeSeconds: plume, oldSeconds: old, ratio: plume / old, stages };
  }
  const m = r.moto;
  rows.push([
    `${r.images[0]!.name} multi-block: upload into moto (emulator)`,
    '-',
    `${m.seconds.toFixed(2)} s: ${mb(m.bytesSent!, m.seconds)} MB/s sent, ${(m.blocksSent! / m.seconds).toFixed(0)} PutSnapshotBlock/s`,
  ]);
  summary.moto = {
    seconds: m.seconds,
    MBps: m.bytesSent! / MB / m.seconds,
    requestsPerSecond: m.blocksSent! / m.seconds,
  };
  const f = r.fanout;
  rows.push([
    `fan-out to ${f.regions! - 1} regions: parallel / serial`,
    (f.parallelSeconds! / f.serialSeconds!).toFixed(3),
    `${f.parallelSeconds!.toFixed(1)} s vs ${f.serialSeconds!.toFixed(1)} s (${(f.serialSeconds! / f.parallelSeconds!).toFixed(1)}x faster)`,
  ]);
  summary.fanout = { parallelSeconds: f.parallelSeconds, serialSeconds: f.serialSeconds, regions: f.regions };
  const { aws, gcp, 'aws+gcp': both } = r.providers.seconds;
  const slowest = Math.max(aws!, gcp!);
  rows.push([
    'one compose to AWS and GCE: both / slowest alone',
    (both! / slowest).toFixed(2),
    `${both!.toFixed(2)} s vs AWS alone ${aws!.toFixed(2)} s, GCE alone ${gcp!.toFixed(2)} s ` +
      `(one after the other would be ${((aws! + gcp!) / slowest).toFixed(2)}); target <= 1.10`,
  ]);
  summary.providers = { ...r.providers.seconds, ratio: both! / slowest };
  const pb = r.pageBlob;
  rows.push([
    `Azure page-blob upload (${pb.imageMiB} MiB VHD) / raw read`,
    pb.ratio!.toFixed(2),
    `${pb.uploadMiBps} vs ${pb.rawMiBps} MiB/s of raw image; ${pb.sentMiB} MiB sent in ${pb.putPageCalls} Put Page calls, ` +
      `${pb.zeroPagesSkipped} of ${pb.pages} blocks all zeros, never sent`,
  ]);
  const g = r.gcs;
  rows.push([
    `GCE archive upload to Cloud Storage (${g.archiveMiB} MiB) / raw read`,
    g.ratio!.toFixed(2),
    `${g.uploadMiBps} vs ${g.readMiBps} MiB/s, one resumable session of ${g.chunkMiB} MiB chunks`,
  ]);
  summary.pageBlob = pb;
  summary.gcs = g;
  if (r.images.length > 1) {
    const [a, b] = [r.images[0]!, r.images[r.images.length - 1]!];
    for (const what of ['pipeline', 'upload'] as const) {
      const key = `${what}PeakRss` as const;
      const of = (img: BenchImage) =>
        Math.max(
          ...['single', 'multi'].map((fm) => (summary[`${img.name}.${fm}`] as Record<string, number>)[key]!),
        );
      const [pa, pb] = [of(a), of(b)];
      rows.push([
        `peak RSS, ${what}: ${b.name} / ${a.name}`,
        (pb / pa).toFixed(2),
        `${mib(pb)} vs ${mib(pa)}; target <= 1.20`,
      ]);
      summary[`${what}PeakRssRatio`] = pb / pa;
    }
  }
  for (const img of r.images) {
    const xzPeak = Math.max(
      ...['single', 'multi'].map(
        (fm) => (summary[`${img.name}.${fm}`] as Record<string, number>).decompressorPeakRss!,
      ),
    );
    rows.push([`${img.name}: decompressor (xz -T0) peak RSS`, '-', `${mib(xzPeak)} (its own process)`]);
  }
  rows.push(['node process doing nothing (same imports)', '-', `${mib(r.idle.peakRss)} peak RSS`]);

  const total = (performance.now() - started) / 1000;
  const w0 = Math.max(...rows.map((x) => x[0].length));
  const w1 = Math.max(...rows.map((x) => x[1].length), 5);
  console.log(`\n${'measure'.padEnd(w0)}  ${'ratio'.padStart(w1)}  detail`);
  for (const [a, b, c] of rows) console.log(`${a.padEnd(w0)}  ${b.padStart(w1)}  ${c}`);
  const loadAfter = loadavg().map((l) => Number(l.toFixed(2)));
  console.log(
    `\n${r.machine.cores} cores (${r.machine.cpu}), ${r.machine.memoryGiB} GiB, node ${r.machine.node}, ${r.machine.xz}; ` +
      `inputs ready after ${r.inputsDone.toFixed(0)} s, total ${total.toFixed(0)} s; ` +
      `load ${r.machine.loadBefore.join(' ')} before, ${loadAfter.join(' ')} after`,
  );
  const json = {
    when: new Date().toISOString(),
    machine: { ...r.machine, loadAfter },
    seconds: { inputs: r.inputsDone, total },
    images: r.images,
    summary,
    table: rows.map(([measure, ratio, detail]) => ({ measure, ratio, detail })),
    samples: { idle: r.idle, perImage: r.perImage, moto: r.moto, fanout: r.fanout, providers: r.providers },
  };
  return writeFile(join(DIR, 'results.json'), JSON.stringify(json, null, 2)).then(() =>
    log(`wrote ${join(DIR, 'results.json')}`),
  );
}

await mkdir(DIR, { recursive: true });
await main();
