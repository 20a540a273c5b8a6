import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ImagesClient } from '@google-cloud/compute';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyFileAuth } from '../emulator/gcp-helpers.js';
import { Inspector } from '../support/inspect.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { contractErrors } from '../support/schemas.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * joystick with three providers, end to end on the real RabbitMQ and the AWS, Google Cloud and Azure
 * emulators: one FINISHED compose carrying the raw.xz, the GCE tar.gz and the Azure VHD fans out to one job
 * per (image, provider), all running at once; each provider's images exist and each is announced as
 * fedora-image-uploader's schemas define (fedimg's AWS messages unchanged); and a provider that fails for
 * good holds back neither of the others.
 */

const REGIONS = ['us-east-1', 'eu-west-1'];
const VOLS = ['gp3', 'gp2'];
const MiB = 2 ** 20;
const PROVIDERS = ['aws', 'azure', 'gcp'];

let world: World;
let prefix: string;
let queue: string;
let config: string;
let joystick: ReturnType<typeof startCli>;
let out: Awaited<ReturnType<typeof collect>>;
let statusUrl = '';
let gceImages: ImagesClient;
let azureCompute: ComputeManagementClient;

const ofCompose = (id: string) => (r: Received) => r.body.compose === id || r.body.compose_id === id;
const topic = (m: Received) => m.routingKey.slice(prefix.length + 1);

interface JobJson {
  id: string;
  provider: string;
  command?: string;
  state: string;
  error?: string;
  startedAt?: string;
  finishedAt?: string;
  build?: string;
  regions: string[];
  grid: Record<string, Record<string, { id?: string; state: string; public: boolean }>>;
}
interface StatusJson {
  composes: { composeId: string; status: string; jobs: JobJson[] }[];
}

let firstPublish: Record<string, number> = {};
/** The compose whose GCE job failed, and the GCE image of the first compose. */
let failedCompose = '';
let firstGceImage = '';

/** `joystick_last_publish_timestamp_seconds` of the cloud channel for a provider, from /metrics. */
function lastPublish(metrics: string, provider: string): number {
  const m = new RegExp(
    `^joystick_last_publish_timestamp_seconds\\{channel="cloud",provider="${provider}"\\} ([0-9.e+]+)$`,
    'm',
  ).exec(metrics);
  if (!m) throw new Error(`no last publish for ${provider} in the metrics`);
  return Number(m[1]);
}

const statusJson = async () => (await (await fetch(`${statusUrl}/status.json`)).json()) as StatusJson;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS, gcp: true, azure: true });
  prefix = uniquePrefix();
  queue = `joystick_clouds_${prefix.slice(-8)}`;
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    volumeTypes: VOLS,
    arches: ['x86_64'],
    // Room for every provider's job of a compose at once.
    maxParallelJobs: 3,
  });
  gceImages = new ImagesClient({
    ...world.gcp!.endpoints.computeClient,
    authClient: keyFileAuth(world.gcp!.keyFilePath),
  });
  const emu = world.azure!.emulator;
  azureCompute = new ComputeManagementClient(
    emu.credential(),
    emu.arm.subscriptionId,
    emu.armClientOptions(),
  );
  out = await collect([`${prefix}.fedimg.#`, `${prefix}.fedora_image_uploader.#`, `${prefix}.joystick.#`]);
  joystick = startCli('joystick', ['run', '--config', config], world.env);
  await untilConsuming(joystick);
  statusUrl = /"url":"([^"]+)","msg":"status page/.exec(joystick.output().stderr)![1]!;
});

afterAll(async () => {
  if (process.env.JOYSTICK_TEST_LOG) console.log(joystick?.output().stderr);
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await gceImages?.close();
  await world?.close();
});

describe('joystick publishing one compose to AWS, GCE and Azure', { timeout: 300_000 }, () => {
  it('queues one job per provider, runs them at once, and announces every image as its schema says', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241001',
      rawSize: 16 * MiB,
      dataFraction: 0.25,
      arches: ['x86_64'],
      gce: true,
      azure: true,
    });
    const t0 = Date.now();
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    const uploader = (p: string) => (m: Received) =>
      topic(m).startsWith(`fedora_image_uploader.published.v1.${p}`);
    await out.waitFor(
      (g) => PROVIDERS.every((p) => g.filter(ofCompose(compose.composeId)).some(uploader(p))),
      240_000,
      'the announcements of all three providers',
    );
    const elapsed = Date.now() - t0;
    await sleep(1000);
    const msgs = out.got.filter(ofCompose(compose.composeId));

    // Exactly what fedimg sent for AWS, plus one fedora-image-uploader message per provider; no failure.
    const topics = msgs.map(topic).sort();
    expect(topics).toEqual(
      [
        ...Array<string>(VOLS.length * 2).fill('fedimg.image.upload'),
        ...Array<string>((REGIONS.length - 1) * VOLS.length).fill('fedimg.image.copy'),
        ...Array<string>(REGIONS.length * VOLS.length).fill('fedimg.image.publish'),
        'fedora_image_uploader.published.v1.aws.Cloud_Base.41.x86_64',
        'fedora_image_uploader.published.v1.azure',
        'fedora_image_uploader.published.v1.gcp',
      ].sort(),
    );
    expect(msgs.flatMap((m) => contractErrors(m.routingKey, m.body))).toEqual([]);
    for (const m of msgs) {
      expect(m.headers.fedora_messaging_severity).toBe(20);
      const schema =
        /^fedora_image_uploader\.published\.v1\.(aws|gcp|azure)/.exec(topic(m))?.[0] ?? 'base.message';
      expect(m.headers.fedora_messaging_schema).toBe(schema);
    }

    // The jobs: one per provider, named by it, all complete, all started before any of them finished.
    const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
    expect(st.code, st.stderr).toBe(0);
    const fromCli = (JSON.parse(st.stdout) as StatusJson).composes.find(
      (c) => c.composeId === compose.composeId,
    )!;
    expect(fromCli.status).toBe('published');
    const jobs = [...fromCli.jobs].sort((a, b) => a.provider.localeCompare(b.provider));
    expect(jobs.map((j) => j.provider)).toEqual(PROVIDERS);
    for (const j of jobs) {
      expect(j.id).toMatch(
        new RegExp(`^${compose.composeId.replace(/\./g, '\\.')}/cloud/[^/]+/x86_64/${j.provider}$`),
      );
      expect(j.state, `${j.id}: ${j.error ?? ''}`).toBe('complete');
      // The command a person would run to do the same: this provider only, not every one configured.
      expect(j.command).toContain(` --platform ${j.provider}`);
    }
    const firstFinish = Math.min(...jobs.map((j) => Date.parse(j.finishedAt!)));
    const lastStart = Math.max(...jobs.map((j) => Date.parse(j.startedAt!)));
    expect(lastStart).toBeLessThan(firstFinish);
    const walls = Object.fromEntries(
      jobs.map((j) => [j.provider, Date.parse(j.finishedAt!) - Date.parse(j.startedAt!)]),
    );
    const spread =
      Math.max(...jobs.map((j) => Date.parse(j.finishedAt!))) -
      Math.min(...jobs.map((j) => Date.parse(j.startedAt!)));
    console.log(
      `one compose to three providers: message -> last announcement ${elapsed} ms; jobs' span ${spread} ms; per job ${JSON.stringify(walls)} ms (sum ${Object.values(walls).reduce((a, b) => a + b, 0)} ms)`,
    );
    // Run at once: the span of the three jobs is well under the sum of their times.
    expect(spread).toBeLessThan(Object.values(walls).reduce((a, b) => a + b, 0));

    // AWS: the AMIs fedimg's messages name are public in the emulator, the uploader message names them.
    const aws = new Inspector(world.emulator.endpoint);
    const awsMsg = msgs.find(uploader('aws'))!;
    expect(awsMsg.body).toMatchObject({ architecture: 'x86_64', compose_id: compose.composeId, release: 41 });
    const regions = awsMsg.body.regions as Record<string, string>;
    expect(Object.keys(regions).sort()).toEqual([...REGIONS].sort());
    for (const [region, id] of Object.entries(regions)) {
      const image = (await aws.images(region)).find((i) => i.ImageId === id);
      expect(image?.Public, `${region} ${id}`).toBe(true);
    }
    for (const m of msgs.filter((x) => topic(x) === 'fedimg.image.publish')) {
      const extra = m.body.extra as { id: string };
      const image = (await aws.images(String(m.body.destination))).find((i) => i.ImageId === extra.id);
      expect(image?.Public).toBe(true);
      expect(m.body.image_name).toBe(compose.images.x86_64!.build);
    }
    aws.destroy();

    // GCE: the image the message names exists, READY, public, in the family and locations announced.
    const gcpMsg = msgs.find(uploader('gcp'))!;
    const project = world.gcp!.project;
    const [listed] = await gceImages.list({ project });
    expect(listed.map((i) => i.name)).toEqual([gcpMsg.body.image_name]);
    const gce = listed[0]!;
    expect(gce.status).toBe('READY');
    expect(gcpMsg.body).toEqual({
      architecture: 'x86_64',
      compose_id: compose.composeId,
      release: 41,
      subvariant: 'Cloud_Base',
      family: gce.family,
      image_name: gce.name,
      image_url: `https://www.googleapis.com/compute/v1/projects/${project}/global/images/${gce.name}`,
      storage_locations: gce.storageLocations,
    });
    expect(gce.family).toBe('fedora-cloud-41');
    firstGceImage = gce.name!;
    const [policy] = await gceImages.getIamPolicy({ project, resource: gce.name! });
    expect(policy.bindings).toContainEqual(
      expect.objectContaining({ role: 'roles/compute.imageUser', members: ['allAuthenticatedUsers'] }),
    );

    // Azure: the gallery version the message names exists, replicated to the regions it lists.
    const azMsg = msgs.find(uploader('azure'))!;
    const emu = world.azure!.emulator;
    const definition = String(azMsg.body.image_definition_name);
    const versionName = String(azMsg.body.image_version_name);
    const version = await azureCompute.galleryImageVersions.get(
      emu.arm.resourceGroup,
      emu.arm.gallery,
      definition,
      versionName,
    );
    expect(version.provisioningState).toBe('Succeeded');
    expect(version.tags).toMatchObject({ ComposeID: compose.composeId });
    expect(azMsg.body).toMatchObject({
      architecture: 'x86_64',
      compose_id: compose.composeId,
      image_definition_name: 'Fedora-Cloud-41-x64',
      image_version_name: '41.20241001.0',
      regions: [...world.azure!.regions].sort(),
      release: 41,
      subvariant: 'Cloud_Base',
    });
    expect(String(azMsg.body.image_resource_id)).toMatch(
      /^\/CommunityGalleries\/[^/]+\/Images\/Fedora-Cloud-41-x64\/Versions\/41\.20241001\.0$/,
    );

    // The status page and its JSON list each provider's job, with its own locations.
    const status = (await statusJson()).composes.find((c) => c.composeId === compose.composeId)!;
    const byProvider = Object.fromEntries(status.jobs.map((j) => [j.provider, j]));
    expect(Object.keys(byProvider).sort()).toEqual(PROVIDERS);
    expect(byProvider.aws!.regions).toEqual([...REGIONS].sort());
    expect(byProvider.gcp!.grid[Object.keys(byProvider.gcp!.grid)[0]!]!).toBeDefined();
    expect(Object.values(byProvider.gcp!.grid).flatMap((v) => Object.values(v).map((c) => c.id))).toEqual([
      `projects/${project}/global/images/${gce.name}`,
    ]);
    expect(byProvider.azure!.regions).toEqual([...world.azure!.regions].sort());
    const html = await (await fetch(`${statusUrl}/status`)).text();
    for (const j of status.jobs)
      expect(html).toContain(`data-job="${j.id}" data-provider="${j.provider}" data-state="complete"`);
    const text = await runCli('joystick', ['status', '--config', config], world.env);
    for (const p of PROVIDERS) expect(text.stdout).toMatch(new RegExp(`^  ${p} +\\S+  complete`, 'm'));

    // Metrics: each provider's release counted under its name.
    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    for (const p of PROVIDERS)
      expect(metrics).toContain(
        `joystick_releases_total{outcome="complete",channel="cloud",provider="${p}"} 1`,
      );
    expect(metrics).toMatch(/joystick_upload_duration_seconds_count\{region="us-east-1",provider="aws"\} 1/);
    for (const p of PROVIDERS) expect(lastPublish(metrics, p)).toBeGreaterThanOrEqual(Math.floor(t0 / 1000));
    firstPublish = Object.fromEntries(PROVIDERS.map((p) => [p, lastPublish(metrics, p)]));
  });

  it('a provider failing for good holds back neither of the others', async () => {
    // Every image creation in GCE is refused: not retryable, the GCE job fails.
    const fault = world.gcp!.addFault({
      service: 'compute',
      operation: 'images.insert',
      kind: 'access-denied',
      message: 'Required compute.images.create permission for the project',
    });
    const compose = await world.compose({
      version: '41',
      date: '20241002',
      rawSize: 8 * MiB,
      dataFraction: 0.25,
      arches: ['x86_64'],
      gce: true,
      azure: true,
    });
    failedCompose = compose.composeId;
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    const mine = () => out.got.filter(ofCompose(compose.composeId));
    await out.waitFor(
      () =>
        mine().some((m) => topic(m).startsWith('fedora_image_uploader.published.v1.aws')) &&
        mine().some((m) => topic(m) === 'fedora_image_uploader.published.v1.azure') &&
        mine().some((m) => topic(m) === 'joystick.release.failed'),
      240_000,
      'AWS and Azure announced, GCE failed',
    );
    await sleep(1000);
    world.gcp!.removeFault(fault);
    const msgs = mine();
    expect(msgs.some((m) => topic(m) === 'fedora_image_uploader.published.v1.gcp')).toBe(false);
    expect(msgs.filter((m) => topic(m) === 'fedimg.image.publish')).toHaveLength(
      REGIONS.length * VOLS.length,
    );
    expect(
      msgs.flatMap((m) =>
        topic(m).startsWith('fedora_image_uploader') ? contractErrors(m.routingKey, m.body) : [],
      ),
    ).toEqual([]);
    const failed = msgs.filter((m) => topic(m) === 'joystick.release.failed');
    expect(failed).toHaveLength(1);
    expect(failed[0]!.headers.fedora_messaging_severity).toBe(40);
    expect(failed[0]!.body).toMatchObject({
      compose_id: compose.composeId,
      architecture: 'x86_64',
      channel: 'cloud',
      provider: 'gcp',
      status: 'failed',
    });
    expect(String(failed[0]!.body.image_name)).toContain('GCE');
    expect(JSON.stringify(failed[0]!.body)).toMatch(/compute\.images\.create permission|denied|forbidden/i);
    // No fedimg failure for a provider fedimg never knew.
    expect(msgs.some((m) => topic(m) === 'fedimg.image.upload' && m.body.status === 'failed')).toBe(false);

    const status = (await statusJson()).composes.find((c) => c.composeId === compose.composeId)!;
    expect(status.status).toBe('failed');
    const states = Object.fromEntries(status.jobs.map((j) => [j.provider, j.state]));
    expect(states).toEqual({ aws: 'complete', azure: 'complete', gcp: 'failed' });
    const gcpJob = status.jobs.find((j) => j.provider === 'gcp')!;
    expect(gcpJob.error).toMatch(/permission|denied|forbidden/i);
    const html = await (await fetch(`${statusUrl}/status`)).text();
    expect(html).toContain(`data-job="${gcpJob.id}" data-provider="gcp" data-state="failed"`);

    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    expect(metrics).toContain('joystick_releases_total{outcome="failed",channel="cloud",provider="gcp"} 1');
    expect(metrics).toContain('joystick_releases_total{outcome="complete",channel="cloud",provider="aws"} 2');
    expect(metrics).toContain(
      'joystick_releases_total{outcome="complete",channel="cloud",provider="azure"} 2',
    );
    // The channel's last publish moved on for AWS and Azure, not for GCE: an alert on it sees GCE quiet.
    expect(lastPublish(metrics, 'aws')).toBeGreaterThan(firstPublish.aws!);
    expect(lastPublish(metrics, 'azure')).toBeGreaterThan(firstPublish.azure!);
    expect(lastPublish(metrics, 'gcp')).toBe(firstPublish.gcp);
  });

  it("`joystick retry` runs the failed provider again, alone; its image replaces the family's last", async () => {
    const before = out.got.filter(ofCompose(failedCompose)).length;
    const res = await runCli('joystick', ['retry', failedCompose, '--config', config], world.env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`${failedCompose}: 1 job(s) queued again`);
    await out.waitFor(
      (g) =>
        g.some((m) => ofCompose(failedCompose)(m) && topic(m) === 'fedora_image_uploader.published.v1.gcp'),
      120_000,
      'the GCE image announced after the retry',
    );
    await sleep(1000);
    const after = out.got.filter(ofCompose(failedCompose)).slice(before);
    // Only GCE's announcement: AWS and Azure, already published, are not run or announced again.
    expect(after.map(topic)).toEqual(['fedora_image_uploader.published.v1.gcp']);
    expect(contractErrors(after[0]!.routingKey, after[0]!.body)).toEqual([]);
    const name = String(after[0]!.body.image_name);
    expect(name).not.toBe(firstGceImage);
    const project = world.gcp!.project;
    const [image] = await gceImages.get({ project, image: name });
    expect(image.status).toBe('READY');
    const [first] = await gceImages.get({ project, image: firstGceImage });
    expect(first.deprecated?.state).toBe('DEPRECATED');
    expect(first.deprecated?.replacement).toMatch(new RegExp(`/global/images/${name}$`));

    const status = (await statusJson()).composes.find((c) => c.composeId === failedCompose)!;
    expect(status.status).toBe('published');
    expect(Object.fromEntries(status.jobs.map((j) => [j.provider, j.state]))).toEqual({
      aws: 'complete',
      azure: 'complete',
      gcp: 'complete',
    });
  });
});
