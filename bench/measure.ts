/**
 * One measurement, in a process of its own so its peak memory is its own. bench/run.ts compiles this file
 * to plain JavaScript importing plume from dist/ (what ships, without the TypeScript loader's memory), runs
 * `node .bench/build/measure.js '<job json>'` and reads the one JSON line it prints.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createWriteStream, openSync, closeSync } from 'node:fs';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { pathToFileURL } from 'node:url';
import { ListSnapshotBlocksCommand } from '@aws-sdk/client-ebs';
import { AwsClients, DEFAULT_CLIENT_SETTINGS } from '../src/plume/providers/aws/clients.js';
import { uploadSnapshot } from '../src/plume/providers/aws/ebs-upload.js';
import { AwsProvider, DEFAULT_AWS_SETTINGS } from '../src/plume/providers/aws/provider.js';
import { isSkipped, type ProviderContext, type PublishedImage } from '../src/plume/providers/types.js';
import type { TargetPlan } from '../src/plume/plan.js';
import { openImage } from '../src/plume/source/image.js';
import { DEFAULT_SOURCE_POLICY, type SourcePolicy } from '../src/plume/source/policy.js';
import { silentLogger } from '../src/shared/log.js';
import { peakRss, watchChildren } from './memory.js';

export type Job =
  | { kind: 'idle' }
  | { kind: 'xz'; file: string; threads: number }
  | { kind: 'pipeline'; url: string; sha256: string }
  | { kind: 'upload'; url: string; sha256: string; endpoint: string }
  | { kind: 'oldway'; url: string; threads: number; endpoint: string; workDir: string }
  | { kind: 'fanout'; endpoint: string; copyMs: Record<string, number>; workDir: string };

export interface Measured {
  seconds: number;
  /** Peak resident memory of this process (bytes). */
  peakRss: number;
  /** Peak resident memory of each child command this process ran (the decompressor). */
  children: Record<string, number>;
  /** CPU seconds of this process (all threads) and of each child command. */
  cpu: { self: number; children: Record<string, number> };
  rawBytes?: number;
  blocks?: number;
  zeroBlocks?: number;
  bytesSent?: number;
  blocksSent?: number;
  /** Old way: time of each stage. */
  stages?: Record<string, number>;
  /** Fan-out: both ways. */
  parallelSeconds?: number;
  serialSeconds?: number;
  regions?: number;
}

const BLOCK_SIZE = 512 * 1024;

const policy: SourcePolicy = {
  ...DEFAULT_SOURCE_POLICY,
  allowedHosts: ['127.0.0.1'],
  allowFiles: true,
};

const ctx: ProviderContext = { log: silentLogger(), emit: () => undefined };

/**
 * Clients with the SDK already loaded and used once. Its first request loads credential providers and
 * middleware (about 0.5 s of CPU here), which the CLI pays once per run, before any upload (preflight);
 * counting it would charge it to the bytes.
 */
async function warmClients(endpoint: string): Promise<AwsClients> {
  const aws = new AwsClients({ ...DEFAULT_CLIENT_SETTINGS, endpoint, maxAttempts: 3 });
  await aws
    .ebs('us-east-1')
    .send(new ListSnapshotBlocksCommand({ SnapshotId: 'snap-00000000000000000' }))
    .catch(() => undefined);
  return aws;
}

async function upload(aws: AwsClients, url: URL, sha256: string | undefined, compression: 'xz' | 'none') {
  try {
    const image = await openImage({ url, compression, sha256 }, policy);
    const result = await uploadSnapshot(
      aws,
      image,
      {
        region: 'us-east-1',
        description: 'plume bench',
        tags: {},
        concurrency: DEFAULT_AWS_SETTINGS.uploadConcurrency,
      },
      ctx,
      () => undefined,
    );
    return result;
  } finally {
    aws.destroy();
  }
}

async function run(job: Job): Promise<Omit<Measured, 'peakRss' | 'children' | 'cpu'>> {
  const aws = job.kind === 'upload' || job.kind === 'oldway' ? await warmClients(job.endpoint) : undefined;
  const started = performance.now();
  const elapsed = () => (performance.now() - started) / 1000;
  switch (job.kind) {
    case 'idle':
      return { seconds: 0 };
    case 'xz': {
      // The limit: the tool alone, its output thrown away by the kernel.
      const devnull = openSync('/dev/null', 'w');
      const child = spawn('xz', ['--decompress', '--stdout', `--threads=${job.threads}`, job.file], {
        stdio: ['ignore', devnull, 'inherit'],
      });
      closeSync(devnull);
      const [code] = (await once(child, 'close')) as [number];
      if (code !== 0) throw new Error(`xz exited ${code}`);
      return { seconds: elapsed() };
    }
    case 'pipeline': {
      const image = await openImage({ url: new URL(job.url), compression: 'xz', sha256: job.sha256 }, policy);
      const reader = image.read(BLOCK_SIZE);
      // The null sink: take each block and give its buffer straight back, as the uploader does once a
      // block is stored.
      for await (const block of reader.blocks) block.release?.();
      const summary = reader.finish();
      return {
        seconds: elapsed(),
        rawBytes: summary.bytes,
        blocks: summary.blocks,
        zeroBlocks: summary.zeroBlocks,
      };
    }
    case 'upload': {
      const result = await upload(aws!, new URL(job.url), job.sha256, 'xz');
      return {
        seconds: elapsed(),
        rawBytes: result.summary.bytes,
        blocks: result.summary.blocks,
        zeroBlocks: result.summary.zeroBlocks,
        bytesSent: result.bytesSent,
        blocksSent: result.blocksSent,
      };
    }
    case 'oldway':
      return oldWay(job, aws!, elapsed);
    case 'fanout':
      return fanOut(job);
  }
}

/**
 * What publishing tools did before streaming: download the file, decompress it to disk, then upload the
 * raw file. The upload is plume's own (same blocks, same zero-skip, same pool), so the difference is
 * only the staging.
 */
async function oldWay(job: Extract<Job, { kind: 'oldway' }>, aws: AwsClients, elapsed: () => number) {
  await mkdir(job.workDir, { recursive: true });
  const compressed = join(job.workDir, 'image.raw.xz');
  const raw = join(job.workDir, 'image.raw');
  const stages: Record<string, number> = {};
  try {
    let mark = elapsed();
    const res = await fetch(job.url);
    if (!res.ok || !res.body) throw new Error(`download: HTTP ${res.status}`);
    await pipeline(Readable.fromWeb(res.body), createWriteStream(compressed));
    stages.download = elapsed() - mark;

    mark = elapsed();
    const out = openSync(raw, 'w');
    const xz = spawn('xz', ['--decompress', '--stdout', `--threads=${job.threads}`, compressed], {
      stdio: ['ignore', out, 'inherit'],
    });
    closeSync(out);
    const [code] = (await once(xz, 'close')) as [number];
    if (code !== 0) throw new Error(`xz exited ${code}`);
    stages.decompress = elapsed() - mark;

    mark = elapsed();
    const result = await upload(aws, pathToFileURL(raw), undefined, 'none');
    stages.upload = elapsed() - mark;
    return {
      seconds: elapsed(),
      stages,
      rawBytes: (await stat(raw)).size,
      bytesSent: result.bytesSent,
      blocksSent: result.blocksSent,
    };
  } finally {
    await rm(job.workDir, { recursive: true, force: true });
  }
}

/** The emulator's control API (tools/emulator/README.md), spoken directly to keep this file self-contained. */
async function emulatorControl(endpoint: string, path: string, body?: unknown): Promise<void> {
  const res = await fetch(`${endpoint}/__emulator/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body ?? {}),
  });
  if (!res.ok) throw new Error(`emulator ${path}: HTTP ${res.status} ${await res.text()}`);
  await res.arrayBuffer().catch(() => undefined);
}

/**
 * Copy one image to 21 regions, each copy taking the time the emulator is told (it holds the copy
 * `pending` that long): all at once as plume does, then one region after another. Polling is made
 * fast and equal for both, so the difference is the schedule.
 */
async function fanOut(job: Extract<Job, { kind: 'fanout' }>) {
  const regions = Object.keys(job.copyMs);
  const primaryRegion = regions[0]!;
  await emulatorControl(job.endpoint, 'reset');
  const provider = new AwsProvider({
    ...DEFAULT_AWS_SETTINGS,
    client: { ...DEFAULT_CLIENT_SETTINGS, endpoint: job.endpoint, maxAttempts: 4 },
    wait: { pollMinMs: 50, pollMaxMs: 200, imageTimeoutMs: 120_000, snapshotTimeoutMs: 120_000 },
  });
  try {
    await mkdir(job.workDir, { recursive: true });
    const disk = join(job.workDir, 'tiny.raw');
    await writeFile(disk, Buffer.alloc(1024 * 1024, 1));
    const plan = (key: string, only?: string): TargetPlan => ({
      key,
      provider: 'aws',
      name: 'aws',
      architecture: 'x86_64',
      build: `bench-${key}`,
      source: { url: pathToFileURL(disk).href, compression: 'none' },
      primaryLocation: primaryRegion,
      images: regions
        .filter((r) => r === primaryRegion || !only || r === only)
        .map((r) => ({ location: r, variant: 'gp3', name: `bench-${key}-${r}-gp3` })),
      description: 'plume bench fan-out',
      tags: {},
      visibility: { public: false, accounts: [] },
      settings: { partition: 'aws', rootDeviceName: '/dev/sda1' },
    });
    const base = plan('fanout');
    const diskRef = await provider.uploadDisk(
      base,
      () => openImage({ url: pathToFileURL(disk), compression: 'none' }, policy),
      ctx,
    );
    if (isSkipped(diskRef)) throw new Error('the bench found its images already registered');
    const primaryOutcomes = await provider.createImages(base, diskRef, ctx);
    const primary: PublishedImage[] = primaryOutcomes.map((o) => {
      if (!o.id) throw new Error(`primary image: ${o.error}`);
      return { ...o.target, id: o.id };
    });
    for (const [region, ms] of Object.entries(job.copyMs))
      if (region !== primaryRegion) await emulatorControl(job.endpoint, 'pending', { ms, region });

    const failures = (outcomes: { error?: string }[]) => outcomes.filter((o) => o.error).map((o) => o.error);
    let t = performance.now();
    const parallel = await provider.replicate(base, primary, ctx);
    const parallelSeconds = (performance.now() - t) / 1000;
    if (failures(parallel).length)
      throw new Error(`parallel copies failed: ${failures(parallel).join('; ')}`);

    t = performance.now();
    for (const region of regions.slice(1)) {
      const one = await provider.replicate(plan('serial', region), primary, ctx);
      if (failures(one).length) throw new Error(`serial copy failed: ${failures(one).join('; ')}`);
    }
    const serialSeconds = (performance.now() - t) / 1000;
    return {
      seconds: parallelSeconds + serialSeconds,
      parallelSeconds,
      serialSeconds,
      regions: regions.length,
    };
  } finally {
    provider.destroy();
    await rm(job.workDir, { recursive: true, force: true });
  }
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
const children = watchChildren();
try {
  const before = process.cpuUsage();
  const result = await run(job);
  const used = process.cpuUsage(before);
  const usage = children.stop();
  const measured: Measured = {
    ...result,
    peakRss: peakRss(),
    children: usage.peaks,
    cpu: { self: (used.user + used.system) / 1e6, children: usage.cpu },
  };
  process.stdout.write(JSON.stringify(measured) + '\n');
} catch (err) {
  children.stop();
  console.error(err);
  process.exitCode = 1;
}
