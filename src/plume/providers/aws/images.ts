import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CopyImageCommand,
  CreateTagsCommand,
  DeleteSnapshotCommand,
  DeregisterImageCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EnableImageDeprecationCommand,
  ModifyImageAttributeCommand,
  ModifySnapshotAttributeCommand,
  RegisterImageCommand,
  type Image,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { PlumeError } from '../../../shared/errors.js';
import { delayFor } from '../../../shared/retry.js';
import type { Visibility } from '../../plan.js';
import type { AwsImage } from './settings.js';
import { codeOf, send, type AwsClients } from './clients.js';

/** How long and how often to wait for AWS's asynchronous states. */
export interface WaitSettings {
  pollMinMs: number;
  pollMaxMs: number;
  imageTimeoutMs: number;
  snapshotTimeoutMs: number;
}

export const DEFAULT_WAIT: WaitSettings = {
  pollMinMs: 5_000,
  pollMaxMs: 30_000,
  imageTimeoutMs: 90 * 60_000,
  snapshotTimeoutMs: 60 * 60_000,
};

/** A wait as a person reads it: "90 min", "45 s". */
function duration(ms: number): string {
  return ms >= 60_000 ? `${Math.round(ms / 60_000)} min` : `${Math.round(ms / 1000)} s`;
}

/** AWS refuses a deprecation time in the past or too close: "now" is asked for this far ahead. */
export const DEPRECATION_LEAD_MS = 2 * 60_000;

export const TAG_RELEASE = 'plume:release';
export const TAG_SOURCE = 'plume:source-sha256';
export const TAG_VARIANT = 'plume:volume-type';
/** On the uploaded disk once CompleteSnapshot succeeded: the source sha256 whose blocks it holds. */
export const TAG_UPLOADED = 'plume:uploaded';
/**
 * `OWNER UNTIL`: the run writing the snapshot and until when (epoch ms) it holds it; renewed while it
 * uploads. Another run (here or on another machine) leaves a snapshot under a live lease alone.
 */
export const TAG_LEASE = 'plume:lease';

export function toTags(tags: Record<string, string>) {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

export function tagMap(tags: { Key?: string; Value?: string }[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
}

/** A ClientToken derived from what the call means, so an SDK retry after a lost response is a no-op. */
export function clientToken(...parts: (string | number)[]): string {
  return createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 64);
}

export function rootSnapshotId(image: Image): string | undefined {
  const root =
    image.BlockDeviceMappings?.find((m) => m.DeviceName === image.RootDeviceName) ??
    image.BlockDeviceMappings?.[0];
  return root?.Ebs?.SnapshotId;
}

/** Our images in a region with any of these names, grouped by name (AWS keeps names unique; we still check). */
export async function findImagesByName(
  clients: AwsClients,
  region: string,
  names: string[],
  signal?: AbortSignal,
): Promise<Map<string, Image[]>> {
  const out = new Map<string, Image[]>();
  if (names.length === 0) return out;
  const res = await send(
    clients,
    'ec2:DescribeImages',
    region,
    (o) =>
      clients
        .ec2(region)
        .send(new DescribeImagesCommand({ Owners: ['self'], Filters: [{ Name: 'name', Values: names }] }), o),
    signal,
  );
  for (const image of res.Images ?? []) {
    const list = out.get(image.Name ?? '') ?? [];
    list.push(image);
    out.set(image.Name ?? '', list);
  }
  return out;
}

export async function describeImage(
  clients: AwsClients,
  region: string,
  id: string,
  signal?: AbortSignal,
): Promise<Image | undefined> {
  try {
    const res = await send(
      clients,
      'ec2:DescribeImages',
      region,
      (o) => clients.ec2(region).send(new DescribeImagesCommand({ ImageIds: [id] }), o),
      signal,
    );
    return res.Images?.[0];
  } catch (err) {
    if (codeOf(err) === 'InvalidAMIID.NotFound' || codeOf(err) === 'InvalidAMIID.Unavailable')
      return undefined;
    throw err;
  }
}

export async function findSnapshotsByTag(
  clients: AwsClients,
  region: string,
  key: string,
  value: string,
  signal?: AbortSignal,
): Promise<Snapshot[]> {
  const res = await send(
    clients,
    'ec2:DescribeSnapshots',
    region,
    (o) =>
      clients.ec2(region).send(
        new DescribeSnapshotsCommand({
          OwnerIds: ['self'],
          Filters: [{ Name: `tag:${key}`, Values: [value] }],
        }),
        o,
      ),
    signal,
  );
  return res.Snapshots ?? [];
}

export async function deleteSnapshot(
  clients: AwsClients,
  region: string,
  id: string,
  signal?: AbortSignal,
): Promise<void> {
  try {
    await send(
      clients,
      'ec2:DeleteSnapshot',
      region,
      (o) => clients.ec2(region).send(new DeleteSnapshotCommand({ SnapshotId: id }), o),
      signal,
    );
  } catch (err) {
    if (codeOf(err) !== 'InvalidSnapshot.NotFound') throw err;
  }
}

export interface RegisterSpec {
  name: string;
  description: string;
  snapshotId: string;
  volumeType: string;
  volumeGiB: number;
  settings: AwsImage;
  tags: Record<string, string>;
}

/** Register an image, or return the one a previous run registered under the same name. */
export async function registerImage(
  clients: AwsClients,
  region: string,
  spec: RegisterSpec,
  signal?: AbortSignal,
): Promise<{ id: string; reused: boolean }> {
  const s = spec.settings;
  try {
    const res = await send(
      clients,
      'ec2:RegisterImage',
      region,
      (o) =>
        clients.ec2(region).send(
          new RegisterImageCommand({
            Name: spec.name,
            Description: spec.description,
            Architecture: s.architecture,
            VirtualizationType: 'hvm',
            RootDeviceName: s.rootDeviceName,
            EnaSupport: s.enaSupport,
            SriovNetSupport: s.sriovNetSupport,
            BootMode: s.bootMode,
            ImdsSupport: s.imdsSupport,
            TpmSupport: s.tpmSupport,
            BlockDeviceMappings: [
              {
                DeviceName: s.rootDeviceName,
                Ebs: {
                  SnapshotId: spec.snapshotId,
                  VolumeType: spec.volumeType as 'gp3',
                  VolumeSize: spec.volumeGiB,
                  DeleteOnTermination: true,
                },
              },
            ],
            TagSpecifications: [{ ResourceType: 'image', Tags: toTags(spec.tags) }],
          }),
          o,
        ),
      signal,
    );
    return { id: res.ImageId!, reused: false };
  } catch (err) {
    if (codeOf(err) !== 'InvalidAMIName.Duplicate') throw err;
    const existing = (await findImagesByName(clients, region, [spec.name], signal)).get(spec.name)?.[0];
    if (!existing?.ImageId) throw err;
    return { id: existing.ImageId, reused: true };
  }
}

export async function copyImage(
  clients: AwsClients,
  from: { region: string; id: string },
  region: string,
  name: string,
  description: string,
  token: string,
  signal?: AbortSignal,
): Promise<{ id: string; reused: boolean }> {
  try {
    const res = await send(
      clients,
      'ec2:CopyImage',
      region,
      (o) =>
        clients.ec2(region).send(
          new CopyImageCommand({
            SourceRegion: from.region,
            SourceImageId: from.id,
            Name: name,
            Description: description,
            ClientToken: token,
          }),
          o,
        ),
      signal,
    );
    return { id: res.ImageId!, reused: false };
  } catch (err) {
    if (codeOf(err) !== 'InvalidAMIName.Duplicate') throw err;
    const existing = (await findImagesByName(clients, region, [name], signal)).get(name)?.[0];
    if (!existing?.ImageId) throw err;
    return { id: existing.ImageId, reused: true };
  }
}

/**
 * Poll an asynchronous AWS state with backoff until `check` says it is done (returns a value) or failed
 * (throws); past the deadline, a clear error naming what was awaited and its last state.
 */
async function pollUntil<T>(
  what: string,
  goal: string,
  timeoutMs: number,
  wait: WaitSettings,
  signal: AbortSignal | undefined,
  check: () => Promise<{ done?: T; state?: string }>,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  // Polling, not retrying: from poll_min_ms, 1.5 times longer each time up to poll_max_ms, no jitter.
  const pace = { baseMs: wait.pollMinMs, maxMs: wait.pollMaxMs, factor: 1.5, jitter: 0 };
  for (let poll = 1; ; poll++) {
    const delay = delayFor(poll, pace);
    const { done, state } = await check();
    if (done !== undefined) return done;
    if (Date.now() + delay > deadline)
      throw new PlumeError(
        'provider',
        `${what} was not ${goal} after ${duration(timeoutMs)} (state ${state ?? 'not found'})`,
        'run again later to resume',
      );
    await sleep(delay, undefined, { signal });
  }
}

/** Poll until the image is available; a `failed` image or the deadline is an error naming the region. */
export function waitImageAvailable(
  clients: AwsClients,
  region: string,
  id: string,
  wait: WaitSettings,
  signal?: AbortSignal,
): Promise<Image> {
  return pollUntil(`image ${id} in ${region}`, 'available', wait.imageTimeoutMs, wait, signal, async () => {
    const image = await describeImage(clients, region, id, signal);
    if (image?.State === 'available') return { done: image };
    if (
      image?.State === 'failed' ||
      image?.State === 'invalid' ||
      image?.State === 'error' ||
      image?.State === 'deregistered'
    )
      throw new PlumeError(
        'provider',
        `image ${id} in ${region} is ${image.State}${image.StateReason?.Message ? `: ${image.StateReason.Message}` : ''}`,
        'it will be copied again on the next run',
      );
    return { state: image?.State };
  });
}

export function waitSnapshotCompleted(
  clients: AwsClients,
  region: string,
  id: string,
  wait: WaitSettings,
  signal?: AbortSignal,
): Promise<Snapshot> {
  return pollUntil(
    `snapshot ${id} in ${region}`,
    'completed',
    wait.snapshotTimeoutMs,
    wait,
    signal,
    async () => {
      const res = await send(
        clients,
        'ec2:DescribeSnapshots',
        region,
        (o) => clients.ec2(region).send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }), o),
        signal,
      );
      const snap = res.Snapshots?.[0];
      if (snap?.State === 'completed') return { done: snap };
      if (snap?.State === 'error')
        throw new PlumeError(
          'provider',
          `snapshot ${id} in ${region} failed: ${snap.StateMessage ?? 'no reason given'}`,
          'run again to upload it anew',
        );
      return { state: snap?.State };
    },
  );
}

export async function createTags(
  clients: AwsClients,
  region: string,
  ids: string[],
  tags: Record<string, string>,
  signal?: AbortSignal,
): Promise<void> {
  if (ids.length === 0) return;
  await send(
    clients,
    'ec2:CreateTags',
    region,
    (o) => clients.ec2(region).send(new CreateTagsCommand({ Resources: ids, Tags: toTags(tags) }), o),
    signal,
  );
}

/** Grant launch permission on the image and create-volume permission on its snapshot. Idempotent. */
export async function publishImage(
  clients: AwsClients,
  region: string,
  image: Image,
  visibility: Visibility,
  deprecateAt: string | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const ec2 = clients.ec2(region);
  const id = image.ImageId!;
  const groups = visibility.public ? [{ Group: 'all' as const }] : [];
  const users = visibility.accounts.map((UserId) => ({ UserId }));
  const snapshotId = rootSnapshotId(image);
  if (groups.length + users.length > 0) {
    await send(
      clients,
      'ec2:ModifyImageAttribute',
      region,
      (o) =>
        ec2.send(
          new ModifyImageAttributeCommand({ ImageId: id, LaunchPermission: { Add: [...groups, ...users] } }),
          o,
        ),
      signal,
    );
    if (snapshotId) {
      // The snapshot must be readable too, or the public image cannot be launched in other accounts.
      if (visibility.public)
        await send(
          clients,
          'ec2:ModifySnapshotAttribute',
          region,
          (o) =>
            ec2.send(
              new ModifySnapshotAttributeCommand({
                SnapshotId: snapshotId,
                Attribute: 'createVolumePermission',
                OperationType: 'add',
                GroupNames: ['all'],
              }),
              o,
            ),
          signal,
        );
      if (visibility.accounts.length > 0)
        await send(
          clients,
          'ec2:ModifySnapshotAttribute',
          region,
          (o) =>
            ec2.send(
              new ModifySnapshotAttributeCommand({
                SnapshotId: snapshotId,
                Attribute: 'createVolumePermission',
                OperationType: 'add',
                UserIds: visibility.accounts,
              }),
              o,
            ),
          signal,
        );
    }
  }
  if (deprecateAt) {
    // AWS refuses a time in the past, which a release of an older compose (or a retry days later)
    // reaches: the image is then past its planned life, so deprecate it as soon as AWS allows.
    const soonest = Date.now() + DEPRECATION_LEAD_MS;
    const at = new Date(Math.max(Date.parse(deprecateAt), soonest));
    await send(
      clients,
      'ec2:EnableImageDeprecation',
      region,
      (o) => ec2.send(new EnableImageDeprecationCommand({ ImageId: id, DeprecateAt: at }), o),
      signal,
    );
  }
}

/** Remove an image and the snapshot behind it (a copy's snapshot belongs to it alone). */
export async function deregisterImage(
  clients: AwsClients,
  region: string,
  image: Image,
  deleteSnapshot_: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const snapshotId = rootSnapshotId(image);
  try {
    await send(
      clients,
      'ec2:DeregisterImage',
      region,
      (o) => clients.ec2(region).send(new DeregisterImageCommand({ ImageId: image.ImageId! }), o),
      signal,
    );
  } catch (err) {
    if (codeOf(err) !== 'InvalidAMIID.NotFound' && codeOf(err) !== 'InvalidAMIID.Unavailable') throw err;
  }
  if (deleteSnapshot_ && snapshotId) await deleteSnapshot(clients, region, snapshotId, signal);
}
