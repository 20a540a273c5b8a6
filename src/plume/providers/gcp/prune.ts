import type { protos } from '@google-cloud/compute';
import { mapSettled } from '../../../shared/concurrency.js';
import { streamKey } from '../../lifecycle/decide.js';
import type { DeleteOutcome, ImagePruner, OwnedImage, ProviderContext, StreamSelector } from '../types.js';
import { isNotFound, describeGcpError } from './clients.js';
import { LABEL_CHANNEL, LABEL_RELEASE, LABEL_SYSTEM, labelValue } from './labels.js';
import { ALL_USERS, IMAGE_USER, imagePath, requestId, type GcpProvider } from './provider.js';
import { GCE_ARCH } from './settings.js';

type Image = protos.google.cloud.compute.v1.IImage;
type Operation = protos.google.cloud.compute.v1.IOperation;

/** getIamPolicy calls in flight while listing (one per image, for who it is shared with). */
const IAM_CONCURRENCY = 8;
/** Principals that make an image public rather than shared with someone by name. */
const PUBLIC_MEMBERS = new Set([ALL_USERS, 'allUsers']);

/** The neutral architecture of a GCE image (X86_64, ARM64), from its field or plume's `arch` label. */
function neutralArch(image: Image): string {
  const found = Object.entries(GCE_ARCH).find(([, gce]) => gce === image.architecture);
  return found?.[0] ?? image.labels?.arch ?? 'unknown';
}

/** The list filter of a stream: plume's own labels (GCE filters are exact on label values). */
export function streamFilter(stream: StreamSelector): string {
  const terms = [
    `labels.${LABEL_SYSTEM} = ${labelValue(stream.system)}`,
    `labels.${LABEL_CHANNEL} = ${labelValue(stream.channel)}`,
  ];
  if (stream.imageType) terms.push(`labels.imagetype = ${labelValue(stream.imageType)}`);
  return terms.map((t) => `(${t})`).join(' ');
}

/**
 * Whether a listed image is one plume created for the stream and finished: its release label, system and
 * channel labels (checked again here, whatever the filter did), arch and image type, and READY (a PENDING
 * image is a release in progress, a FAILED one the release's to repair).
 */
export function isOwned(image: Image, stream: StreamSelector): boolean {
  const l = image.labels ?? {};
  return (
    image.status === 'READY' &&
    Boolean(image.name) &&
    /^[0-9a-f]{32}$/.test(l[LABEL_RELEASE] ?? '') &&
    l[LABEL_SYSTEM] === labelValue(stream.system) &&
    l[LABEL_CHANNEL] === labelValue(stream.channel) &&
    (!stream.imageType || l.imagetype === labelValue(stream.imageType)) &&
    (!stream.arch || neutralArch(image) === stream.arch)
  );
}

/** When the image counts as deprecated from (ms): GCE's state takes effect at once, whatever date it notes. */
function deprecatedAt(image: Image): number | undefined {
  const d = image.deprecated;
  if (!d?.state || d.state === 'ACTIVE') return undefined;
  const noted = Date.parse(d.deprecated ?? '');
  const created = Date.parse(image.creationTimestamp ?? '') || 0;
  return Number.isNaN(noted) ? created : Math.min(noted, Date.now());
}

/**
 * An image as the policy sees it. `members` are those of its imageUser binding. The release is the
 * `plume-release` label (the key's digest: the key does not fit a label), and the image type is the
 * selector's when it names one (labels are lowercase; the stream's record is matched regardless of case).
 */
export function ownedImage(
  project: string,
  image: Image,
  stream: StreamSelector,
  members: string[],
): OwnedImage {
  const l = image.labels ?? {};
  const date = l.date ? Date.parse(l.date) : Number.NaN;
  return {
    provider: 'gcp',
    location: 'global',
    id: imagePath(project, image.name!),
    name: image.name!,
    release: l[LABEL_RELEASE]!,
    stream: streamKey({
      system: stream.system,
      channel: stream.channel,
      arch: neutralArch(image),
      imageType: stream.imageType ?? l.imagetype,
    }),
    // The build date the family's own deprecation counts from; the creation time otherwise.
    builtAt: Number.isNaN(date) ? Date.parse(image.creationTimestamp ?? '') || 0 : date,
    ...(deprecatedAt(image) !== undefined ? { deprecatedAt: deprecatedAt(image) } : {}),
    public: members.some((m) => PUBLIC_MEMBERS.has(m)),
    sharedWith: members.filter((m) => !PUBLIC_MEMBERS.has(m)).sort(),
    // A GCE image holds its own data: deleting it deletes everything.
    backing: [],
  };
}

/** The newest image of each stream (by build date, then name): what the older ones are deprecated in favour of. */
export function newestByStream(images: readonly OwnedImage[]): Map<string, OwnedImage> {
  const out = new Map<string, OwnedImage>();
  for (const i of images) {
    const best = out.get(i.stream);
    if (!best || i.builtAt > best.builtAt || (i.builtAt === best.builtAt && i.name > best.name))
      out.set(i.stream, i);
  }
  return out;
}

/**
 * GCE's part of `plume prune`: images are global (one location), found by plume's labels (`plume-system`,
 * `plume-channel`, with `plume-release` on each), deprecated with images.deprecate (state DEPRECATED, the
 * stream's newest image as replacement, as the release's own family deprecation does) and deleted with
 * images.delete. An image holds its own data, so nothing else goes with it.
 */
export class GcpPruner implements ImagePruner {
  readonly name = 'gcp';
  /** Each listed image's stream's newest image's URL, for the replacement a deprecation names. */
  private readonly replacements = new Map<string, string>();
  /** Each listed image's own URL. */
  private readonly links = new Map<string, string>();

  constructor(
    private readonly provider: GcpProvider,
    private readonly account: { project: string; jsonKey?: string },
  ) {}

  pruneLocations(primary: string): Promise<string[]> {
    return Promise.resolve([primary]);
  }

  async listOwned(_location: string, stream: StreamSelector, ctx: ProviderContext): Promise<OwnedImage[]> {
    const c = this.provider.clientsFor(this.account);
    const project = this.account.project;
    const [listed] = await this.provider.retrying(
      'compute.images.list',
      () => c.images.list({ project, filter: streamFilter(stream) }, c.callOptions()),
      ctx,
    );
    const mine = listed.filter((i) => isOwned(i, stream));
    const policies = await mapSettled(mine, IAM_CONCURRENCY, (i) =>
      this.provider.retrying(
        'compute.images.getIamPolicy',
        () => c.images.getIamPolicy({ project, resource: i.name! }, c.callOptions()),
        ctx,
      ),
    );
    const owned = mine.map((image, n) => {
      const r = policies[n]!;
      if (r.status === 'rejected') throw r.reason;
      const members = (r.value[0].bindings ?? [])
        .filter((b) => b.role === IMAGE_USER)
        .flatMap((b) => b.members ?? []);
      return ownedImage(project, image, stream, members);
    });
    for (const i of mine) if (i.selfLink) this.links.set(imagePath(project, i.name!), i.selfLink);
    const newest = newestByStream(owned);
    for (const o of owned) {
      const link = this.links.get(newest.get(o.stream)!.id);
      if (link) this.replacements.set(o.id, link);
    }
    return owned;
  }

  async deprecate(image: OwnedImage, at: Date, ctx: ProviderContext): Promise<void> {
    const c = this.provider.clientsFor(this.account);
    const replacement = this.replacements.get(image.id);
    const when = at.toISOString();
    const [op] = await this.provider.retrying(
      'compute.images.deprecate',
      () =>
        c.images.deprecate(
          {
            project: this.account.project,
            image: image.name,
            // Same meaning, same id: a retry after a lost answer gets the first call's operation.
            requestId: requestId('prune-deprecate', image.id, when),
            deprecationStatusResource: {
              state: 'DEPRECATED',
              deprecated: when,
              // The newest image itself is never deprecated by the policy; were it, it names no replacement.
              ...(replacement && replacement !== this.links.get(image.id) ? { replacement } : {}),
            },
          },
          c.callOptions(),
        ),
      ctx,
    );
    await this.provider.waitOperation(
      this.account,
      op.latestResponse as Operation,
      `deprecating ${image.name}`,
      ctx,
    );
  }

  async deleteImage(image: OwnedImage, ctx: ProviderContext): Promise<DeleteOutcome> {
    const c = this.provider.clientsFor(this.account);
    try {
      const [op] = await this.provider.retrying(
        'compute.images.delete',
        () => c.images.delete({ project: this.account.project, image: image.name }, c.callOptions()),
        ctx,
      );
      await this.provider.waitOperation(
        this.account,
        op.latestResponse as Operation,
        `deleting ${image.name}`,
        ctx,
      );
    } catch (err) {
      // Gone already (a resumed prune, or deleted by hand): what was asked is done.
      if (!isNotFound(err) && !isNotFound((err as { cause?: unknown }).cause))
        throw describeGcpError(err, 'compute.images.delete');
    }
    return { deleted: [], kept: [] };
  }

  /** A GCE image has no backing of its own to delete: nothing is ever journaled for this to finish. */
  deleteBacking(): Promise<DeleteOutcome> {
    return Promise.resolve({ deleted: [], kept: [] });
  }
}
