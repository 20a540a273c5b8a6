import { readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImagesClient } from '@google-cloud/compute';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runCli, startCli, startWorld, fedoraCloudArgs, GCP_BUCKET, type World } from '../support/world.js';
import { keyFileAuth } from '../emulator/gcp-helpers.js';

/**
 * GCE as the second provider, against the Google Cloud emulator (Compute Engine's and Cloud Storage's real
 * REST shapes, driven by Google's own clients): one release to AWS and GCE from a compose holding both
 * files, resumed after kill -9 at the upload and at the image's creation, and a family whose older images
 * are deprecated as newer ones are published.
 */

const REGIONS = ['us-east-1', 'eu-west-1'];
const MiB = 2 ** 20;
let world: World;
let images: ImagesClient;

beforeAll(async () => {
  world = await startWorld({ regions: REGIONS, gcp: true });
  images = new ImagesClient({
    ...world.gcp!.endpoints.computeClient,
    authClient: keyFileAuth(world.gcp!.keyFilePath),
  });
});
afterAll(async () => {
  await images?.close();
  await world?.close();
});

const project = () => world.gcp!.project;
/**
 * The emulator's calls since the last clearCalls(). A call a kill test held is answered a minute later,
 * whatever test runs then: it started before the clearing, and is not this test's.
 */
let clearedAt = 0;
function clearCalls(): void {
  clearedAt = Date.now();
  world.gcp!.clearCalls();
}
const callsSince = () => world.gcp!.calls().filter((c) => c.at >= clearedAt);
const gcpCalls = (operation: string) => callsSince().filter((c) => c.operation === operation);

async function listImages() {
  const [all] = await images.list({ project: project() });
  return all;
}

async function objects(): Promise<string[]> {
  const res = await fetch(`${world.gcp!.endpoints.storage}/storage/v1/b/${GCP_BUCKET}/o`, {
    headers: { authorization: `Bearer ${world.gcp!.accessToken()}` },
  });
  const body = (await res.json()) as { items?: { name: string }[] };
  return (body.items ?? []).map((o) => o.name);
}

describe('a release to AWS and GCE from one compose', () => {
  it('publishes both, each from its own file; the GCE image is READY, public, in its family', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241001',
      label: 'RC-1.4',
      // A labelled compose names its builds after the label, as Fedora's do.
      buildName: (arch) => `Fedora-Cloud-Base-41-1.4.${arch}`,
      rawSize: 24 * MiB,
      gce: true,
    });
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,gcp', '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(Object.keys(record.targets)).toEqual(['aws', 'gcp']);
    expect(record.targets.aws.status).toBe('complete');
    expect(record.targets.aws.images).toHaveLength(REGIONS.length * 2);
    const gcp = record.targets.gcp;
    expect(gcp).toMatchObject({ status: 'complete', provider: 'gcp', primaryLocation: 'global' });
    expect(gcp.source.url).toMatch(/Fedora-Cloud-Base-GCE-41-1\.4\.x86_64\.tar\.gz$/);
    expect(gcp.images).toEqual([
      {
        location: 'global',
        variant: 'image',
        name: 'fedora-cloud-41-1-4-x86-64',
        id: `projects/${project()}/global/images/fedora-cloud-41-1-4-x86-64`,
      },
    ]);

    const [image] = await images.get({ project: project(), image: 'fedora-cloud-41-1-4-x86-64' });
    expect(image).toMatchObject({
      status: 'READY',
      family: 'fedora-cloud-41',
      architecture: 'X86_64',
      storageLocations: ['us'],
      diskSizeGb: '1',
    });
    expect(image.labels).toMatchObject({
      channel: 'cloud',
      version: '41',
      composeid: compose.composeId.toLowerCase().replace(/\./g, '-'),
    });
    expect(image.guestOsFeatures?.map((f) => f.type)).toContain('UEFI_COMPATIBLE');
    const [policy] = await images.getIamPolicy({ project: project(), resource: image.name! });
    expect(policy.bindings).toEqual([
      expect.objectContaining({ role: 'roles/compute.imageUser', members: ['allAuthenticatedUsers'] }),
    ]);
    // The archive went up whole, in 1 MiB requests, and was deleted once the image existed.
    const archive = compose.gce.x86_64!;
    expect(gcp.upload.bytesSent).toBe(statSync(join(compose.root, compose.composePath, archive.path)).size);
    expect(gcp.source.rawBytes).toBe(24 * MiB);
    expect(await objects()).toEqual([]);

    // Run again: nothing is created on either provider.
    clearCalls();
    const registered = world.emulator.calls().filter((c) => c.operation === 'RegisterImage').length;
    const again = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,gcp'],
      world.env,
    );
    expect(again.code, again.stderr).toBe(0);
    expect(gcpCalls('images.insert')).toEqual([]);
    expect(gcpCalls('objects.insert')).toEqual([]);
    expect(world.emulator.calls().filter((c) => c.operation === 'RegisterImage')).toHaveLength(registered);
    expect((await listImages()).map((i) => i.name)).toEqual(['fedora-cloud-41-1-4-x86-64']);
  });

  it('--dry-run shows the GCE target beside the AWS one and changes nothing', async () => {
    const compose = await world.compose({ version: '41', date: '20241002', rawSize: 8 * MiB, gce: true });
    clearCalls();
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,gcp', '--dry-run'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain('target gcp (gcp)');
    expect(res.stdout).toContain(
      `gcp:         project ${project()}, staged in gs://${GCP_BUCKET}, data in us`,
    );
    expect(res.stdout).toContain('image:       X86_64, family fedora-cloud-41');
    expect(callsSince().filter((c) => !c.operation.startsWith('token'))).toEqual([]);
  });

  it('a compose without the GCE file publishes to AWS and says why GCE was left out', async () => {
    const compose = await world.compose({ version: '41', date: '20241003', rawSize: 8 * MiB });
    const res = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'aws,gcp', '--output', 'json'],
      world.env,
    );
    expect(res.code, res.stderr).toBe(0);
    const record = JSON.parse(res.stdout);
    expect(Object.keys(record.targets)).toEqual(['aws']);
    expect(record.skipped).toEqual([
      { provider: 'gcp', reason: expect.stringContaining('has no Cloud-Base GCE tar.gz image for x86_64') },
    ]);
    expect(res.stderr).toContain('not publishing to gcp');
  });
});

describe('killed and run again', () => {
  it('mid-insert: the release finishes, with one image and no archive left behind', async () => {
    const compose = await world.compose({
      version: '41',
      date: '20241005',
      rawSize: 16 * MiB,
      dataFraction: 0.5,
      gce: true,
    });
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp'];
    // Hold the call long enough to kill the process in it.
    const id = world.gcp!.addFault({
      service: 'compute',
      operation: 'images.insert',
      kind: 'latency',
      latencyMs: 60_000,
    });
    const run = startCli('plume', args, world.env);
    await firedOnce(id);
    run.child.kill('SIGKILL');
    await run.done;
    world.gcp!.removeFault(id);

    const again = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    const name = JSON.parse(again.stdout).targets.gcp.images[0].name as string;
    const named = (await listImages()).filter((i) => i.name === name);
    expect(named).toHaveLength(1);
    expect(named[0]!.status).toBe('READY');
    expect(await objects()).toEqual([]);
  });
});

/** Wait until a fault rule held its call (the call log has a call only once it is answered). */
async function firedOnce(id: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!world.gcp!.faultStats().find((f) => f.id === id)?.fired && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  expect(world.gcp!.faultStats().find((f) => f.id === id)?.fired).toBe(1);
}

describe('killed mid-upload and run again', () => {
  /** The saved upload sessions in the state database (where the session URI is kept, and only there). */
  function savedSessions(): { uri: string; object: string; created_at: number }[] {
    const db = new Database(world.statePath, { readonly: true });
    try {
      return db.prepare('SELECT uri, object, created_at FROM upload_sessions').all() as {
        uri: string;
        object: string;
        created_at: number;
      }[];
    } finally {
      db.close();
    }
  }

  /**
   * Start a release of a fresh compose and kill -9 it while it sends the archive's third 1 MiB chunk (held
   * by the emulator), so the session holds the first two; returns what the next run needs.
   */
  async function killMidUpload(date: string) {
    const compose = await world.compose({
      version: '41',
      date,
      rawSize: 16 * MiB,
      dataFraction: 0.5,
      gce: true,
    });
    const archive = compose.gce.x86_64!;
    const size = statSync(join(compose.root, compose.composePath, archive.path)).size;
    const objectName = archive.path.split('/').pop()!;
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp'];
    const id = world.gcp!.addFault({
      service: 'storage',
      operation: 'objects.insert.chunk',
      kind: 'latency',
      latencyMs: 60_000,
      skip: 2,
    });
    const run = startCli('plume', args, world.env);
    await firedOnce(id);
    run.child.kill('SIGKILL');
    const killed = await run.done;
    world.gcp!.removeFault(id);
    const session = () => world.gcp!.uploads().filter((u) => u.name.endsWith(`/${objectName}`));
    expect(session().map((u) => u.persisted)).toEqual([2 * MiB]);
    const saved = savedSessions().filter((s) => s.object.endsWith(`/${objectName}`));
    expect(saved).toHaveLength(1);
    return { args, size, session, saved: saved[0]!, killed, objectName };
  }

  /** What a finished release must leave: one READY image of the release, no archive, no saved session. */
  async function finished(stdout: string, object: string): Promise<void> {
    const name = JSON.parse(stdout).targets.gcp.images[0].name as string;
    const named = (await listImages()).filter((i) => i.name === name);
    expect(named).toHaveLength(1);
    expect(named[0]!.status).toBe('READY');
    expect(await objects()).toEqual([]);
    expect(savedSessions().filter((s) => s.object.endsWith(`/${object}`))).toEqual([]);
  }

  it('the next run sends only the rest of the archive, and the session URI is never printed', async () => {
    const { args, size, session, saved, killed, objectName } = await killMidUpload('20241004');
    clearCalls();
    const again = await runCli('plume', [...args, '--output', 'json', '--verbose'], world.env);
    expect(again.code, again.stderr).toBe(0);
    // No new session: the one the killed run left got the rest, from where it stood, and nothing before.
    expect(gcpCalls('objects.insert')).toEqual([]);
    const [upload] = session();
    expect(upload!.complete).toBe(true);
    const resent = upload!.received.filter((r) => r.at >= clearedAt);
    expect(Math.min(...resent.map((r) => r.start))).toBe(2 * MiB);
    expect(resent.reduce((n, r) => n + r.bytes, 0)).toBe(size - 2 * MiB);
    const record = JSON.parse(again.stdout);
    expect(record.targets.gcp.upload.bytesSent).toBe(size - 2 * MiB);
    expect(again.stderr).toContain('resuming the upload a previous run left');
    await finished(again.stdout, objectName);
    // A bearer capability: in the state database only, never in what plume printed or logged.
    const uploadId = new URL(saved.uri).searchParams.get('upload_id')!;
    expect(uploadId.length).toBeGreaterThan(20);
    for (const out of [killed.stdout, killed.stderr, again.stdout, again.stderr])
      expect(out).not.toContain(uploadId);
  });

  it('a session Cloud Storage no longer knows (cancelled) means a fresh upload from byte 0', async () => {
    const { args, size, saved, objectName } = await killMidUpload('20241010');
    // Cancelled as GCS documents it: DELETE of the session URI answers 499, and the session is gone.
    const cancel = await fetch(saved.uri, { method: 'DELETE' });
    expect(cancel.status).toBe(499);
    clearCalls();
    const again = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(gcpCalls('objects.insert')).toHaveLength(1);
    const fresh = world.gcp!.uploads().filter((u) => u.received.some((r) => r.at >= clearedAt));
    expect(fresh).toHaveLength(1);
    expect(fresh[0]!.received[0]!.start).toBe(0);
    expect(JSON.parse(again.stdout).targets.gcp.upload.bytesSent).toBe(size);
    await finished(again.stdout, objectName);
  });

  it('a session older than Cloud Storage keeps one is not resumed: a fresh upload', async () => {
    const { args, size, session, objectName } = await killMidUpload('20241011');
    const db = new Database(world.statePath);
    db.prepare('UPDATE upload_sessions SET created_at = ?').run(Date.now() - 8 * 24 * 3600 * 1000);
    db.close();
    clearCalls();
    const again = await runCli('plume', [...args, '--output', 'json'], world.env);
    expect(again.code, again.stderr).toBe(0);
    expect(gcpCalls('objects.insert')).toHaveLength(1);
    // The old session was cancelled (so its bytes do not linger), and a new one got everything from 0.
    const [old, fresh] = session();
    expect(old!.cancelled).toBe(true);
    expect(fresh!.received[0]!.start).toBe(0);
    expect(fresh!.complete).toBe(true);
    expect(JSON.parse(again.stdout).targets.gcp.upload.bytesSent).toBe(size);
    await finished(again.stdout, objectName);
  });
});

describe('pre-release, then release', () => {
  it('keeps the image private until the release makes it public', async () => {
    const compose = await world.compose({ version: '41', date: '20241007', rawSize: 4 * MiB, gce: true });
    const users = async (name: string) =>
      (await images.getIamPolicy({ project: project(), resource: name }))[0].bindings?.find(
        (b) => b.role === 'roles/compute.imageUser',
      )?.members ?? [];
    const pre = await runCli(
      'plume',
      [
        ...fedoraCloudArgs(world, compose.url, { verb: 'pre-release' }),
        '--platform',
        'gcp',
        '--output',
        'json',
      ],
      world.env,
    );
    expect(pre.code, pre.stderr).toBe(0);
    const name = JSON.parse(pre.stdout).targets.gcp.images[0].name as string;
    expect((await images.get({ project: project(), image: name }))[0].status).toBe('READY');
    expect(await users(name)).toEqual([]);
    clearCalls();
    const rel = await runCli(
      'plume',
      [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp', '--output', 'json'],
      world.env,
    );
    expect(rel.code, rel.stderr).toBe(0);
    expect(gcpCalls('images.insert')).toEqual([]);
    expect(await users(name)).toEqual(['allAuthenticatedUsers']);
  });
});

describe('faults', () => {
  it('retries what Google throttles, fails with 5xx or drops, and publishes once', async () => {
    const compose = await world.compose({ version: '41', date: '20241006', rawSize: 8 * MiB, gce: true });
    const gcp = world.gcp!;
    const ids = [
      gcp.addFault({ service: 'compute', operation: 'images.insert', kind: 'throttle', times: 1 }),
      gcp.addFault({
        service: 'storage',
        operation: 'objects.insert.chunk',
        kind: 'server-error',
        // The second 1 MiB request (a new session is known to be empty: no status query comes first).
        skip: 1,
        times: 1,
      }),
      gcp.addFault({ service: 'compute', operation: 'globalOperations.wait', kind: 'drop', times: 1 }),
      gcp.addFault({ service: 'compute', operation: 'images.setIamPolicy', kind: 'server-error', times: 1 }),
    ];
    try {
      const res = await runCli(
        'plume',
        [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp', '--output', 'json'],
        world.env,
      );
      expect(res.code, res.stderr).toBe(0);
      const name = JSON.parse(res.stdout).targets.gcp.images[0].name as string;
      expect(
        gcp
          .faultStats()
          .filter((f) => ids.includes(f.id))
          .map((f) => f.fired),
      ).toEqual([1, 1, 1, 1]);
      const [image] = await images.get({ project: project(), image: name });
      expect(image.status).toBe('READY');
      const [policy] = await images.getIamPolicy({ project: project(), resource: name });
      expect(policy.bindings?.[0]?.members).toEqual(['allAuthenticatedUsers']);
      expect((await listImages()).filter((i) => i.name === name)).toHaveLength(1);
    } finally {
      for (const id of ids) gcp.removeFault(id);
    }
  });
});

describe('a long image creation', () => {
  it('is waited for in one globalOperations.wait call, longer than the request timeout', async () => {
    // GCE holds wait until the operation is done (up to two minutes): its call must outlast a short timeout.
    const configPath = join(world.dir, 'plume-short-timeout.toml');
    writeFileSync(
      configPath,
      readFileSync(world.configPath, 'utf8').replace('[gcp]\n', '[gcp]\nrequest_timeout_seconds = 1\n'),
    );
    const compose = await world.compose({ version: '41', date: '20241009', rawSize: 4 * MiB, gce: true });
    world.gcp!.setPendingMs(4000);
    clearCalls();
    try {
      const res = await runCli(
        'plume',
        [...fedoraCloudArgs({ configPath }, compose.url), '--platform', 'gcp'],
        world.env,
      );
      expect(res.code, res.stderr).toBe(0);
    } finally {
      world.gcp!.setPendingMs(50);
    }
    const waits = gcpCalls('globalOperations.wait').filter((c) => c.durationMs > 1000);
    expect(waits).toHaveLength(1);
    expect(gcpCalls('globalOperations.wait').filter((c) => c.status !== 200)).toEqual([]);
  });
});

describe('an image GCE could not create', () => {
  it('fails the release, and the next run replaces the FAILED image with one that is READY', async () => {
    const compose = await world.compose({ version: '41', date: '20241008', rawSize: 4 * MiB, gce: true });
    const args = [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp', '--output', 'json'];
    const id = world.gcp!.addFault({
      service: 'compute',
      operation: 'images.insert',
      kind: 'image-failed',
      code: 'INVALID_IMAGE_FILE',
      times: 1,
    });
    const failed = await runCli('plume', args, world.env);
    world.gcp!.removeFault(id);
    expect(failed.code).not.toBe(0);
    expect(failed.stderr).toContain('INVALID_IMAGE_FILE');
    const again = await runCli('plume', args, world.env);
    expect(again.code, again.stderr).toBe(0);
    const name = JSON.parse(again.stdout).targets.gcp.images[0].name as string;
    const named = (await listImages()).filter((i) => i.name === name);
    expect(named.map((i) => i.status)).toEqual(['READY']);
    expect(await objects()).toEqual([]);
  });
});

describe('a family over three releases', () => {
  it("deprecates each image in favour of the next, as mantle's GCE release did", async () => {
    const names: string[] = [];
    for (const date of ['20241101', '20241108', '20241115']) {
      const compose = await world.compose({ version: '40', date, rawSize: 4 * MiB, gce: true });
      const res = await runCli(
        'plume',
        [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp', '--output', 'json'],
        world.env,
      );
      expect(res.code, res.stderr).toBe(0);
      names.push(JSON.parse(res.stdout).targets.gcp.images[0].name);
    }
    const family = (await listImages()).filter((i) => i.family === 'fedora-cloud-40');
    const byName = new Map(family.map((i) => [i.name, i]));
    expect(byName.get(names[0])?.deprecated).toMatchObject({
      state: 'DEPRECATED',
      replacement: expect.stringContaining(names[1]!),
    });
    expect(byName.get(names[1])?.deprecated).toMatchObject({
      state: 'DEPRECATED',
      replacement: expect.stringContaining(names[2]!),
    });
    expect(byName.get(names[2])?.deprecated?.state ?? 'ACTIVE').toBe('ACTIVE');
    const [latest] = await images.getFromFamily({ project: project(), family: 'fedora-cloud-40' });
    expect(latest.name).toBe(names[2]);
  });
});

describe('an archive too small to be an image', () => {
  it('is refused in one line before anything reaches Cloud Storage or Compute', async () => {
    await world.writeConfig('[images]\nmin_data_mib = 64');
    try {
      const compose = await world.compose({ version: '41', date: '20241120', rawSize: 16 * MiB, gce: true });
      clearCalls();
      const res = await runCli(
        'plume',
        [...fedoraCloudArgs(world, compose.url), '--platform', 'gcp'],
        world.env,
      );
      expect(res.code).toBe(1);
      expect(res.stderr).toMatch(
        /holds only [0-9.]+ MiB of data \(all zeros or empty\), less than the 64(\.0)? MiB an image must have; nothing was registered/,
      );
      expect(gcpCalls('images.insert')).toEqual([]);
      expect(callsSince().filter((c) => c.operation.startsWith('objects.insert'))).toEqual([]);
      expect(await objects()).toEqual([]);
    } finally {
      await world.writeConfig();
    }
  });
});
