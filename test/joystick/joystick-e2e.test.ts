import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { contractErrors } from '../support/schemas.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';

const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
const VOLS = ['gp3', 'gp2'];
const ARCHES = ['x86_64', 'aarch64'];

let world: World;
let prefix: string;
let queue: string;
let config: string;
let joystick: ReturnType<typeof startCli>;
let out: Awaited<ReturnType<typeof collect>>;
let compose: SampleCompose & { url: string };
let statusUrl = '';

const ofCompose = (id: string) => (r: Received) => r.body.compose === id || r.body.compose_id === id;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  queue = `joystick_e2e_${prefix.slice(-8)}`;
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: ARCHES,
  });
  compose = await world.compose({ rawSize: 64 * 2 ** 20, arches: ['x86_64', 'aarch64'] });
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
  await world?.close();
});

describe('joystick on the real RabbitMQ and the emulator', { timeout: 300_000 }, () => {
  it('turns a FINISHED compose into public AMIs and the messages fedimg and fedora-image-uploader sent', async () => {
    // Two throttled copies on the way: retried, counted, and the release is complete anyway.
    world.emulator.addFault({ operation: 'CopyImage', kind: 'throttle', times: 2 });
    const t0 = Date.now();
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    const perArch =
      VOLS.length /* started */ +
      VOLS.length /* completed */ +
      (REGIONS.length - 1) * VOLS.length /* copies */ +
      REGIONS.length * VOLS.length /* publish */ +
      1; /* uploader */
    await out.waitFor(
      (g) => g.filter(ofCompose(compose.composeId)).length >= perArch * ARCHES.length,
      180_000,
      'all announcements',
    );
    const elapsed = Date.now() - t0;
    await sleep(1000);
    const msgs = out.got.filter(ofCompose(compose.composeId));
    expect(msgs).toHaveLength(perArch * ARCHES.length);

    const count = (topic: string) => msgs.filter((m) => m.routingKey === `${prefix}.${topic}`).length;
    expect(count('fedimg.image.upload')).toBe(2 * VOLS.length * ARCHES.length);
    expect(count('fedimg.image.copy')).toBe((REGIONS.length - 1) * VOLS.length * ARCHES.length);
    expect(count('fedimg.image.publish')).toBe(REGIONS.length * VOLS.length * ARCHES.length);
    expect(
      msgs
        .filter((m) =>
          m.routingKey.startsWith(`${prefix}.fedora_image_uploader.published.v1.aws.Cloud_Base.30.`),
        )
        .map((m) => `${m.routingKey.split('.').pop()} ${String(m.body.architecture)}`)
        .sort(),
    ).toEqual(['aarch64 aarch64', 'x86_64 x86_64']);

    // Properties and headers exactly as fedora-messaging sets them.
    for (const m of msgs) {
      expect(m.properties).toMatchObject({
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
      });
      expect(m.properties.messageId).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
      );
      expect(m.headers['sent-at']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
      expect(m.headers.fedora_messaging_severity).toBe(20);
      const schema = m.routingKey.includes('fedora_image_uploader')
        ? 'fedora_image_uploader.published.v1.aws'
        : 'base.message';
      expect(m.headers.fedora_messaging_schema).toBe(schema);
    }
    // Bodies and topics against the contracts written from fedimg's and fedora-image-uploader's code.
    expect(msgs.flatMap((m) => contractErrors(m.routingKey, m.body))).toEqual([]);

    // The websites' rules: build name exact, virt_type hvm, vol_type gp2/gp3, extra.id per destination.
    const found: Record<string, string> = {};
    for (const arch of ARCHES) {
      const build = compose.images[arch]!.build;
      for (const m of msgs.filter(
        (x) => x.routingKey === `${prefix}.fedimg.image.publish` && x.body.image_name === build,
      )) {
        const extra = m.body.extra as { virt_type: string; vol_type: string; id: string };
        if (extra.virt_type === 'hvm' && (extra.vol_type === 'gp2' || extra.vol_type === 'gp3'))
          found[`${arch}/${String(m.body.destination)}/${extra.vol_type}`] = extra.id;
      }
    }
    expect(Object.keys(found)).toHaveLength(ARCHES.length * REGIONS.length * VOLS.length);
    const aws = new Inspector(world.emulator.endpoint);
    for (const [key, id] of Object.entries(found)) {
      const [, region] = key.split('/');
      const image = (await aws.images(region!)).find((i) => i.ImageId === id);
      expect(image?.Public, key).toBe(true);
    }
    // The other websites script lists AMIs by name pattern with the AWS API: the same AMIs, by name.
    for (const arch of ARCHES) {
      const build = compose.images[arch]!.build;
      for (const region of REGIONS) {
        const { DescribeImagesCommand } = await import('@aws-sdk/client-ec2');
        const listed = await aws.ec2(region).send(
          new DescribeImagesCommand({
            Owners: ['self'],
            Filters: [{ Name: 'name', Values: [`${build}-hvm-*`] }],
          }),
        );
        const byVol = Object.fromEntries(
          (listed.Images ?? []).map((i) => [/-hvm-[a-z0-9-]+-(gp[23])-\d+$/.exec(i.Name!)![1], i.ImageId]),
        );
        expect(byVol).toEqual({ gp2: found[`${arch}/${region}/gp2`], gp3: found[`${arch}/${region}/gp3`] });
      }
    }
    aws.destroy();

    // The status page and `joystick status` show it.
    const status = (await (await fetch(`${statusUrl}/status.json`)).json()) as {
      composes: {
        composeId: string;
        status: string;
        jobs: { grid: Record<string, Record<string, { id: string; public: boolean }>> }[];
      }[];
    };
    const c = status.composes.find((x) => x.composeId === compose.composeId)!;
    expect(c.status).toBe('published');
    expect(c.jobs).toHaveLength(2);
    expect(c.jobs[0]!.grid['eu-west-1']!.gp3!.public).toBe(true);
    const metrics = await (await fetch(`${statusUrl}/metrics`)).text();
    expect(metrics).toMatch(/joystick_last_publish_timestamp_seconds\{channel="cloud",provider="aws"\} \d/);
    expect(metrics).toMatch(/joystick_releases_total\{outcome="complete",channel="cloud",provider="aws"\} 2/);
    expect(metrics).toContain('joystick_retries_total{what="aws-throttling"} 2');
    world.emulator.clearFaults();
    const firstBlock =
      world.emulator.calls().find((c) => c.operation === 'PutSnapshotBlock' && c.at >= t0)!.at - t0;
    expect(firstBlock).toBeGreaterThan(0);
    console.log(
      `message -> first block uploaded: ${firstBlock} ms; message -> last announcement: ${elapsed} ms`,
    );
  });

  it('processes the same FINISHED message once', async () => {
    const before = out.got.length;
    const calls = world.emulator.calls().filter((c) => c.operation === 'StartSnapshot').length;
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    await sleep(3000);
    expect(out.got.length).toBe(before);
    expect(world.emulator.calls().filter((c) => c.operation === 'StartSnapshot').length).toBe(calls);
    expect(joystick.output().stderr).toContain('duplicate message ignored');
  });

  it('ignores STARTED, DOOMED and TERMINATED composes quietly', async () => {
    const before = out.got.length;
    for (const status of ['STARTED', 'DOOMED', 'TERMINATED'])
      await publishRaw(
        `${prefix}.pungi.compose.status.change`,
        pungiMessage(
          { composeId: 'Fedora-Cloud-31-20191020.0', url: `${world.files.url}/nothing/compose` },
          status,
        ),
      );
    await sleep(2000);
    expect(out.got.length).toBe(before);
    const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
    expect(JSON.parse(st.stdout).composes.map((c: { composeId: string }) => c.composeId)).not.toContain(
      'Fedora-Cloud-31-20191020.0',
    );
  });

  it('drops a malformed message with a log line and goes on', async () => {
    await publishRaw(`${prefix}.pungi.compose.status.change`, null, {
      raw: Buffer.from('{"status": "FINISHED", "compose_id": '),
    });
    await publishRaw(`${prefix}.pungi.compose.status.change`, { status: 'FINISHED', compose_id: 42 });
    const second = await world.compose({
      rawSize: 8 * 2 ** 20,
      version: '31',
      date: '20191029',
      arches: ['x86_64'],
    });
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(second));
    await out.waitFor(
      (g) =>
        g.some((m) => m.routingKey.endsWith('fedimg.image.publish') && m.body.compose === second.composeId),
      120_000,
      'the next compose',
    );
    const log = joystick.output().stderr;
    expect(log).toMatch(/not valid JSON|is not JSON|invalid/i);
    expect(log).toContain('dropping an invalid compose message');
  });

  it('reports a compose without images.json as an ERROR message', async () => {
    await publishRaw(
      `${prefix}.pungi.compose.status.change`,
      pungiMessage({
        composeId: 'Fedora-Cloud-32-20200101.0',
        url: `${world.files.url}/Fedora-Cloud-32-20200101.0/compose`,
      }),
    );
    await out.waitFor(
      (g) => g.some((m) => m.routingKey === `${prefix}.joystick.compose.failed`),
      60_000,
      'the failure message',
    );
    const m = out.got.find((x) => x.routingKey === `${prefix}.joystick.compose.failed`)!;
    expect(m.headers.fedora_messaging_severity).toBe(40);
    expect(m.body).toMatchObject({
      compose_id: 'Fedora-Cloud-32-20200101.0',
      channel: 'cloud',
      status_url: 'http://status.example/status',
    });
    expect(String(m.body.reason)).toMatch(/images\.json/);
  });
});
