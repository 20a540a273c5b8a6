import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pungiMessage, writeJoystickConfig } from '../support/joystick.js';
import { uniquePrefix } from '../support/rabbit.js';
import { contractErrors } from '../support/schemas.js';
import { runCli, startWorld, type RunResult, type World } from '../support/world.js';
import type { SampleCompose } from '../../tools/compose/sample-compose.js';

/**
 * Fedora 28's release candidate as joystick met it: compose Fedora-28-20180425.0, labelled RC-1.1 in its
 * composeinfo.json, holding Cloud Base and Atomic Host images for x86_64 and aarch64 (with the qcow2,
 * Vagrant and other files of a real compose), announced by a message that says RC-20180425.0. Replayed
 * through `joystick replay` against the emulator: every cloud image is published under the names the
 * websites look for, or said to be skipped, with why.
 */

const REGIONS = ['us-east-1', 'eu-west-1'];
const ARCHES = ['x86_64', 'aarch64'] as const;
let world: World;
let prefix: string;
let compose: SampleCompose & { url: string };
let res: RunResult;
let sent: { topic: string; body: Record<string, unknown>; headers: Record<string, unknown> }[];

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS });
  prefix = uniquePrefix();
  const config = await writeJoystickConfig(world, {
    prefix,
    queue: `joystick_f28_${prefix.slice(-8)}`,
    database: `sqlite:///${join(world.dir, 'joystick.db')}`,
    regions: REGIONS,
    arches: [...ARCHES],
  });
  compose = await world.compose({
    composeId: 'Fedora-28-20180425.0',
    releaseShort: 'Fedora',
    version: '28',
    date: '20180425',
    respin: 0,
    label: 'RC-1.1',
    rawSize: 8 * 2 ** 20,
    arches: [...ARCHES],
    buildName: (arch) => `Fedora-Cloud-Base-28-1.1.${arch}`,
    moreImages: [
      {
        variant: 'AtomicHost',
        subvariant: 'AtomicHost',
        buildName: (arch) => `Fedora-AtomicHost-28-1.1.${arch}`,
      },
    ],
  });
  const file = join(world.dir, 'f28.jsonl');
  writeFileSync(
    file,
    JSON.stringify({
      topic: 'org.fedoraproject.prod.pungi.compose.status.change',
      body: pungiMessage(compose, 'FINISHED', { compose_label: 'RC-20180425.0' }),
    }) + '\n',
  );
  res = await runCli('joystick', ['replay', file, '--config', config], world.env);
  sent = res.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as (typeof sent)[number]);
}, 300_000);
afterAll(async () => {
  await world?.close();
});

const of = (topic: string) => sent.filter((m) => m.topic === `${prefix}.${topic}`);
const logLines = () =>
  res.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: string; msg: string; image?: string });

describe("Fedora 28's release candidate through joystick", () => {
  it('publishes Cloud Base and Atomic Host for both arches, named from the compose, not the message', () => {
    expect(res.code, res.stderr).toBe(0);
    const builds = [...new Set(of('fedimg.image.publish').map((m) => m.body.image_name))].sort();
    expect(builds).toEqual([
      'Fedora-AtomicHost-28-1.1.aarch64',
      'Fedora-AtomicHost-28-1.1.x86_64',
      'Fedora-Cloud-Base-28-1.1.aarch64',
      'Fedora-Cloud-Base-28-1.1.x86_64',
    ]);
    // Every region and volume type of each.
    expect(of('fedimg.image.publish')).toHaveLength(4 * REGIONS.length * 2);
    expect(sent.some((m) => JSON.stringify(m.body).includes('20180425.0.x86_64'))).toBe(false);
  });

  it("names the architecture as Fedora does in fedora-image-uploader's topic and body, as EC2 does in fedimg's", () => {
    const uploader = sent.filter((m) => m.topic.startsWith(`${prefix}.fedora_image_uploader.`));
    expect(
      uploader.map((m) => `${m.topic.slice(prefix.length + 1)} ${String(m.body.architecture)}`).sort(),
    ).toEqual([
      'fedora_image_uploader.published.v1.aws.AtomicHost.28.aarch64 aarch64',
      'fedora_image_uploader.published.v1.aws.AtomicHost.28.x86_64 x86_64',
      'fedora_image_uploader.published.v1.aws.Cloud_Base.28.aarch64 aarch64',
      'fedora_image_uploader.published.v1.aws.Cloud_Base.28.x86_64 x86_64',
    ]);
    for (const m of [...of('fedimg.image.copy'), ...of('fedimg.image.publish')])
      expect(m.body.architecture).toBe(String(m.body.image_name).includes('.aarch64') ? 'arm64' : 'x86_64');
  });

  it("sends fedimg's and fedora-image-uploader's messages with exactly their fields", () => {
    const theirs = sent.filter((m) => !m.topic.startsWith(`${prefix}.joystick.`));
    expect(theirs.length).toBeGreaterThan(0);
    expect(theirs.flatMap((m) => contractErrors(m.topic, m.body))).toEqual([]);
    // fedimg's copy carries the build name, like all its messages.
    expect([...new Set(of('fedimg.image.copy').map((m) => m.body.image_name))].sort()).toEqual([
      'Fedora-AtomicHost-28-1.1.aarch64',
      'Fedora-AtomicHost-28-1.1.x86_64',
      'Fedora-Cloud-Base-28-1.1.aarch64',
      'Fedora-Cloud-Base-28-1.1.x86_64',
    ]);
  });

  it('says in one INFO line each which cloud images it leaves out, and why', () => {
    const skipped = logLines().filter((l) => l.level === 'info' && l.image);
    const files = skipped.map((l) => l.image!.split('/').pop()).sort();
    expect(files).toEqual(
      [
        ...ARCHES.flatMap((a) => [
          `Fedora-Cloud-Base-28-1.1.${a}.qcow2`,
          `Fedora-Cloud-Base-Vagrant-28-1.1.${a}.vagrant-libvirt.box`,
          `Fedora-AtomicHost-28-1.1.${a}.qcow2`,
          `Fedora-AtomicHost-28-1.1.${a}.vagrant-libvirt.box`,
        ]),
      ].sort(),
    );
    for (const l of skipped)
      expect(l.msg).toMatch(/^not publishing \S+: it is a (qcow2|vagrant-libvirt) file; /);
    expect(logLines().map((l) => l.msg)).toContain(
      'following the compose\'s composeinfo.json where the message differs: label "RC-1.1" (the message said "RC-20180425.0")',
    );
  });
});
