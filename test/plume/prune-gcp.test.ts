import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ImagesClient, protos } from '@google-cloud/compute';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { labelsFor } from '../../src/plume/providers/gcp/labels.js';
import { computeClients, gceArchive, putObject, settled, storageClient } from '../emulator/gcp-helpers.js';
import { GCP_BUCKET, runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * `plume prune --platform gcp` (the built CLI) against the Google Cloud emulator, on images laid out as
 * `plume release` leaves them (plume's labels, public to all authenticated users, one family): a Rawhide
 * release every 2 days for 14 days, one of them also shared with a named user, and two decoys plume did not
 * make (one named and labelled like a Rawhide image). A short policy: deprecate after 3 days, delete after
 * 7, keep the newest 2.
 */

type Image = protos.google.cloud.compute.v1.IImage;

const NOW = '2026-03-01T00:00:00.000Z';
const DAY = 86_400_000;
const AGES = [0, 2, 4, 6, 8, 10, 12, 14];
const SHARED_AGE = 12;
const FAMILY = 'fedora-cloud-rawhide-x86-64';
const OBJECT = 'fixtures/disk.tar.gz';
const GOLDEN = new URL('golden/prune/', import.meta.url).pathname;
const UPDATE = process.env.PLUME_UPDATE_GOLDEN === '1';
const POLICY = `
[lifecycle.fedora.rawhide]
deprecate_after_days = 3
delete_after_days = 7
keep_newest = 2
`;

let world: World;
let images: ImagesClient;
let storage: Storage;
let byAge: Map<number, string>;
let decoys: string[];

const project = () => world.gcp!.project;
const dateAgo = (days: number) => new Date(Date.parse(NOW) - days * DAY).toISOString().slice(0, 10);
const okCalls = (operation: string) =>
  world.gcp!.calls().filter((c) => c.operation === operation && c.status === 200).length;

async function insert(name: string, labels: Record<string, string>, members: string[]): Promise<void> {
  await images.insert({
    project: project(),
    imageResource: {
      name,
      family: FAMILY,
      labels,
      architecture: 'X86_64',
      rawDisk: { source: `https://storage.googleapis.com/${GCP_BUCKET}/${OBJECT}`, containerType: 'TAR' },
    },
  });
  expect((await settled(images, project(), name)).status).toBe('READY');
  if (members.length) {
    const [current] = await images.getIamPolicy({ project: project(), resource: name });
    await images.setIamPolicy({
      project: project(),
      resource: name,
      globalSetPolicyRequestResource: {
        policy: { bindings: [{ role: 'roles/compute.imageUser', members }], etag: current.etag },
      },
    });
  }
}

/** A release as `plume release --platform gcp` leaves it: plume's labels from the plan's key and tags. */
async function seedRelease(age: number): Promise<string> {
  const date = dateAgo(age);
  const compose = `Fedora-Rawhide-${date.replaceAll('-', '')}.n.0`;
  const name = `fedora-cloud-base-gcp-rawhide-${date.replaceAll('-', '')}-n-0-x86-64`;
  const labels = labelsFor({
    key: `fedora/rawhide/${compose}/Cloud-Base/x86_64/gcp`,
    tags: {
      Channel: 'rawhide',
      Version: 'Rawhide',
      ComposeID: compose,
      Date: date,
      Arch: 'x86_64',
      ImageType: 'Cloud-Base',
    },
  });
  const shared = age === SHARED_AGE ? ['user:tester@example.org'] : [];
  await insert(name, labels, ['allAuthenticatedUsers', ...shared]);
  return name;
}

async function seed(): Promise<void> {
  await world.gcp!.reset();
  world.gcp!.createBucket(GCP_BUCKET);
  await putObject(storage, GCP_BUCKET, OBJECT, await gceArchive(world.dir, 2 * 2 ** 20));
  byAge = new Map();
  for (const age of AGES) byAge.set(age, await seedRelease(age));
  // Named and labelled like an old Rawhide image, in the family, but without plume's release label.
  const lookalike = 'fedora-cloud-base-gcp-rawhide-20200101-n-0-x86-64';
  await insert(
    lookalike,
    {
      channel: 'rawhide',
      date: '2020-01-01',
      imagetype: 'cloud-base',
      'plume-system': 'fedora',
      'plume-channel': 'rawhide',
    },
    ['allAuthenticatedUsers'],
  );
  const other = 'someone-elses-image';
  await insert(other, { date: '2020-01-01' }, []);
  decoys = [lookalike, other];
  world.gcp!.clearCalls();
}

async function listAll(): Promise<Image[]> {
  const [all] = await images.list({ project: project() });
  return all;
}

const names = (list: Image[]) => new Set(list.map((i) => i.name!));

const prune = (...extra: string[]) => [
  'prune',
  '--system',
  'fedora',
  '--channel',
  'rawhide',
  '--platform',
  'gcp',
  '--now',
  NOW,
  '--config',
  world.configPath,
  ...extra,
];

/** What a finished prune of this layout must leave, whatever happened on the way. */
function expectPruned(after: Image[]): void {
  const live = new Map(after.map((i) => [i.name!, i]));
  for (const d of decoys) {
    expect(live.has(d), `decoy ${d}`).toBe(true);
    expect(live.get(d)!.deprecated?.state, `decoy ${d}`).toBeUndefined();
  }
  const newest = live.get(byAge.get(0)!)!;
  for (const [age, name] of byAge) {
    const image = live.get(name);
    if (age > 7 && age !== SHARED_AGE) {
      expect(image, `release of age ${age}`).toBeUndefined();
      continue;
    }
    expect(image, `release of age ${age}`).toBeDefined();
    if (age < 3) expect(image!.deprecated?.state, `release of age ${age}`).toBeUndefined();
    else
      expect(image!.deprecated, `release of age ${age}`).toMatchObject({
        state: 'DEPRECATED',
        replacement: newest.selfLink,
      });
  }
}

/** Each successful images.delete removed an image: nothing was deleted twice. */
function expectNothingTwice(before: Image[], after: Image[]): void {
  expect(okCalls('images.delete')).toBe(before.length - after.length);
}

beforeAll(async () => {
  world = await startWorld({ gcp: true });
  await world.writeConfig(POLICY);
  const c = computeClients(world.gcp!);
  images = c.images;
  await c.operations.close();
  await c.projects.close();
  storage = storageClient(world.gcp!);
}, 120_000);
afterAll(async () => {
  await images?.close();
  await world?.close();
});
beforeEach(async () => {
  await seed();
  // A fresh journal for each scenario.
  world.statePath = join(world.dir, `state-${Date.now()}.db`);
  await world.writeConfig(POLICY);
}, 120_000);

describe('plume prune --platform gcp', () => {
  it('--dry-run prints what would be deprecated and deleted, and why, in the AWS format; changes nothing', async () => {
    const before = await listAll();
    const res = await runCli('plume', prune('--dry-run'), world.env);
    expect(res.code, res.stderr).toBe(0);
    const path = join(GOLDEN, 'fedora-rawhide-gcp-dry-run.txt');
    if (UPDATE) writeFileSync(path, res.stdout);
    if (!existsSync(path))
      throw new Error('no golden file: review the output, then run with PLUME_UPDATE_GOLDEN=1');
    expect(res.stdout).toBe(readFileSync(path, 'utf8'));
    expect(await listAll()).toEqual(before);
    const changes = world
      .gcp!.calls()
      .filter((c) => !['images.list', 'images.getIamPolicy', 'token'].includes(c.operation));
    expect(changes).toEqual([]);
  }, 120_000);

  it('deletes and deprecates what the policy says, never a decoy or a shared image; a rerun has nothing to do', async () => {
    const before = await listAll();
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    // Ages 8, 10 and 14 deleted; 4, 6 and the shared 12 deprecated.
    expect(res.stdout).toContain('deprecated 3, deleted 3 ');
    const after = await listAll();
    expectPruned(after);
    expectNothingTwice(before, after);
    world.gcp!.clearCalls();
    const again = await runCli('plume', prune(), world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('deprecated 0, deleted 0');
    expect(okCalls('images.delete') + okCalls('images.deprecate')).toBe(0);
    expect(names(await listAll())).toEqual(names(after));
  }, 120_000);

  it('images.delete failing: exit 3 with the deprecations done, then a rerun completes', async () => {
    const before = await listAll();
    const down = world.gcp!.addFault({
      service: 'compute',
      operation: 'images.delete',
      kind: 'server-error',
    });
    const first = await runCli('plume', prune(), world.env);
    expect(first.code, first.stderr).toBe(3);
    expect(first.stdout).toContain('failed: delete gcp global');
    expect(names(await listAll())).toEqual(names(before));
    world.gcp!.removeFault(down);
    const second = await runCli('plume', prune(), world.env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('deprecated 0, deleted 3 ');
    const after = await listAll();
    expectPruned(after);
    expectNothingTwice(before, after);
  }, 180_000);

  it('kill -9 while images are being deleted: the rerun finishes, nothing deleted twice', async () => {
    const before = await listAll();
    // Deletions are held, so the kill lands after they were asked for and before plume heard back.
    const slow = world.gcp!.addFault({
      service: 'compute',
      operation: 'images.delete',
      kind: 'latency',
      latencyMs: 3000,
    });
    const run = startCli('plume', prune(), world.env);
    const deadline = Date.now() + 60_000;
    while (okCalls('images.deprecate') < 3) {
      if (Date.now() > deadline) throw new Error(`no deprecation: ${run.output().stderr}`);
      await sleep(20);
    }
    await sleep(300);
    run.child.kill('SIGKILL');
    await run.done;
    world.gcp!.removeFault(slow);
    // The held deletions are carried out after the client has gone, as a server would.
    while (okCalls('images.delete') < 3) {
      if (Date.now() > deadline) throw new Error('the held deletions never ran');
      await sleep(50);
    }
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    const after = await listAll();
    expectPruned(after);
    expectNothingTwice(before, after);
  }, 180_000);
});
