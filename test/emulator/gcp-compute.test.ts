import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GlobalOperationsClient, ImagesClient, ProjectsClient, protos } from '@google-cloud/compute';
import type { Storage } from '@google-cloud/storage';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startGcpEmulator, type GcpEmulator } from '../../tools/emulator/gcp/index.js';
import { computeClients, gceArchive, putObject, rejection, settled, storageClient } from './gcp-helpers.js';

/**
 * Compute Engine's images, global operations and project as the fake serves them, driven through
 * @google-cloud/compute's REST transport; archives go up through @google-cloud/storage.
 */

type Operation = protos.google.cloud.compute.v1.IOperation;

const MiB = 2 ** 20;
const BUCKET = 'plume-images';
let emu: GcpEmulator;
let images: ImagesClient;
let operations: GlobalOperationsClient;
let projects: ProjectsClient;
let storage: Storage;
let dir: string;
let good: Buffer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'plume-gcp-test-'));
  good = await gceArchive(dir, 1536 * MiB);
  emu = await startGcpEmulator({ pendingMs: 20, listPageSize: 2 });
  ({ images, operations, projects } = computeClients(emu));
  storage = storageClient(emu);
});
afterAll(async () => {
  await Promise.allSettled([images?.close(), operations?.close(), projects?.close()]);
  await emu?.stop();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await emu.reset();
  emu.createBucket(BUCKET);
  await putObject(storage, BUCKET, 'disk.tar.gz', good);
});

const project = () => emu.project;
const SOURCE = `https://storage.googleapis.com/${BUCKET}/disk.tar.gz`;
const uuid = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

async function insert(name: string, extra: Record<string, unknown> = {}, requestId?: string) {
  const [op] = await images.insert({
    project: project(),
    ...(requestId ? { requestId } : {}),
    imageResource: { name, rawDisk: { source: SOURCE }, ...extra },
  });
  return op.latestResponse as Operation & { name: string };
}

async function waitDone(opName: string) {
  const [op] = await operations.wait({ project: project(), operation: opName });
  return op;
}

describe('images.insert', () => {
  it('creates the image from a gzip-compressed tar holding disk.raw: PENDING, then READY with its sizes', async () => {
    const op = await insert('fedora-cloud-41', {
      family: 'fedora-cloud',
      architecture: 'X86_64',
      labels: { channel: 'cloud', version: '41' },
      guestOsFeatures: [{ type: 'UEFI_COMPATIBLE' }, { type: 'GVNIC' }],
      storageLocations: ['eu'],
      licenses: ['projects/fedora-cloud/global/licenses/fedora'],
      description: 'Fedora Cloud 41',
    });
    expect(op).toMatchObject({ operationType: 'insert', status: 'RUNNING' });
    expect(op.targetLink).toMatch(/\/projects\/demo-plume-images\/global\/images\/fedora-cloud-41$/);
    const [pending] = await images.get({ project: project(), image: 'fedora-cloud-41' });
    expect(pending.status).toBe('PENDING');
    const done = await waitDone(op.name);
    expect(done.status).toBe('DONE');
    expect(done.error).toBeFalsy();
    const [image] = await images.get({ project: project(), image: 'fedora-cloud-41' });
    expect(image).toMatchObject({
      kind: 'compute#image',
      status: 'READY',
      family: 'fedora-cloud',
      architecture: 'X86_64',
      sourceType: 'RAW',
      diskSizeGb: '2', // a 1.5 GiB disk, rounded up
      archiveSizeBytes: String(good.length),
      storageLocations: ['eu'],
      labels: { channel: 'cloud', version: '41' },
      description: 'Fedora Cloud 41',
      licenses: ['https://www.googleapis.com/compute/v1/projects/fedora-cloud/global/licenses/fedora'],
    });
    expect(image.guestOsFeatures?.map((f) => f.type)).toEqual(['UEFI_COMPATIBLE', 'GVNIC']);
    expect(image.labelFingerprint).toMatch(/^[A-Za-z0-9+/]{11}=$/);
    // Without storageLocations, the image's data is kept in the bucket's multi-region.
    await waitDone((await insert('second')).name);
    expect((await images.get({ project: project(), image: 'second' }))[0].storageLocations).toEqual(['us']);
  });

  it('answers a retried request (same requestId) with the first operation, and refuses a second image of a name (409)', async () => {
    const first = await insert('once', {}, uuid(1));
    const again = await insert('once', {}, uuid(1));
    expect(again.name).toBe(first.name);
    const err = await rejection(insert('once', {}, uuid(2)));
    expect(err.httpStatusCode).toBe(409);
    expect(err.message).toBe(`The resource 'projects/${project()}/global/images/once' already exists`);
    const [all] = await images.list({ project: project() });
    expect(all.map((i) => i.name)).toEqual(['once']);
  });

  it.each([
    [
      'no disk.raw in the tar',
      () => gceArchive(dir, 4 * MiB, 'disk.img'),
      /does not contain a file named disk\.raw/,
    ],
    [
      'not gzip data',
      () => Promise.resolve(Buffer.from('plain text, no gzip')),
      /not gzip-compressed tar data/,
    ],
  ])('fails the image when the archive has %s: FAILED, the operation says why', async (_what, make, why) => {
    await putObject(storage, BUCKET, 'bad.tar.gz', await make());
    const [op] = await images.insert({
      project: project(),
      imageResource: { name: 'bad', rawDisk: { source: `gs://${BUCKET}/bad.tar.gz` } },
    });
    const done = await waitDone((op.latestResponse as Operation & { name: string }).name);
    expect(done.status).toBe('DONE');
    expect(done.httpErrorStatusCode).toBe(400);
    expect(done.error?.errors?.[0]).toMatchObject({
      code: 'INVALID_IMAGE_FILE',
      message: expect.stringMatching(why),
    });
    expect((await settled(images, project(), 'bad')).status).toBe('FAILED');
  });

  it('refuses at once what Compute Engine refuses at once (400): a bad name, a source outside Cloud Storage, a bad request id', async () => {
    for (const [call, message] of [
      [() => insert('Not_RFC1035'), /Invalid value for field 'resource\.name': 'Not_RFC1035'/],
      [() => insert('x', { rawDisk: { source: 'https://example.org/disk.tar.gz' } }), /rawDisk\.source/],
      [
        () => insert('x', { rawDisk: { source: 'gs://no-such-bucket/disk.tar.gz' } }),
        /no-such-bucket' does not exist/,
      ],
      [() => insert('x', { labels: { Channel: 'cloud' } }), /Label key must start with a lowercase letter/],
      [() => insert('x', {}, 'not-a-uuid'), /request ID must be a valid UUID/],
    ] as const) {
      const err = await rejection(call());
      expect(err.httpStatusCode).toBe(400);
      expect(err.message).toMatch(message);
    }
    expect((await images.list({ project: project() }))[0]).toEqual([]);
  });

  it("ends the image FAILED for an image-failed fault, with the rule's code", async () => {
    emu.addFault({
      service: 'compute',
      operation: 'images.insert',
      kind: 'image-failed',
      code: 'QUOTA_EXCEEDED',
    });
    const done = await waitDone((await insert('unlucky')).name);
    expect(done.error?.errors?.[0]?.code).toBe('QUOTA_EXCEEDED');
    expect((await images.get({ project: project(), image: 'unlucky' }))[0].status).toBe('FAILED');
  });
});

describe('images: list, family, deprecate, labels, IAM, delete', () => {
  async function ready(...names: string[]) {
    for (const name of names)
      await waitDone((await insert(name, { family: 'fam', labels: { release: name } })).name);
  }

  it('lists in pages (the client follows nextPageToken) and filters as Compute Engine does', async () => {
    await ready('img-a', 'img-b', 'img-c');
    emu.clearCalls();
    const [all] = await images.list({ project: project() });
    expect(all.map((i) => i.name)).toEqual(['img-a', 'img-b', 'img-c']);
    expect(emu.calls().filter((c) => c.operation === 'images.list')).toHaveLength(2); // pages of 2
    const filtered = async (filter: string) =>
      (await images.list({ project: project(), filter }))[0].map((i) => i.name);
    expect(await filtered('labels.release = img-b')).toEqual(['img-b']);
    expect(await filtered('(family = fam) (name != img-a)')).toEqual(['img-b', 'img-c']);
    expect(await filtered('name eq img-[ab] OR name = img-c')).toEqual(['img-a', 'img-b', 'img-c']);
    // What gcloud sends for --filter=family=fam: a quoted regex whose backslashes are the regex's.
    expect(await filtered('family eq ".*\\bfam\\b.*"')).toEqual(['img-a', 'img-b', 'img-c']);
    expect(await filtered('family eq ".*\\bfa\\b.*"')).toEqual([]);
    const err = await rejection(images.list({ project: project(), filter: 'name = (' }));
    expect(err.httpStatusCode).toBe(400);
  });

  it('gives the newest image of a family that is not deprecated; deprecation names the replacement', async () => {
    await ready('old', 'new');
    expect((await images.getFromFamily({ project: project(), family: 'fam' }))[0].name).toBe('new');
    const [newImage] = await images.get({ project: project(), image: 'new' });
    const [op] = await images.deprecate({
      project: project(),
      image: 'new',
      deprecationStatusResource: { state: 'DEPRECATED', replacement: newImage.selfLink! },
    });
    expect((op.latestResponse as Operation).status).toBe('DONE');
    expect((await images.getFromFamily({ project: project(), family: 'fam' }))[0].name).toBe('old');
    expect((await images.get({ project: project(), image: 'new' }))[0].deprecated).toMatchObject({
      state: 'DEPRECATED',
      replacement: newImage.selfLink,
    });
    await images.deprecate({
      project: project(),
      image: 'new',
      deprecationStatusResource: { state: 'ACTIVE' },
    });
    expect((await images.getFromFamily({ project: project(), family: 'fam' }))[0].name).toBe('new');
    const err = await rejection(images.getFromFamily({ project: project(), family: 'none' }));
    expect(err.httpStatusCode).toBe(404);
  });

  it('sets labels only with the current fingerprint (412 for a stale one)', async () => {
    await ready('lbl');
    const [image] = await images.get({ project: project(), image: 'lbl' });
    await images.setLabels({
      project: project(),
      resource: 'lbl',
      globalSetLabelsRequestResource: { labels: { a: 'b' }, labelFingerprint: image.labelFingerprint },
    });
    const [after] = await images.get({ project: project(), image: 'lbl' });
    expect(after.labels).toEqual({ a: 'b' });
    expect(after.labelFingerprint).not.toBe(image.labelFingerprint);
    const err = await rejection(
      images.setLabels({
        project: project(),
        resource: 'lbl',
        globalSetLabelsRequestResource: { labels: { c: 'd' }, labelFingerprint: image.labelFingerprint },
      }),
    );
    expect(err.httpStatusCode).toBe(412);
  });

  it('keeps an IAM policy per image: read-modify-write with its etag, 409 for a stale one', async () => {
    await ready('shared');
    const [empty] = await images.getIamPolicy({ project: project(), resource: 'shared' });
    expect(empty.bindings ?? []).toEqual([]);
    const bindings = [{ role: 'roles/compute.imageUser', members: ['allAuthenticatedUsers'] }];
    const [set] = await images.setIamPolicy({
      project: project(),
      resource: 'shared',
      globalSetPolicyRequestResource: { policy: { bindings, etag: empty.etag } },
    });
    const plain = (bs: typeof set.bindings) => (bs ?? []).map((b) => ({ role: b.role, members: b.members }));
    expect(plain(set.bindings)).toEqual(bindings);
    expect(set.etag).not.toBe(empty.etag);
    const [read] = await images.getIamPolicy({ project: project(), resource: 'shared' });
    expect(plain(read.bindings)).toEqual(bindings);
    const err = await rejection(
      images.setIamPolicy({
        project: project(),
        resource: 'shared',
        globalSetPolicyRequestResource: { policy: { bindings: [], etag: empty.etag } },
      }),
    );
    expect(err.httpStatusCode).toBe(409);
  });

  it("deletes an image; a missing one is 404 in Compute Engine's words", async () => {
    await ready('gone');
    const [op] = await images.delete({ project: project(), image: 'gone' });
    expect((op.latestResponse as Operation).operationType).toBe('delete');
    const err = await rejection(images.get({ project: project(), image: 'gone' }));
    expect(err.httpStatusCode).toBe(404);
    expect(err.message).toBe(`The resource 'projects/${project()}/global/images/gone' was not found`);
  });
});

describe('project, tokens and faults', () => {
  it('serves the project, and 404 for another', async () => {
    const [p] = await projects.get({ project: project() });
    expect(p).toMatchObject({ kind: 'compute#project', name: project() });
    const err = await rejection(projects.get({ project: 'someone-else' }));
    expect(err.httpStatusCode).toBe(404);
  });

  it('refuses a call without a token issued by it (401)', async () => {
    const url = `${emu.endpoints.compute}/compute/v1/projects/${project()}/global/images`;
    expect((await fetch(url)).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer ya29.forged' } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: `Bearer ${emu.accessToken()}` } })).status).toBe(
      200,
    );
  });

  it('answers an access-denied fault naming the permission and the resource', async () => {
    emu.addFault({ service: 'compute', operation: 'images.get', kind: 'access-denied', times: 1 });
    const err = await rejection(images.get({ project: project(), image: 'x' }));
    expect(err.httpStatusCode).toBe(403);
    expect(err.message).toBe(
      `Required 'compute.images.get' permission for 'projects/${project()}/global/images/x'`,
    );
  });
});
