import type { Gallery, GalleryImage, GalleryImageVersion } from '@azure/arm-compute';
import { streamKey } from '../../lifecycle/decide.js';
import type { DeleteOutcome, ImagePruner, OwnedImage, ProviderContext, StreamSelector } from '../types.js';
import { isNotFound } from './clients.js';
import type { AzureProvider } from './provider.js';
import { AZURE_ARCH } from './settings.js';

/** The tag a release puts on each gallery image version: the release key. */
export const TAG_RELEASE = 'plume-release';

/** Where the pruner works: one gallery, and the account that reaches it. */
export interface AzurePruneAccount {
  subscription: string;
  resourceGroup: string;
  gallery: string;
  storageAccount: string;
  profile?: string;
}

/** The neutral architecture of a definition (x64, Arm64), or the version's own `Arch` tag. */
function neutralArch(definition: GalleryImage, tags: Record<string, string>): string {
  if (tags.Arch) return tags.Arch;
  // Azure's spelling varies in case: compared without case, against its own names.
  const a = (definition.architecture ?? AZURE_ARCH.x86_64).toLowerCase();
  const neutral = (Object.keys(AZURE_ARCH) as (keyof typeof AZURE_ARCH)[]).find(
    (k) => AZURE_ARCH[k].toLowerCase() === a,
  );
  return neutral ?? a;
}

/** Whom the gallery is shared with by name (Azure shares galleries, not versions): `subscription:ID`, `tenant:ID`. */
export function galleryPrincipals(gallery: Gallery): { public: boolean; sharedWith: string[] } {
  const p = gallery.sharingProfile;
  const sharedWith = (p?.groups ?? []).flatMap((g) =>
    (g.ids ?? []).map((id) => `${g.type === 'AADTenants' ? 'tenant' : 'subscription'}:${id}`),
  );
  return { public: p?.permissions === 'Community', sharedWith: sharedWith.sort() };
}

/**
 * Whether a version is one plume created for the stream and finished: plume's release tag under
 * `SYSTEM/CHANNEL/`, the selector's arch and image type, and Succeeded (one still Creating is a release in
 * progress, a Failed one the release's to repair).
 */
export function isOwned(
  version: GalleryImageVersion,
  definition: GalleryImage,
  stream: StreamSelector,
): boolean {
  const tags = version.tags ?? {};
  return (
    version.provisioningState === 'Succeeded' &&
    (tags[TAG_RELEASE] ?? '').startsWith(`${stream.system}/${stream.channel}/`) &&
    (!stream.arch || neutralArch(definition, tags) === stream.arch) &&
    (!stream.imageType || tags.ImageType === stream.imageType)
  );
}

/** A version as the policy sees it; `location` is the gallery, the one place prune looks in. */
export function ownedVersion(
  gallery: string,
  definition: GalleryImage,
  version: GalleryImageVersion,
  stream: StreamSelector,
  sharing: { public: boolean; sharedWith: string[] },
): OwnedImage {
  const tags = version.tags ?? {};
  const date = tags.Date ? Date.parse(tags.Date) : Number.NaN;
  const eol = version.publishingProfile?.endOfLifeDate;
  return {
    provider: 'azure',
    location: gallery,
    id: version.id!,
    name: `${definition.name}/${version.name}`,
    release: tags[TAG_RELEASE]!,
    stream: streamKey({
      system: stream.system,
      channel: stream.channel,
      arch: neutralArch(definition, tags),
      imageType: tags.ImageType,
    }),
    // The build date the release's own end of life counts from; 0 (oldest) when the tag is missing.
    builtAt: Number.isNaN(date) ? 0 : date,
    ...(eol ? { deprecatedAt: new Date(eol).getTime() } : {}),
    ...sharing,
    // The staged VHD is deleted by the release once the version exists: nothing else backs a version.
    backing: [],
  };
}

/** Whether a definition may go now that a version of it went: it holds no version and is past its end of life. */
export function definitionDeletable(definition: GalleryImage, versions: number, now: number): boolean {
  const eol = definition.endOfLifeDate ? new Date(definition.endOfLifeDate).getTime() : undefined;
  return versions === 0 && eol !== undefined && eol <= now;
}

const failedNotFound = (err: unknown) =>
  isNotFound(err) || isNotFound((err as { cause?: unknown } | null)?.cause);

/**
 * Azure's part of `plume prune`: gallery image versions are found by plume's `plume-release` tag in every
 * definition of the configured gallery, deprecated by setting their end of life (and excluding them from
 * "latest"), and deleted with their definition when that is left empty and past its own end of life.
 * Sharing is the gallery's: a gallery shared with named subscriptions or tenants shares every version.
 */
export class AzurePruner implements ImagePruner {
  readonly name = 'azure';

  constructor(
    private readonly provider: AzureProvider,
    private readonly account: AzurePruneAccount,
  ) {}

  private get compute() {
    return this.provider.clientsFor(this.account).compute;
  }

  pruneLocations(primary: string): Promise<string[]> {
    return Promise.resolve([primary]);
  }

  async listOwned(_gallery: string, stream: StreamSelector, ctx: ProviderContext): Promise<OwnedImage[]> {
    const { resourceGroup: rg, gallery } = this.account;
    const g = await this.provider.retrying(
      'Galleries_Get',
      () => this.compute.galleries.get(rg, gallery, { expand: 'SharingProfile/Groups' }),
      ctx,
    );
    const sharing = galleryPrincipals(g);
    const definitions = await this.provider.retrying(
      'GalleryImages_ListByGallery',
      () => collect(this.compute.galleryImages.listByGallery(rg, gallery)),
      ctx,
    );
    const out: OwnedImage[] = [];
    for (const d of definitions) {
      const versions = await this.provider.retrying(
        'GalleryImageVersions_ListByGalleryImage',
        () => collect(this.compute.galleryImageVersions.listByGalleryImage(rg, gallery, d.name!)),
        ctx,
      );
      for (const v of versions)
        if (isOwned(v, d, stream)) out.push(ownedVersion(gallery, d, v, stream, sharing));
    }
    return out;
  }

  async deprecate(image: OwnedImage, at: Date, ctx: ProviderContext): Promise<void> {
    const [definition, version] = image.name.split('/') as [string, string];
    await this.provider.retrying(
      'GalleryImageVersions_Update',
      () =>
        this.compute.galleryImageVersions.update(
          this.account.resourceGroup,
          this.account.gallery,
          definition,
          version,
          // Past its end of life and out of "latest": a VM asking for the definition's latest gets a newer one.
          { publishingProfile: { endOfLifeDate: at, excludeFromLatest: true } },
          this.provider.lro(ctx),
        ),
      ctx,
    );
  }

  async deleteImage(image: OwnedImage, ctx: ProviderContext): Promise<DeleteOutcome> {
    const { resourceGroup: rg, gallery } = this.account;
    const [definition, version] = image.name.split('/') as [string, string];
    try {
      await this.provider.retrying(
        'GalleryImageVersions_Delete',
        () =>
          this.compute.galleryImageVersions.delete(rg, gallery, definition, version, this.provider.lro(ctx)),
        ctx,
      );
    } catch (err) {
      // Gone already (a resumed prune, or deleted by hand): what was asked is done.
      if (!failedNotFound(err)) throw err;
    }
    return this.deleteDefinitionIfDone(definition, ctx);
  }

  /** The definition goes once empty and past its end of life; one still holding versions (plume's or not) stays. */
  private async deleteDefinitionIfDone(definition: string, ctx: ProviderContext): Promise<DeleteOutcome> {
    const { resourceGroup: rg, gallery } = this.account;
    let d: GalleryImage;
    try {
      d = await this.provider.retrying(
        'GalleryImages_Get',
        () => this.compute.galleryImages.get(rg, gallery, definition),
        ctx,
      );
    } catch (err) {
      if (failedNotFound(err)) return { deleted: [], kept: [] };
      throw err;
    }
    const versions = await this.provider.retrying(
      'GalleryImageVersions_ListByGalleryImage',
      () => collect(this.compute.galleryImageVersions.listByGalleryImage(rg, gallery, definition)),
      ctx,
    );
    if (!definitionDeletable(d, versions.length, Date.now())) return { deleted: [], kept: [] };
    try {
      await this.provider.retrying(
        'GalleryImages_Delete',
        () => this.compute.galleryImages.delete(rg, gallery, definition, this.provider.lro(ctx)),
        ctx,
      );
    } catch (err) {
      if (!failedNotFound(err)) throw err;
    }
    ctx.log.info({ gallery, definition }, 'deleted the empty image definition past its end of life');
    return { deleted: [d.id ?? definition], kept: [] };
  }

  /** A version has no backing of its own left to delete: nothing is ever journaled for this to finish. */
  deleteBacking(): Promise<DeleteOutcome> {
    return Promise.resolve({ deleted: [], kept: [] });
  }
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}
