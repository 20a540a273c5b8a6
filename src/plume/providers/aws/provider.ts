import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { DescribeRegionsCommand, type Image, type Snapshot } from '@aws-sdk/client-ec2';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import PQueue from 'p-queue';
import { PlumeError, errorMessage } from '../../../shared/errors.js';
import { mapSettled } from '../../../shared/concurrency.js';
import { locations, primaryImages, type TargetPlan } from '../../plan.js';
import type { DiskImage } from '../../source/image.js';
import type {
  DiskRef,
  ImageTarget,
  Problem,
  Provider,
  ProviderContext,
  PublishedImage,
  TargetOutcome,
  UploadSkipped,
  VerifyReport,
} from '../types.js';
import { AwsClients, DEFAULT_CLIENT_SETTINGS, send, type AwsClientSettings } from './clients.js';
import { uploadSnapshot } from './ebs-upload.js';
import {
  DEFAULT_WAIT,
  TAG_RELEASE,
  TAG_SOURCE,
  TAG_LEASE,
  TAG_UPLOADED,
  clientToken,
  copyImage,
  createTags,
  deleteSnapshot,
  deregisterImage,
  findImagesByName,
  findSnapshotsByTag,
  publishImage,
  registerImage,
  rootSnapshotId,
  waitImageAvailable,
  waitSnapshotCompleted,
  type WaitSettings,
} from './images.js';
import { KNOWN_REGIONS, checkRegions } from './regions.js';
import { awsImage } from './settings.js';
import { expectedTags, mergeReports, verifyRegion } from './verify.js';

export interface AwsProviderSettings {
  client: AwsClientSettings;
  wait: WaitSettings;
  /**
   * How long an upload's lease on its snapshot lasts unless renewed (every third of it). A second run of
   * the same release waits while it is live; a killed run's snapshot is removed once it lapses.
   */
  uploadLeaseMs?: number;
  /** PutSnapshotBlock requests in flight. */
  uploadConcurrency: number;
  /** CopyImage requests in flight (waiting for copies is not bounded: it is only polling). */
  copyConcurrency: number;
}

const LEASE_OWNER = `${hostname()}:${process.pid}`;

/** Who holds a live lease on a snapshot (its upload is running somewhere), or undefined. Pure but for the clock. */
export function leaseHolder(snap: Pick<Snapshot, 'Tags'>, now = Date.now()): string | undefined {
  const value = snap.Tags?.find((t) => t.Key === TAG_LEASE)?.Value;
  const m = value ? /^(\S+) (\d+)$/.exec(value) : null;
  if (!m || Number(m[2]) <= now || m[1] === LEASE_OWNER) return undefined;
  return m[1];
}

export const DEFAULT_AWS_SETTINGS: AwsProviderSettings = {
  client: DEFAULT_CLIENT_SETTINGS,
  wait: DEFAULT_WAIT,
  uploadConcurrency: 16,
  copyConcurrency: 10,
};

/** AWS: the disk is an EBS snapshot, an image is an AMI per region and root volume type. */
export class AwsProvider implements Provider {
  readonly name = 'aws';
  readonly clients: AwsClients;
  private readonly copyQueue: PQueue;
  /** Root volume size per release, learnt from the disk or the primary images, for verification. */
  private readonly volumeGiB = new Map<string, number>();

  constructor(
    readonly settings: AwsProviderSettings = DEFAULT_AWS_SETTINGS,
    clients?: AwsClients,
  ) {
    this.clients = clients ?? new AwsClients(settings.client);
    this.copyQueue = new PQueue({ concurrency: settings.copyConcurrency });
  }

  destroy(): void {
    this.clients.destroy();
  }

  private get leaseMs(): number {
    return this.settings.uploadLeaseMs ?? 30_000;
  }

  /** This run's lease on a snapshot it writes: who, and until when. */
  private lease(): string {
    return `${LEASE_OWNER} ${Date.now() + this.leaseMs}`;
  }

  async preflight(plan: TargetPlan, ctx: ProviderContext): Promise<{ account: string }> {
    const region = plan.primaryLocation;
    const id = await send(
      this.clients,
      'sts:GetCallerIdentity',
      region,
      (o) => this.clients.sts(region).send(new GetCallerIdentityCommand({}), o),
      ctx.signal,
    );
    await this.checkRegions(plan, ctx);
    return { account: id.Account ?? 'unknown' };
  }

  /**
   * Every region of the plan must exist: a misspelt one would otherwise be retried for minutes and end in
   * an XML parse error. Asked of DescribeRegions (all regions, enabled or not: one the account has not opted
   * into is a different problem, said where it is met); the partition's known list when that is denied.
   */
  private async checkRegions(plan: TargetPlan, ctx: ProviderContext): Promise<void> {
    const wanted = [plan.primaryLocation, ...locations(plan)];
    const partition = awsImage(plan).partition;
    let known: readonly string[];
    let source: string;
    try {
      const res = await send(
        this.clients,
        'ec2:DescribeRegions',
        plan.primaryLocation,
        (o) =>
          this.clients.ec2(plan.primaryLocation).send(new DescribeRegionsCommand({ AllRegions: true }), o),
        ctx.signal,
      );
      known = (res.Regions ?? []).map((r) => r.RegionName!).filter(Boolean);
      source = 'DescribeRegions lists';
    } catch (err) {
      if (!(err instanceof PlumeError && err.kind === 'credentials')) throw err;
      known = KNOWN_REGIONS[partition];
      source = `plume knows in the ${partition} partition (DescribeRegions was refused)`;
    }
    checkRegions(plan.name, wanted, known, source);
  }

  /** The primary images already there, by variant: when all exist, nothing needs uploading. */
  private async findPrimaryImages(
    plan: TargetPlan,
    ctx: ProviderContext,
  ): Promise<Map<string, PublishedImage>> {
    const targets = primaryImages(plan);
    const found = await findImagesByName(
      this.clients,
      plan.primaryLocation,
      targets.map((t) => t.name),
      ctx.signal,
    );
    const out = new Map<string, PublishedImage>();
    for (const t of targets) {
      const image = found.get(t.name)?.find((i) => i.State === 'available' || i.State === 'pending');
      if (image?.ImageId) {
        out.set(t.variant, { ...t, id: image.ImageId });
        this.learnVolume(plan, image);
      }
    }
    return out;
  }

  private learnVolume(plan: TargetPlan, image: Image): void {
    const size = image.BlockDeviceMappings?.find((m) => m.DeviceName === awsImage(plan).rootDeviceName)?.Ebs
      ?.VolumeSize;
    if (size && !this.volumeGiB.has(plan.key)) this.volumeGiB.set(plan.key, size);
  }

  async uploadDisk(
    plan: TargetPlan,
    open: () => Promise<DiskImage>,
    ctx: ProviderContext,
  ): Promise<DiskRef | UploadSkipped> {
    const primary = await this.findPrimaryImages(plan, ctx);
    if (primaryImages(plan).every((t) => primary.has(t.variant)))
      return { skipped: 'the images are already registered' };
    const region = plan.primaryLocation;
    const sourceTag = plan.source.sha256 ?? 'unverified';
    const snapshots = await findSnapshotsByTag(this.clients, region, TAG_RELEASE, plan.key, ctx.signal);
    const isOurs = (snap: Snapshot) => snap.Tags?.some((t) => t.Key === TAG_SOURCE && t.Value === sourceTag);
    // Uploaded whole and completed, though AWS may still be turning it `completed` (large snapshots take a
    // while): a previous run that ran out of wait left it, and it only needs waiting for.
    const uploaded = (snap: Snapshot) =>
      isOurs(snap) && snap.Tags?.some((t) => t.Key === TAG_UPLOADED && t.Value === sourceTag);
    for (const snap of snapshots) {
      if ((snap.State === 'completed' && isOurs(snap)) || (snap.State === 'pending' && uploaded(snap))) {
        if (snap.State === 'pending')
          await waitSnapshotCompleted(this.clients, region, snap.SnapshotId!, this.settings.wait, ctx.signal);
        this.volumeGiB.set(plan.key, snap.VolumeSize!);
        ctx.emit({ type: 'disk-ready', location: region, id: snap.SnapshotId!, reused: true });
        return { location: region, id: snap.SnapshotId!, reused: true, sizeGiB: snap.VolumeSize! };
      }
    }
    // A snapshot another run is still writing (its lease is live): wait for that run, then look again.
    const leased = snapshots.find((snap) => snap.State === 'pending' && !uploaded(snap) && leaseHolder(snap));
    if (leased) {
      ctx.log.info(
        { snapshotId: leased.SnapshotId, holder: leaseHolder(leased) },
        `another run (${leaseHolder(leased)}) is uploading this release; waiting for it`,
      );
      await sleep(Math.min(5_000, this.leaseMs / 3), undefined, { signal: ctx.signal });
      return this.uploadDisk(plan, open, ctx);
    }
    // Any other pending or failed snapshot is what an interrupted upload leaves: it can never complete.
    for (const snap of snapshots.filter((s) => s.State !== 'completed')) {
      ctx.log.warn(
        { snapshotId: snap.SnapshotId, state: snap.State },
        'removing a snapshot left by an interrupted upload',
      );
      await deleteSnapshot(this.clients, region, snap.SnapshotId!, ctx.signal);
    }

    const image = await open();
    let started: string | undefined;
    let renew: NodeJS.Timeout | undefined;
    try {
      const result = await uploadSnapshot(
        this.clients,
        image,
        {
          region,
          description: plan.description,
          tags: {
            ...plan.tags,
            Name: plan.build,
            [TAG_RELEASE]: plan.key,
            [TAG_SOURCE]: sourceTag,
            [TAG_LEASE]: this.lease(),
          },
          concurrency: this.settings.uploadConcurrency,
        },
        ctx,
        (id) => {
          started = id;
          renew = setInterval(() => {
            createTags(this.clients, region, [id], { [TAG_LEASE]: this.lease() }, ctx.signal).catch(
              (err: unknown) =>
                ctx.log.warn({ snapshotId: id, err: errorMessage(err) }, 'cannot renew the upload lease'),
            );
          }, this.leaseMs / 3);
        },
      );
      clearInterval(renew);
      // From here on the snapshot is whole: mark it so, and keep it if the wait below runs out.
      await createTags(this.clients, region, [result.snapshotId], { [TAG_UPLOADED]: sourceTag }, ctx.signal);
      started = undefined;
      await waitSnapshotCompleted(this.clients, region, result.snapshotId, this.settings.wait, ctx.signal);
      this.volumeGiB.set(plan.key, result.volumeGiB);
      ctx.emit({ type: 'disk-ready', location: region, id: result.snapshotId, reused: false });
      return {
        location: region,
        id: result.snapshotId,
        reused: false,
        sizeGiB: result.volumeGiB,
        summary: result.summary,
        bytesSent: result.bytesSent,
        blocksSent: result.blocksSent,
      };
    } catch (err) {
      clearInterval(renew);
      if (started) {
        const id = started;
        await deleteSnapshot(this.clients, region, id).catch((e: unknown) =>
          ctx.log.error(
            { snapshotId: id, err: errorMessage(e) },
            'could not delete the unfinished snapshot; the next run removes it',
          ),
        );
      }
      throw err;
    }
  }

  async createImages(
    plan: TargetPlan,
    disk: DiskRef | undefined,
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]> {
    const existing = await this.findPrimaryImages(plan, ctx);
    return this.settle(ctx, primaryImages(plan), 8, async (target) => {
      let id = existing.get(target.variant)?.id;
      let reused = id !== undefined;
      if (!id) {
        if (!disk) throw new PlumeError('internal', `no disk to register ${target.name} from`);
        ({ id, reused } = await registerImage(
          this.clients,
          target.location,
          {
            name: target.name,
            description: plan.description,
            snapshotId: disk.id,
            volumeType: target.variant,
            volumeGiB: disk.sizeGiB,
            settings: awsImage(plan),
            tags: expectedTags(plan, target),
          },
          ctx.signal,
        ));
      }
      const image = await waitImageAvailable(
        this.clients,
        target.location,
        id,
        this.settings.wait,
        ctx.signal,
      );
      this.learnVolume(plan, image);
      ctx.emit({ type: 'image-ready', target, id, reused, primary: true });
      return id;
    });
  }

  /** Copy, wait, tag: one target's whole path, each stage skipped when already done. */
  private async ensureCopy(
    plan: TargetPlan,
    target: ImageTarget,
    source: PublishedImage,
    existing: Image | undefined,
    round: number,
    ctx: ProviderContext,
  ): Promise<string> {
    let id = existing?.ImageId;
    let reused = id !== undefined;
    if (
      existing &&
      (existing.State === 'failed' || existing.State === 'error' || existing.State === 'invalid')
    ) {
      ctx.log.warn({ region: target.location, imageId: id, state: existing.State }, 'removing a failed copy');
      await deregisterImage(this.clients, target.location, existing, true, ctx.signal);
      id = undefined;
      reused = false;
    }
    if (!id) {
      const copied = await this.copyQueue.add(() =>
        copyImage(
          this.clients,
          { region: source.location, id: source.id },
          target.location,
          target.name,
          plan.description,
          // Everything the copy means (another name or source is another copy), and the repair round.
          clientToken(source.location, source.id, target.location, target.name, plan.description, round),
          ctx.signal,
        ),
      );
      ({ id, reused } = copied);
    }
    const image = await waitImageAvailable(this.clients, target.location, id, this.settings.wait, ctx.signal);
    const snapshotId = rootSnapshotId(image);
    await createTags(
      this.clients,
      target.location,
      snapshotId ? [id, snapshotId] : [id],
      expectedTags(plan, target),
      ctx.signal,
    );
    ctx.emit({ type: 'image-ready', target, id, reused, primary: false, sourceId: source.id });
    return id;
  }

  async replicate(
    plan: TargetPlan,
    primary: PublishedImage[],
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]> {
    const byVariant = new Map(primary.map((p) => [p.variant, p]));
    const targets = plan.images.filter((t) => t.location !== plan.primaryLocation);
    const existing = new Map<string, Image | undefined>();
    await mapSettled(
      locations(plan).filter((l) => l !== plan.primaryLocation),
      8,
      async (region) => {
        const found = await findImagesByName(
          this.clients,
          region,
          targets.filter((t) => t.location === region).map((t) => t.name),
          ctx.signal,
        );
        for (const [name, images] of found) existing.set(`${region}\0${name}`, images[0]);
      },
    );
    return this.settle(ctx, targets, targets.length, async (target) => {
      const source = byVariant.get(target.variant);
      if (!source)
        throw new PlumeError(
          'provider',
          `no ${target.variant} image in ${plan.primaryLocation} to copy from`,
        );
      return this.ensureCopy(
        plan,
        target,
        source,
        existing.get(`${target.location}\0${target.name}`),
        0,
        ctx,
      );
    });
  }

  async publish(plan: TargetPlan, images: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]> {
    return this.settle(ctx, images, 8, async (target) => {
      const found = (await findImagesByName(this.clients, target.location, [target.name], ctx.signal)).get(
        target.name,
      )?.[0];
      if (!found) throw new PlumeError('provider', `image ${target.name} vanished from ${target.location}`);
      const snapshotId = rootSnapshotId(found);
      if (target.location === plan.primaryLocation && snapshotId)
        await createTags(
          this.clients,
          target.location,
          [snapshotId],
          { [TAG_RELEASE]: plan.key },
          ctx.signal,
        );
      await this.publishAs(plan, target.location, found, ctx);
      ctx.emit({ type: 'image-published', target, id: target.id });
      return target.id;
    });
  }

  /** Apply the plan's visibility (and deprecation) to one image. */
  private publishAs(plan: TargetPlan, region: string, image: Image, ctx: ProviderContext): Promise<void> {
    return publishImage(this.clients, region, image, plan.visibility, plan.deprecateAt, ctx.signal);
  }

  async verify(plan: TargetPlan, ctx: ProviderContext): Promise<VerifyReport> {
    let size = this.volumeGiB.get(plan.key);
    if (size === undefined) {
      await this.findPrimaryImages(plan, ctx);
      size = this.volumeGiB.get(plan.key);
    }
    const results = await mapSettled(locations(plan), 8, (region) =>
      verifyRegion(this.clients, plan, region, size, ctx.signal),
    );
    return mergeReports(
      results.map((r, i) => {
        if (r.status === 'fulfilled') return r.value;
        const region = locations(plan)[i]!;
        return {
          ok: [],
          problems: plan.images
            .filter((t) => t.location === region)
            .map((target) => ({ target, kind: 'error' as const, detail: errorMessage(r.reason) })),
        };
      }),
    );
  }

  async repair(plan: TargetPlan, problems: Problem[], ctx: ProviderContext, round: number): Promise<void> {
    const primary = await this.findPrimaryImages(plan, ctx);
    // Primary problems first: copies are made from the primary images.
    const ordered = [...problems].sort(
      (a, b) =>
        Number(b.target.location === plan.primaryLocation) -
        Number(a.target.location === plan.primaryLocation),
    );
    await this.settle(
      ctx,
      ordered.map((p) => ({ ...p.target, problem: p })),
      ordered.length,
      async ({ problem }) => {
        const { target } = problem;
        const isPrimary = target.location === plan.primaryLocation;
        const current = (
          await findImagesByName(this.clients, target.location, [target.name], ctx.signal)
        ).get(target.name)?.[0];
        ctx.log.warn(
          {
            region: target.location,
            volumeType: target.variant,
            problem: problem.kind,
            detail: problem.detail,
          },
          'repairing',
        );
        switch (problem.kind) {
          case 'tags':
          case 'deprecation':
          case 'not-public':
          case 'not-available': {
            if (!current) return '';
            const image = await waitImageAvailable(
              this.clients,
              target.location,
              current.ImageId!,
              this.settings.wait,
              ctx.signal,
            );
            const snapshotId = rootSnapshotId(image);
            // The primary snapshot is shared by every variant: only a copy's snapshot takes the image's tags.
            await createTags(
              this.clients,
              target.location,
              snapshotId && !isPrimary ? [image.ImageId!, snapshotId] : [image.ImageId!],
              expectedTags(plan, target),
              ctx.signal,
            );
            await this.publishAs(plan, target.location, image, ctx);
            return image.ImageId!;
          }
          case 'missing':
          case 'failed':
          case 'attributes': {
            if (isPrimary) {
              if (current) await deregisterImage(this.clients, target.location, current, false, ctx.signal);
              const disk = await this.findDisk(plan, ctx);
              if (!disk)
                throw new PlumeError(
                  'provider',
                  `cannot re-create ${target.name}: its snapshot is gone`,
                  'run the release again to upload it anew',
                );
              const [outcome] = await this.createImages({ ...plan, images: [target] }, disk, ctx);
              if (outcome?.error) throw new PlumeError('provider', outcome.error);
              const image = (
                await findImagesByName(this.clients, target.location, [target.name], ctx.signal)
              ).get(target.name)?.[0];
              if (image) await this.publishAs(plan, target.location, image, ctx);
              return outcome?.id ?? '';
            }
            const source = primary.get(target.variant);
            if (!source)
              throw new PlumeError(
                'provider',
                `no ${target.variant} image in ${plan.primaryLocation} to copy from`,
              );
            if (current) await deregisterImage(this.clients, target.location, current, true, ctx.signal);
            const id = await this.ensureCopy(plan, target, source, undefined, round, ctx);
            const image = await waitImageAvailable(
              this.clients,
              target.location,
              id,
              this.settings.wait,
              ctx.signal,
            );
            await this.publishAs(plan, target.location, image, ctx);
            return id;
          }
          case 'public':
            // Withdrawing a published image is a decision for a person (users may already launch it).
            throw new PlumeError(
              'provider',
              `${target.name} in ${target.location}: ${problem.detail}`,
              'plume never withdraws an image: if it must be private, remove its launch and create-volume permissions by hand',
            );
          default:
            throw new PlumeError(
              'provider',
              `cannot repair automatically: ${problem.detail}`,
              'inspect the region by hand',
            );
        }
      },
    );
    await mapSettled([...new Set(problems.map((p) => p.target.location))], 8, (region) =>
      this.removeOrphanSnapshots(plan, region, ctx),
    );
  }

  /**
   * Delete this release's snapshots that no image uses any more (left when an image was deregistered by
   * hand or by a repair), keeping the uploaded disk in the primary region.
   */
  private async removeOrphanSnapshots(plan: TargetPlan, region: string, ctx: ProviderContext): Promise<void> {
    const snaps = await findSnapshotsByTag(this.clients, region, TAG_RELEASE, plan.key, ctx.signal);
    if (snaps.length === 0) return;
    const images = await findImagesByName(
      this.clients,
      region,
      plan.images.filter((t) => t.location === region).map((t) => t.name),
      ctx.signal,
    );
    const used = new Set([...images.values()].flat().map(rootSnapshotId));
    for (const snap of snaps) {
      const isDisk = region === plan.primaryLocation && snap.Tags?.some((t) => t.Key === TAG_SOURCE);
      if (isDisk || used.has(snap.SnapshotId) || snap.State === 'pending') continue;
      ctx.log.warn(
        { region, snapshotId: snap.SnapshotId },
        'deleting a snapshot no image of the release uses',
      );
      await deleteSnapshot(this.clients, region, snap.SnapshotId!, ctx.signal);
    }
  }

  private async findDisk(plan: TargetPlan, ctx: ProviderContext): Promise<DiskRef | undefined> {
    const snaps = await findSnapshotsByTag(
      this.clients,
      plan.primaryLocation,
      TAG_RELEASE,
      plan.key,
      ctx.signal,
    );
    const snap = snaps.find((s) => s.State === 'completed' && s.Tags?.some((t) => t.Key === TAG_SOURCE));
    return snap
      ? { location: plan.primaryLocation, id: snap.SnapshotId!, reused: true, sizeGiB: snap.VolumeSize! }
      : undefined;
  }

  async listLocations(primary: string, ctx: ProviderContext): Promise<string[]> {
    const res = await send(
      this.clients,
      'ec2:DescribeRegions',
      primary,
      (o) => this.clients.ec2(primary).send(new DescribeRegionsCommand({}), o),
      ctx.signal,
    );
    return (res.Regions ?? [])
      .map((r) => r.RegionName!)
      .filter(Boolean)
      .sort();
  }

  async listRelease(plan: TargetPlan, ctx: ProviderContext): Promise<PublishedImage[]> {
    const out: PublishedImage[] = [];
    await mapSettled(locations(plan), 8, async (region) => {
      const found = await findImagesByName(
        this.clients,
        region,
        plan.images.filter((t) => t.location === region).map((t) => t.name),
        ctx.signal,
      );
      for (const t of plan.images.filter((t) => t.location === region)) {
        const id = found.get(t.name)?.[0]?.ImageId;
        if (id) out.push({ ...t, id });
      }
    });
    return out;
  }

  /** Run per-target work with a bound, turning each failure into an outcome (and an event) instead of a throw. */
  private async settle<T extends ImageTarget>(
    ctx: ProviderContext,
    targets: T[],
    limit: number,
    fn: (t: T) => Promise<string>,
  ): Promise<TargetOutcome[]> {
    const results = await mapSettled(targets, Math.max(1, limit), fn);
    return results.map((r, i) => {
      const target: ImageTarget = {
        location: targets[i]!.location,
        variant: targets[i]!.variant,
        name: targets[i]!.name,
      };
      if (r.status === 'fulfilled') return { target, id: r.value };
      const error = errorMessage(r.reason);
      ctx.emit({ type: 'target-failed', target, error });
      return { target, error };
    });
  }
}
