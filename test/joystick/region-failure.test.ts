import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Inspector } from '../support/inspect.js';
import { pungiMessage, untilConsuming, writeJoystickConfig } from '../support/joystick.js';
import { collect, deleteQueue, publishRaw, uniquePrefix, type Received } from '../support/rabbit.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';

/**
 * One region failing for good while joystick publishes a compose: every other region is published and
 * announced, the job is `partial`, an ERROR message names the region, and `joystick retry --now` completes
 * it once the region works again, announcing only what was missing.
 */
const REGIONS = ['us-east-1', 'us-west-2', 'eu-west-1'];
const BAD = 'eu-west-1';
let world: World;
let prefix: string;
let queue: string;
let config: string;
let joystick: ReturnType<typeof startCli> | undefined;
let out: Awaited<ReturnType<typeof collect>>;
let compose: SampleCompose & { url: string };

const topic = (t: string) => (r: Received) => r.routingKey === `${prefix}.${t}`;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  queue = `joystick_region_${prefix.slice(-8)}`;
  config = await writeJoystickConfig(world, {
    prefix,
    queue,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: ['x86_64'],
  });
  compose = await world.compose({ rawSize: 32 * 2 ** 20, arches: ['x86_64'] });
  out = await collect([`${prefix}.fedimg.#`, `${prefix}.fedora_image_uploader.#`, `${prefix}.joystick.#`]);
  joystick = startCli('joystick', ['run', '--config', config], world.env);
  await untilConsuming(joystick);
});

afterAll(async () => {
  joystick?.child.kill('SIGTERM');
  await joystick?.done;
  await out?.close();
  await deleteQueue(queue);
  await world?.close();
});

describe('a region that fails for good', { timeout: 240_000 }, () => {
  it('publishes and announces the others, marks the job partial, and pages with an ERROR naming the region', async () => {
    // Every CopyImage to the region fails with a 500, however often it is retried.
    world.emulator.addFault({ operation: 'CopyImage', region: BAD, kind: 'server-error' });
    await publishRaw(`${prefix}.pungi.compose.status.change`, pungiMessage(compose));
    await out.waitFor(
      (g) => g.some(topic('joystick.release.partial')),
      180_000,
      'the partial release message',
    );
    await sleep(1000);

    const partial = out.got.filter(topic('joystick.release.partial'));
    expect(partial).toHaveLength(1);
    expect(partial[0]!.headers.fedora_messaging_severity).toBe(40);
    expect(partial[0]!.body).toMatchObject({
      compose_id: compose.composeId,
      image_name: compose.images.x86_64!.build,
      status: 'partial',
      published: 4,
      regions: [BAD],
      status_url: 'http://status.example/status',
    });
    const failed = partial[0]!.body.failed as { region: string; vol_type: string; reason: string }[];
    expect(failed.map((f) => `${f.region}/${f.vol_type}`).sort()).toEqual([`${BAD}/gp2`, `${BAD}/gp3`]);
    expect(failed[0]!.reason).toMatch(/no image named/);

    const published = out.got.filter(topic('fedimg.image.publish'));
    expect(
      published
        .map((m) => `${String(m.body.destination)}/${(m.body.extra as { vol_type: string }).vol_type}`)
        .sort(),
    ).toEqual(['us-east-1/gp2', 'us-east-1/gp3', 'us-west-2/gp2', 'us-west-2/gp3']);
    const uploader = out.got.filter((m) => m.routingKey.startsWith(`${prefix}.fedora_image_uploader.`));
    expect(uploader).toHaveLength(1);
    expect(Object.keys(uploader[0]!.body.regions as object).sort()).toEqual(['us-east-1', 'us-west-2']);

    const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
    const c = JSON.parse(st.stdout).composes.find(
      (x: { composeId: string }) => x.composeId === compose.composeId,
    );
    expect(c.jobs.map((j: { state: string }) => j.state)).toEqual(['partial']);
    expect(joystick!.output().stderr).toContain(`ec2:CopyImage in ${BAD} failed`);

    const aws = new Inspector(world.emulator.endpoint);
    const inv = await aws.inventory(REGIONS);
    aws.destroy();
    expect(inv.images.filter((i) => i.region === BAD)).toEqual([]);
    expect(inv.images.filter((i) => i.region !== BAD).every((i) => i.State === 'available' && i.Public)).toBe(
      true,
    );
    expect(inv.orphans).toEqual([]);
  });

  it('`joystick retry COMPOSE --now` completes it once the region works, announcing only what was missing', async () => {
    joystick!.child.kill('SIGTERM');
    expect((await joystick!.done).code).toBe(0);
    joystick = undefined;
    world.emulator.clearFaults();
    const before = out.got.length;
    const uploads = world.emulator.calls().filter((c) => c.operation === 'StartSnapshot').length;

    const res = await runCli(
      'joystick',
      ['retry', compose.composeId, '--now', '--config', config],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`${compose.composeId}: 1 job(s) queued again`);
    await out.waitFor(
      (g) => g.slice(before).some((m) => m.routingKey.startsWith(`${prefix}.fedora_image_uploader.`)),
      60_000,
      'the completed announcements',
    );
    await sleep(1000);
    const fresh = out.got.slice(before);
    const key = (m: Received) =>
      `${m.routingKey.slice(prefix.length + 1)} ${(m.body.destination as string | undefined) ?? ''}/${(m.body.extra as { vol_type?: string } | undefined)?.vol_type ?? ''}`;
    expect(fresh.map(key).sort()).toEqual(
      [
        `fedimg.image.copy ${BAD}/gp2`,
        `fedimg.image.copy ${BAD}/gp3`,
        `fedimg.image.publish ${BAD}/gp2`,
        `fedimg.image.publish ${BAD}/gp3`,
        'fedora_image_uploader.published.v1.aws.Cloud_Base.30.x86_64 /',
      ].sort(),
    );
    expect(
      Object.keys(fresh.find((m) => m.routingKey.includes('uploader'))!.body.regions as object).sort(),
    ).toEqual([...REGIONS].sort());
    // Nothing was uploaded again; every region and volume type is public exactly once.
    expect(world.emulator.calls().filter((c) => c.operation === 'StartSnapshot')).toHaveLength(uploads);
    const aws = new Inspector(world.emulator.endpoint);
    const inv = await aws.inventory(REGIONS);
    aws.destroy();
    expect(inv.images).toHaveLength(REGIONS.length * 2);
    expect(new Set(inv.images.map((i) => `${i.region}/${i.Name}`)).size).toBe(inv.images.length);
    expect(inv.images.every((i) => i.State === 'available' && i.Public)).toBe(true);
    expect(inv.orphans).toEqual([]);
    const st = await runCli('joystick', ['status', '--config', config, '--json'], world.env);
    const c = JSON.parse(st.stdout).composes.find(
      (x: { composeId: string }) => x.composeId === compose.composeId,
    );
    expect(c.jobs.map((j: { state: string }) => j.state)).toEqual(['complete']);
  });
});
