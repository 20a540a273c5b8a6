import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ComputeManagementClient, GalleryImageVersion } from '@azure/arm-compute';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  blobService,
  collect,
  compute,
  definition,
  POLL,
  uploadVhd,
  versionOf,
} from '../emulator/azure-helpers.js';
import { runCli, startCli, startWorld, type World } from '../support/world.js';

/**
 * `plume prune --platform azure` (the built CLI) against the Azure emulator, on gallery image versions laid
 * out as `plume release` leaves them (tagged with plume's release key and the plan's tags): a Rawhide release
 * every 2 days for 14 days in one definition, an older one alone in a definition past its end of life, and
 * a decoy version plume did not make (tagged like a Rawhide one, without plume's tag). A short policy:
 * deprecate after 3 days, delete after 7, keep the newest 2.
 */

const NOW = '2026-03-01T00:00:00.000Z';
const DAY = 86_400_000;
const AGES = [0, 2, 4, 6, 8, 10, 12, 14];
const OLD_AGE = 20;
const MAIN = 'Fedora-Cloud-Rawhide-x64';
const RETIRED = 'Fedora-Cloud-Rawhide-Old-x64';
const DECOY = `${MAIN}/0.20200101.0`;
const GOLDEN = new URL('golden/prune/', import.meta.url).pathname;
const UPDATE = process.env.PLUME_UPDATE_GOLDEN === '1';
const POLICY = `
[lifecycle.fedora.rawhide]
deprecate_after_days = 3
delete_after_days = 7
keep_newest = 2
`;

let world: World;
let client: ComputeManagementClient;
let source: string;
/** `definition/version` by age. */
let byAge: Map<number, string>;

const arm = () => world.azure!.emulator.arm;
const dateAgo = (days: number) => new Date(Date.parse(NOW) - days * DAY).toISOString().slice(0, 10);
const okCalls = (operation: string) =>
  world.azure!.emulator.calls().filter((c) => c.operation === operation && c.status >= 200 && c.status < 300)
    .length;

async function putVersion(def: string, version: string, tags: Record<string, string>): Promise<string> {
  const body: GalleryImageVersion = { ...versionOf(world.azure!.emulator, source), tags };
  delete body.publishingProfile!.endOfLifeDate;
  await client.galleryImageVersions.createOrUpdate(
    arm().resourceGroup,
    arm().gallery,
    def,
    version,
    body,
    POLL,
  );
  return `${def}/${version}`;
}

/** A release as `plume release --platform azure` leaves it: the plan's tags and plume's release key. */
function releaseTags(age: number): Record<string, string> {
  const date = dateAgo(age);
  const compose = `Fedora-Rawhide-${date.replaceAll('-', '')}.n.0`;
  return {
    Channel: 'rawhide',
    Version: 'Rawhide',
    ComposeID: compose,
    Date: date,
    Arch: 'x86_64',
    ImageType: 'Cloud-Base',
    'plume-release': `fedora/rawhide/${compose}/Cloud-Base/x86_64/azure`,
  };
}

async function seed(): Promise<void> {
  await world.azure!.emulator.reset();
  source = await uploadVhd(blobService(world.azure!.emulator).getContainerClient('fixtures'), 'disk.vhd');
  const { resourceGroup: rg, gallery } = arm();
  await client.galleryImages.createOrUpdate(
    rg,
    gallery,
    MAIN,
    definition(world.azure!.emulator, 'rawhide', { endOfLifeDate: undefined }),
    POLL,
  );
  await client.galleryImages.createOrUpdate(
    rg,
    gallery,
    RETIRED,
    definition(world.azure!.emulator, 'rawhide-old', { endOfLifeDate: new Date('2020-01-01T00:00:00Z') }),
    POLL,
  );
  byAge = new Map();
  for (const age of AGES)
    byAge.set(age, await putVersion(MAIN, `0.${dateAgo(age).replaceAll('-', '')}.0`, releaseTags(age)));
  byAge.set(
    OLD_AGE,
    await putVersion(RETIRED, `0.${dateAgo(OLD_AGE).replaceAll('-', '')}.0`, releaseTags(OLD_AGE)),
  );
  const { 'plume-release': _, ...lookalike } = releaseTags(30);
  const [def, version] = DECOY.split('/') as [string, string];
  await putVersion(def, version, lookalike);
  world.azure!.emulator.clearCalls();
}

/** Every version in the gallery, by `definition/version`. */
async function inventory(): Promise<Map<string, GalleryImageVersion>> {
  const { resourceGroup: rg, gallery } = arm();
  const out = new Map<string, GalleryImageVersion>();
  for (const d of await collect(client.galleryImages.listByGallery(rg, gallery)))
    for (const v of await collect(client.galleryImageVersions.listByGalleryImage(rg, gallery, d.name!)))
      out.set(`${d.name}/${v.name}`, v);
  return out;
}

async function definitions(): Promise<string[]> {
  return (await collect(client.galleryImages.listByGallery(arm().resourceGroup, arm().gallery)))
    .map((d) => d.name!)
    .sort();
}

const prune = (...extra: string[]) => [
  'prune',
  '--system',
  'fedora',
  '--channel',
  'rawhide',
  '--platform',
  'azure',
  '--now',
  NOW,
  '--config',
  world.configPath,
  ...extra,
];

/** What a finished prune of this layout must leave, whatever happened on the way. */
async function expectPruned(): Promise<Map<string, GalleryImageVersion>> {
  const live = await inventory();
  expect(live.get(DECOY)?.publishingProfile?.endOfLifeDate, 'decoy').toBeUndefined();
  for (const [age, name] of byAge) {
    const v = live.get(name);
    if (age > 7) {
      expect(v, `release of age ${age}`).toBeUndefined();
      continue;
    }
    expect(v, `release of age ${age}`).toBeDefined();
    if (age < 3) {
      expect(v!.publishingProfile?.endOfLifeDate, `release of age ${age}`).toBeUndefined();
      expect(v!.publishingProfile?.excludeFromLatest, `release of age ${age}`).toBe(false);
    } else {
      expect(v!.publishingProfile?.endOfLifeDate?.toISOString(), `release of age ${age}`).toBe(NOW);
      expect(v!.publishingProfile?.excludeFromLatest, `release of age ${age}`).toBe(true);
    }
  }
  // The definition left empty and past its end of life went; the one still holding versions stayed.
  expect(await definitions()).toEqual([MAIN]);
  return live;
}

/** Each successful version delete removed a version: nothing was deleted twice. */
function expectNothingTwice(before: number, after: number): void {
  expect(
    world
      .azure!.emulator.calls()
      .filter((c) => c.operation === 'GalleryImageVersions_Delete' && c.status === 202).length,
  ).toBe(before - after);
}

beforeAll(async () => {
  world = await startWorld({ azure: { retryAfterSeconds: 0 } });
  client = compute(world.azure!.emulator);
}, 120_000);
afterAll(async () => {
  await world?.close();
});
beforeEach(async () => {
  await seed();
  // A fresh journal for each scenario.
  world.statePath = join(world.dir, `state-${Date.now()}.db`);
  await world.writeConfig(POLICY);
}, 120_000);

describe('plume prune --platform azure', () => {
  it('--dry-run prints what would be deprecated and deleted, and why, in the AWS format; changes nothing', async () => {
    const before = await inventory();
    world.azure!.emulator.clearCalls();
    const res = await runCli('plume', prune('--dry-run'), world.env);
    expect(res.code, res.stderr).toBe(0);
    const path = join(GOLDEN, 'fedora-rawhide-azure-dry-run.txt');
    const out = res.stdout.replaceAll(arm().subscriptionId, 'SUBSCRIPTION');
    if (UPDATE) writeFileSync(path, out);
    if (!existsSync(path))
      throw new Error('no golden file: review the output, then run with PLUME_UPDATE_GOLDEN=1');
    expect(out).toBe(readFileSync(path, 'utf8'));
    const changes = world
      .azure!.emulator.calls()
      .filter((c) => c.service === 'arm' && !/_(Get|List\w*)$/.test(c.operation));
    expect(changes).toEqual([]);
    expect(await inventory()).toEqual(before);
  }, 120_000);

  it('deletes and deprecates what the policy says, never a decoy; a rerun has nothing to do', async () => {
    const before = await inventory();
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    // Ages 8 to 14 and the old one deleted (with its empty definition); 4 and 6 deprecated.
    expect(res.stdout).toContain('deprecated 2, deleted 5 (snapshots and other backing: 1 deleted');
    const after = await expectPruned();
    expectNothingTwice(before.size, after.size);
    world.azure!.emulator.clearCalls();
    const again = await runCli('plume', prune(), world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('deprecated 0, deleted 0');
    expect(okCalls('GalleryImageVersions_Delete') + okCalls('GalleryImageVersions_Update')).toBe(0);
    expect([...(await inventory()).keys()]).toEqual([...after.keys()]);
  }, 120_000);

  it('version deletes failing: exit 3 with the deprecations done, then a rerun completes', async () => {
    const before = await inventory();
    const down = world.azure!.emulator.addFault({
      service: 'arm',
      operation: 'GalleryImageVersions_Delete',
      kind: 'server-error',
    });
    const first = await runCli('plume', prune(), world.env);
    expect(first.code, first.stderr).toBe(3);
    expect(first.stdout).toContain('failed: delete azure');
    expect([...(await inventory()).keys()]).toEqual([...before.keys()]);
    world.azure!.emulator.removeFault(down);
    world.azure!.emulator.clearCalls();
    const second = await runCli('plume', prune(), world.env);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain('deprecated 0, deleted 5 ');
    const after = await expectPruned();
    expectNothingTwice(before.size, after.size);
  }, 180_000);

  it('kill -9 while versions are being deleted: the rerun finishes, nothing deleted twice', async () => {
    const before = await inventory();
    // Deletions are held, so the kill lands after they were asked for and before plume heard back.
    const slow = world.azure!.emulator.addFault({
      service: 'arm',
      operation: 'GalleryImageVersions_Delete',
      kind: 'latency',
      latencyMs: 3000,
    });
    const run = startCli('plume', prune(), world.env);
    const deadline = Date.now() + 60_000;
    while (okCalls('GalleryImageVersions_Update') < 2) {
      if (Date.now() > deadline) throw new Error(`no deprecation: ${run.output().stderr}`);
      await sleep(20);
    }
    await sleep(300);
    run.child.kill('SIGKILL');
    await run.done;
    world.azure!.emulator.removeFault(slow);
    // The held deletions are carried out after the client has gone, as a server would.
    while (okCalls('GalleryImageVersions_Delete') < 5) {
      if (Date.now() > deadline) throw new Error('the held deletions never ran');
      await sleep(50);
    }
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    const after = await expectPruned();
    expectNothingTwice(before.size, after.size);
  }, 180_000);

  it('a gallery shared with a named subscription: its versions are deprecated, never deleted', async () => {
    const { resourceGroup: rg, gallery } = arm();
    const partner = '0b8e6a52-2f0c-4c49-9d3e-6b1f4f7d2a10';
    await client.galleries.update(rg, gallery, { sharingProfile: { permissions: 'Groups' } }, POLL);
    await client.gallerySharingProfile.update(
      rg,
      gallery,
      { operationType: 'Add', groups: [{ type: 'Subscriptions', ids: [partner] }] },
      POLL,
    );
    world.azure!.emulator.clearCalls();
    const before = await inventory();
    const dry = await runCli('plume', prune('--dry-run'), world.env);
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stdout).toContain(`not deleted: shared with subscription:${partner} (delete_shared = false)`);
    const res = await runCli('plume', prune(), world.env);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('deprecated 7, deleted 0');
    const after = await inventory();
    expect([...after.keys()]).toEqual([...before.keys()]);
    for (const [age, name] of byAge) {
      const eol = after.get(name)!.publishingProfile?.endOfLifeDate;
      if (age < 3) expect(eol, `release of age ${age}`).toBeUndefined();
      else expect(eol?.toISOString(), `release of age ${age}`).toBe(NOW);
    }
    expect(okCalls('GalleryImageVersions_Delete')).toBe(0);
  }, 120_000);
});
