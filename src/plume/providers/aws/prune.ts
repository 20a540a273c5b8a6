import {
  DescribeImageAttributeCommand,
  DescribeImagesCommand,
  DescribeSnapshotsCommand,
  EnableImageDeprecationCommand,
  type Image,
} from '@aws-sdk/client-ec2';
import { mapSettled } from '../../../shared/concurrency.js';
import { PlumeError } from '../../../shared/errors.js';
import { streamKey } from '../../lifecycle/decide.js';
import type { DeleteOutcome, ImagePruner, OwnedImage, ProviderContext, StreamSelector } from '../types.js';
import { awsArchitecture } from './arch.js';
import { codeOf, send, type AwsClients } from './clients.js';
import {
  DEPRECATION_LEAD_MS,
  deleteSnapshot,
  deregisterImage,
  rootSnapshotId,
  tagMap,
  TAG_RELEASE,
  TAG_VARIANT,
} from './images.js';
import type { AwsProvider } from './provider.js';

/** DescribeImageAttribute calls in flight per region while listing (one per image, for its sharing). */
const ATTRIBUTE_CONCURRENCY = 8;
/** Images per DescribeImages page (EC2 allows 5 to 1000). */
const DESCRIBE_PAGE = 1000;

/** The neutral name of an AWS architecture (arm64 is aarch64 everywhere outside the AWS provider). */
function neutralArch(aws: string | undefined): string {
  return aws === 'arm64' ? 'aarch64' : (aws ?? 'unknown');
}

/**
 * AWS's part of `plume prune`: AMIs are found by plume's `plume:release` tag (and the owner `self`),
 * deprecated with EnableImageDeprecation, and deleted by deregistering them and then deleting their root
 * snapshot unless another AMI still uses it (AWS answers InvalidSnapshot.InUse; the last AMI's deletion
 * takes it).
 */
export class AwsPruner implements ImagePruner {
  readonly name = 'aws';

  constructor(
    private readonly provider: AwsProvider,
    private readonly clients: AwsClients = provider.clients,
  ) {}

  pruneLocations(primary: string, ctx: ProviderContext): Promise<string[]> {
    return this.provider.listLocations(primary, ctx);
  }

  async listOwned(region: string, stream: StreamSelector, ctx: ProviderContext): Promise<OwnedImage[]> {
    const filters = [{ Name: `tag:${TAG_RELEASE}`, Values: [`${stream.system}/${stream.channel}/*`] }];
    if (stream.arch) {
      const arch = awsArchitecture(stream.arch);
      if (!arch) return [];
      filters.push({ Name: 'architecture', Values: [arch] });
    }
    if (stream.imageType) filters.push({ Name: 'tag:ImageType', Values: [stream.imageType] });
    const images: Image[] = [];
    let token: string | undefined;
    do {
      const res = await send(
        this.clients,
        'ec2:DescribeImages',
        region,
        (o) =>
          this.clients.ec2(region).send(
            new DescribeImagesCommand({
              Owners: ['self'],
              Filters: filters,
              // The owner sees its deprecated images anyway; said so that no default hides one.
              IncludeDeprecated: true,
              // Paged, as EC2 asks of every caller: an account can hold thousands of nightlies.
              MaxResults: DESCRIBE_PAGE,
              ...(token ? { NextToken: token } : {}),
            }),
            o,
          ),
        ctx.signal,
      );
      images.push(...(res.Images ?? []));
      token = res.NextToken;
    } while (token);
    // Only finished images: a pending one is a release in progress, a failed one is the release's to repair.
    const mine = images.filter((i) => {
      const release = tagMap(i.Tags)[TAG_RELEASE] ?? '';
      return (
        i.State === 'available' && i.ImageId && release.startsWith(`${stream.system}/${stream.channel}/`)
      );
    });
    const shared = await mapSettled(mine, ATTRIBUTE_CONCURRENCY, (i) =>
      this.sharedWith(region, i.ImageId!, ctx),
    );
    return mine.map((image, n) => {
      const r = shared[n]!;
      if (r.status === 'rejected') throw r.reason;
      const tags = tagMap(image.Tags);
      const date = tags.Date ? Date.parse(tags.Date) : Number.NaN;
      const snapshot = rootSnapshotId(image);
      return {
        provider: 'aws',
        location: region,
        id: image.ImageId!,
        name: image.Name ?? '',
        ...(tags[TAG_VARIANT] ? { variant: tags[TAG_VARIANT] } : {}),
        release: tags[TAG_RELEASE]!,
        stream: streamKey({
          system: stream.system,
          channel: stream.channel,
          arch: neutralArch(image.Architecture),
          imageType: tags.ImageType,
        }),
        // The build date the release's own deprecation counts from; the registration time otherwise.
        builtAt: Number.isNaN(date) ? Date.parse(image.CreationDate ?? '') || 0 : date,
        ...(image.DeprecationTime ? { deprecatedAt: Date.parse(image.DeprecationTime) } : {}),
        public: image.Public === true,
        sharedWith: r.value,
        ...(image.LastLaunchedTime ? { lastLaunchedAt: Date.parse(image.LastLaunchedTime) } : {}),
        backing: snapshot ? [snapshot] : [],
      } satisfies OwnedImage;
    });
  }

  /** The accounts the AMI's launch permission names (the public `all` group is not an account). */
  private async sharedWith(region: string, id: string, ctx: ProviderContext): Promise<string[]> {
    const res = await send(
      this.clients,
      'ec2:DescribeImageAttribute',
      region,
      (o) =>
        this.clients
          .ec2(region)
          .send(new DescribeImageAttributeCommand({ ImageId: id, Attribute: 'launchPermission' }), o),
      ctx.signal,
    );
    return (res.LaunchPermissions ?? [])
      .flatMap((p) => [p.UserId, p.OrganizationArn, p.OrganizationalUnitArn])
      .filter((x): x is string => Boolean(x))
      .sort();
  }

  async deprecate(image: OwnedImage, at: Date, ctx: ProviderContext): Promise<void> {
    const when = new Date(Math.max(at.getTime(), Date.now() + DEPRECATION_LEAD_MS));
    await send(
      this.clients,
      'ec2:EnableImageDeprecation',
      image.location,
      (o) =>
        this.clients
          .ec2(image.location)
          .send(new EnableImageDeprecationCommand({ ImageId: image.id, DeprecateAt: when }), o),
      ctx.signal,
    );
  }

  async deleteImage(image: OwnedImage, ctx: ProviderContext): Promise<DeleteOutcome> {
    // Deregistering an AMI that is already gone succeeds (a resumed prune); the snapshots follow.
    await deregisterImage(this.clients, image.location, { ImageId: image.id }, false, ctx.signal);
    return this.deleteSnapshots(image.location, image.backing, ctx);
  }

  async deleteBacking(location: string, id: string, ctx: ProviderContext): Promise<DeleteOutcome> {
    // Only a snapshot plume tagged: the journal names it, but a snapshot is checked before it goes.
    const res = await send(
      this.clients,
      'ec2:DescribeSnapshots',
      location,
      (o) =>
        this.clients
          .ec2(location)
          .send(new DescribeSnapshotsCommand({ OwnerIds: ['self'], SnapshotIds: [id] }), o),
      ctx.signal,
    ).catch((err: unknown) => {
      if (codeOf(err) === 'InvalidSnapshot.NotFound') return { Snapshots: [] };
      throw err;
    });
    const snap = res.Snapshots?.[0];
    if (!snap) return { deleted: [id], kept: [] };
    if (!tagMap(snap.Tags)[TAG_RELEASE])
      return { deleted: [], kept: [{ id, reason: `snapshot ${id} has no ${TAG_RELEASE} tag: not plume's` }] };
    return this.deleteSnapshots(location, [id], ctx);
  }

  private async deleteSnapshots(region: string, ids: string[], ctx: ProviderContext): Promise<DeleteOutcome> {
    const out: DeleteOutcome = { deleted: [], kept: [] };
    for (const id of ids) {
      try {
        await deleteSnapshot(this.clients, region, id, ctx.signal);
        out.deleted.push(id);
      } catch (err) {
        if (codeOf(err) !== 'InvalidSnapshot.InUse') throw err;
        out.kept.push({ id, reason: 'still used by another image (InvalidSnapshot.InUse)' });
      }
    }
    return out;
  }
}

/** Refuse a pruner for a provider that has none yet, in one line. */
export function noPruner(provider: string): PlumeError {
  return new PlumeError('usage', `plume prune does not support ${provider} yet`, 'prune with --platform aws');
}
