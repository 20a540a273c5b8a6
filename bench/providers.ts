/**
 * One compose, two providers: joystick queues one job per (compose, image, provider), so the compose's wall
 * time should be that of its slowest provider, not the sum. Measured with joystick's own controller and
 * SQLite store over a real sample compose served on 127.0.0.1, and providers whose every step takes a
 * fixed, simulated time (the clouds' real latencies are minutes; what is measured here is the schedule):
 * each provider alone, then both, in one run. The ratio both / slowest alone is ~1.0 when they overlap and
 * (a + b) / max(a, b) when they queue behind each other.
 */
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadJoystickConfig } from '../src/joystick/config.js';
import { Controller } from '../src/joystick/controller.js';
import { Metrics } from '../src/joystick/metrics.js';
import { openDatabase } from '../src/joystick/store/db.js';
import { JobStore } from '../src/joystick/store/job-store.js';
import type { Message } from '../src/joystick/bus/index.js';
import type { TargetPlan } from '../src/plume/plan.js';
import type { ProviderFactory } from '../src/plume/providers/module.js';
import type {
  DiskRef,
  Provider,
  ProviderContext,
  PublishedImage,
  TargetOutcome,
  VerifyReport,
} from '../src/plume/providers/types.js';
import { builtinSystems } from '../src/plume/systems/builtin.js';
import { createLogger } from '../src/shared/log.js';
import { serveDirectory } from '../tools/compose/http-server.js';
import { writeSampleCompose } from '../tools/compose/sample-compose.js';
import { writeJoystickToml } from '../tools/reliability/joystick.js';
import { pungiBody } from '../tools/reliability/pungi.js';

/** Seconds each step takes, per provider: AWS copies to other regions, a GCE image is global. */
export const STEP_SECONDS: Record<string, Record<string, number>> = {
  aws: { preflight: 0.1, upload: 1.2, create: 0.4, replicate: 1.0, publish: 0.2, verify: 0.2 },
  gcp: { preflight: 0.1, upload: 1.0, create: 0.8, replicate: 0, publish: 0.2, verify: 0.2 },
};

/** A provider that does nothing but take its time, and answers as if every step succeeded. */
class TimedProvider implements Provider {
  constructor(
    readonly name: string,
    private readonly seconds: Record<string, number>,
  ) {}

  private wait(step: string, ctx: ProviderContext) {
    return sleep((this.seconds[step] ?? 0) * 1000, undefined, { signal: ctx.signal });
  }

  private ids(targets: TargetPlan['images']): TargetOutcome[] {
    return targets.map((target) => ({ target, id: `${this.name}:${target.location}:${target.name}` }));
  }

  async preflight(_plan: TargetPlan, ctx: ProviderContext) {
    await this.wait('preflight', ctx);
    return { account: 'bench' };
  }
  async uploadDisk(plan: TargetPlan, _open: unknown, ctx: ProviderContext): Promise<DiskRef> {
    await this.wait('upload', ctx);
    return { location: plan.primaryLocation, id: `${this.name}-disk`, reused: false, sizeGiB: 1 };
  }
  async createImages(plan: TargetPlan, _disk: unknown, ctx: ProviderContext) {
    await this.wait('create', ctx);
    return this.ids(plan.images.filter((i) => i.location === plan.primaryLocation));
  }
  async replicate(plan: TargetPlan, _primary: PublishedImage[], ctx: ProviderContext) {
    await this.wait('replicate', ctx);
    return this.ids(plan.images.filter((i) => i.location !== plan.primaryLocation));
  }
  async publish(_plan: TargetPlan, images: PublishedImage[], ctx: ProviderContext) {
    await this.wait('publish', ctx);
    return images.map((target) => ({ target, id: target.id }));
  }
  async verify(plan: TargetPlan, ctx: ProviderContext): Promise<VerifyReport> {
    await this.wait('verify', ctx);
    return { ok: this.ids(plan.images).map((o) => ({ ...o.target, id: o.id! })), problems: [] };
  }
  async repair() {}
  async listLocations(primary: string) {
    return [primary];
  }
  async listRelease() {
    return [];
  }
}

export interface ProvidersMeasured {
  /** Wall seconds from the compose message to its last job done, by which providers published it. */
  seconds: Record<string, number>;
  jobs: Record<string, number>;
}

/** A run of joystick over one compose message, publishing to `providers`; returns its wall seconds. */
async function composeSeconds(dir: string, url: string, composeId: string, providers: string[], n: number) {
  const path = await writeJoystickToml({
    path: join(dir, `joystick-${n}.toml`),
    prefix: 'bench',
    queue: 'bench',
    connectionName: 'plume-bench',
    database: `sqlite:///${join(dir, `joystick-${n}.db`)}`,
    awsEndpoint: 'http://127.0.0.1:9',
    regions: ['us-east-1', 'eu-west-1', 'ap-south-1'],
    volumeTypes: ['gp3'],
    arches: ['x86_64'],
    channels: ['cloud'],
    maxParallelJobs: 4,
    extra: `
[consumer_config.plume.gcp]
enabled = ${providers.includes('gcp')}
project = "plume-bench"
bucket = "plume-bench-images"
`,
  });
  const config = await loadJoystickConfig(path);
  if (!providers.includes('aws')) config.plume.aws.enabled = false;
  const store = await JobStore.open(openDatabase(config.app.database));
  const timed = new Map(Object.entries(STEP_SECONDS).map(([name, s]) => [name, new TimedProvider(name, s)]));
  const factory: ProviderFactory = (target) => timed.get(target.provider)!;
  const sent: Message[] = [];
  const controller = new Controller({
    config,
    store,
    registry: builtinSystems(),
    log: createLogger({ level: 'silent' }),
    metrics: new Metrics({ defaults: false }),
    publish: async (m) => void sent.push(m),
    providers: factory,
  });
  const t = performance.now();
  await controller.handleMessage({
    topic: 'bench.pungi.compose.status.change',
    body: pungiBody(composeId, url, 'FINISHED'),
  } as never);
  await controller.runUntilIdle();
  const seconds = (performance.now() - t) / 1000;
  const jobs = await store.jobs({ composeIds: [composeId] });
  await store.close();
  const done = jobs.filter((j) => j.state === 'complete').length;
  if (done !== jobs.length || jobs.length !== providers.length)
    throw new Error(
      `bench: ${providers.join('+')}: ${done} of ${jobs.length} jobs done (${jobs.map((j) => `${j.id}: ${j.state} ${j.error ?? ''}`).join('; ')})`,
    );
  return seconds;
}

export async function measureProviders(workDir: string): Promise<ProvidersMeasured> {
  const parent = workDir ?? tmpdir();
  // The bench's folder exists only once an earlier measurement made it.
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, 'providers-'));
  try {
    const compose = await writeSampleCompose({
      dir: join(dir, 'composes'),
      version: '41',
      date: '20241010',
      rawSize: 4 * 2 ** 20,
      arches: ['x86_64'],
      gce: true,
    });
    const files = await serveDirectory(compose.root);
    try {
      const url = `${files.url}/${compose.composePath}`;
      const seconds: Record<string, number> = {};
      const runs = [['aws'], ['gcp'], ['aws', 'gcp']];
      for (const [i, providers] of runs.entries())
        seconds[providers.join('+')] = await composeSeconds(dir, url, compose.composeId, providers, i);
      return { seconds, jobs: { aws: 1, gcp: 1, 'aws+gcp': 2 } };
    } finally {
      await files.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
