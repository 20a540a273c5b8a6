import { setTimeout as sleep } from 'node:timers/promises';
import type { Gallery, GalleryImage, GalleryImageVersion, TargetRegion } from '@azure/arm-compute';
import { PlumeError, errorMessage } from '../../../shared/errors.js';
import { retry } from '../../../shared/retry.js';
import { locations, type TargetPlan } from '../../plan.js';
import type { DiskImage } from '../../source/image.js';
import type {
  DiskRef,
  Problem,
  Provider,
  ProviderContext,
  PublishedImage,
  TargetOutcome,
  UploadSkipped,
  VerifyReport,
} from '../types.js';
import { AzureClients, call, describeAzureError, isNotFound, type AzureClientSettings } from './clients.js';
import {
  definitionProblems,
  definitionResource,
  regionStates,
  sharingPlan,
  versionProblems,
  type RegionState,
} from './decisions.js';
import { inspectStaged, META, uploadPages } from './page-upload.js';
import { azureImage, regionKey, type AzureImage } from './settings.js';
import { checkVhdFooter, checkVhdSize, FOOTER_SIZE } from './vhd.js';

const GiB = 2 ** 30;
/** The largest page blob Azure stores. */
const PAGE_BLOB_MAX_BYTES = 8 * 2 ** 40;

export interface AzureProviderSettings {
  client: AzureClientSettings;
  pageBytes: number;
  uploadConcurrency: number;
  operationTimeoutMs: number;
  pollMinMs: number;
  pollMaxMs: number;
}

/** The blob a target's VHD is staged in until its version exists: one per release target. */
export function blobName(plan: TargetPlan): string {
  return `${plan.key}/${plan.build}.vhd`;
}

/** `/CommunityGalleries/{public name}/Images/{definition}/Versions/{version}`: how the community finds it. */
export function communityVersionId(publicName: string, s: AzureImage): string {
  return `/CommunityGalleries/${publicName}/Images/${s.definition}/Versions/${s.version}`;
}

/**
 * Azure, through an Azure Compute Gallery: the disk is the fixed VHD staged as a page blob, the image is
 * one gallery image version (named from the compose) in the system's image definition, created in the
 * gallery's region and replicated to every target region; the blob is deleted once the version's first copy
 * exists. Azure shares galleries, not versions: a release shares the gallery with the community (or with
 * listed subscriptions and tenants), a pre-release leaves its sharing alone.
 */
export class AzureProvider implements Provider {
  readonly name = 'azure';
  private readonly clients = new Map<string, AzureClients>();

  constructor(readonly settings: AzureProviderSettings) {}

  clientsFor(s: Pick<AzureImage, 'subscription' | 'storageAccount' | 'profile'>): AzureClients {
    const key = [s.subscription, s.storageAccount, s.profile ?? ''].join('\0');
    let c = this.clients.get(key);
    if (!c)
      this.clients.set(
        key,
        (c = new AzureClients(
          { ...this.settings.client, profile: s.profile ?? this.settings.client.profile },
          s.subscription,
          s.storageAccount,
        )),
      );
    return c;
  }

  /** Retry what the network or Azure's servers failed (beyond the SDK's own retries); nothing else. */
  retrying<T>(action: string, fn: () => Promise<T>, ctx: ProviderContext): Promise<T> {
    return retry(() => call(action, fn), {
      attempts: this.settings.client.maxAttempts,
      baseDelayMs: this.settings.client.retryBaseMs,
      maxDelayMs: this.settings.client.retryMaxMs,
      retryable: (err) => err instanceof PlumeError && err.kind === 'provider' && err.retryable,
      signal: ctx.signal,
      onRetry: (err, attempt) => ctx.emit({ type: 'retry', what: action, attempt, error: errorMessage(err) }),
    });
  }

  /** Options of a long-running operation: polled at the configured pace, abandoned at the deadline. */
  lro(ctx: ProviderContext) {
    const deadline = AbortSignal.timeout(this.settings.operationTimeoutMs);
    return {
      updateIntervalInMs: this.settings.pollMinMs,
      abortSignal: ctx.signal ? AbortSignal.any([ctx.signal, deadline]) : deadline,
    };
  }

  async preflight(plan: TargetPlan, ctx: ProviderContext): Promise<{ account: string }> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    await this.retrying('Galleries_Get', () => c.compute.galleries.get(s.resourceGroup, s.gallery), ctx);
    return { account: s.subscription };
  }

  private async getVersion(s: AzureImage, ctx: ProviderContext): Promise<GalleryImageVersion | undefined> {
    const c = this.clientsFor(s);
    try {
      return await this.retrying(
        'GalleryImageVersions_Get',
        () =>
          c.compute.galleryImageVersions.get(s.resourceGroup, s.gallery, s.definition, s.version, {
            expand: 'ReplicationStatus',
          }),
        ctx,
      );
    } catch (err) {
      if (isNotFound(err) || isNotFound((err as { cause?: unknown }).cause)) return undefined;
      throw err;
    }
  }

  async uploadDisk(
    plan: TargetPlan,
    open: () => Promise<DiskImage>,
    ctx: ProviderContext,
  ): Promise<DiskRef | UploadSkipped> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const existing = await this.getVersion(s, ctx);
    if (existing && regionStates(existing)[plan.primaryLocation] === 'Completed')
      return { skipped: 'the image version already exists' };
    const container = c.blobs.getContainerClient(s.storageContainer);
    await this.retrying('Container.Create', () => container.createIfNotExists(), ctx);
    const blob = container.getPageBlobClient(blobName(plan));
    const sha256 = plan.source.sha256 ?? 'unverified';
    const staged = await inspectStaged(blob, sha256);
    const ref = (bytes: number, reused: boolean): DiskRef => ({
      location: s.storageAccount,
      id: blob.url,
      reused,
      sizeGiB: Math.max(1, Math.ceil((bytes - FOOTER_SIZE) / GiB)),
    });
    if (staged.state === 'complete') {
      ctx.emit({ type: 'disk-ready', location: s.storageAccount, id: blob.url, reused: true });
      return ref(staged.bytes, true);
    }
    const remove = () => this.retrying('Blob.Delete', () => blob.deleteIfExists(), ctx);
    if (staged.state === 'stale') {
      ctx.log.warn({ blob: blob.url }, 'removing a blob of another source left under this release');
      await remove();
    }
    const image = await open();
    // bzip2 records no size: the blob is then created at the most the policy allows (page blobs are
    // sparse, so the bound costs nothing), the stream is refused past it, and the blob is cut to the VHD's
    // length once its end, and so its footer, is known (see uploadPages).
    const sizeUnknown = image.rawBytes === undefined;
    const bytes = image.rawBytes ?? image.maxDiskBytes + FOOTER_SIZE;
    if (sizeUnknown && bytes > PAGE_BLOB_MAX_BYTES)
      throw new PlumeError(
        'usage',
        `the VHD's size is unknown until it is read, and the bound it would be staged at (${image.maxDiskBytes / GiB} GiB, [images] max_volume_gib, plus its footer) is more than a page blob holds (8 TiB)`,
        'lower [images] max_volume_gib for this system',
      );
    if (sizeUnknown)
      ctx.log.info(
        { blob: blob.url, boundBytes: bytes },
        'the VHD size is unknown until it is read: staging it in a blob of the largest size allowed',
      );
    else checkVhdSize(bytes);
    // The footer is at the end of the stream; where the file lets it be read first, a file that is not a
    // fixed VHD is refused before the first byte goes out (otherwise before anything is committed).
    const footer = sizeUnknown ? undefined : await image.tail(FOOTER_SIZE, ctx.signal);
    if (footer) checkVhdFooter(footer, bytes);
    else ctx.log.debug('the VHD footer cannot be read ahead; it is checked once the stream is read');
    let written = staged.state === 'partial' ? staged.ranges : undefined;
    // A stopped run's pages are resumed only in a blob of the size this run would create. Of a VHD of
    // unknown size that is the bound: the pages it holds were read from the same file (its sha256 is in the
    // metadata) at the same offsets, and the block that may hold the footer is never among them (it is
    // written only after the checks). A blob of another size is restarted: the policy's bound changed, or
    // the run stopped between cutting the blob to the VHD's length and marking it complete (that blob lacks
    // its last block and would take a resize back up to resume: restarting is the simpler sound choice for
    // a window of two calls).
    if (staged.state === 'partial' && staged.bytes !== bytes) {
      ctx.log.info(
        { blob: blob.url, bytes: staged.bytes, expected: bytes },
        'restarting an interrupted upload: its blob is not the size this run needs',
      );
      await remove();
      written = undefined;
    }
    if (written) ctx.log.info({ blob: blob.url, ranges: written.length }, 'resuming an interrupted upload');
    let result;
    try {
      result = await uploadPages(
        blob,
        image,
        {
          bytes,
          sizeUnknown,
          pageBytes: this.settings.pageBytes,
          concurrency: this.settings.uploadConcurrency,
          metadata: { [META.release]: plan.key, [META.sha256]: sha256 },
          written,
        },
        ctx,
      );
    } catch (err) {
      // Bytes that are not the compose's (checksum, footer, a stream past the bound, no data) must never
      // become an image.
      if (err instanceof PlumeError && (err.kind === 'input' || err.kind === 'source')) await remove();
      throw err;
    }
    ctx.emit({ type: 'disk-ready', location: s.storageAccount, id: blob.url, reused: false });
    return {
      ...ref(result.bytes, false),
      summary: result.summary,
      bytesSent: result.bytesSent,
      blocksSent: result.pagesSent,
    };
  }

  /** The image definition the version goes in: created when missing; one that differs is not changed. */
  private async ensureDefinition(plan: TargetPlan, ctx: ProviderContext): Promise<void> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    let current: GalleryImage | undefined;
    try {
      current = await this.retrying(
        'GalleryImages_Get',
        () => c.compute.galleryImages.get(s.resourceGroup, s.gallery, s.definition),
        ctx,
      );
    } catch (err) {
      if (!isNotFound(err) && !isNotFound((err as { cause?: unknown }).cause)) throw err;
    }
    if (current) {
      const wrong = definitionProblems(current, s);
      if (wrong.length)
        throw new PlumeError(
          'provider',
          `image definition ${s.definition} exists but ${wrong.join('; ')}`,
          'Azure does not change these on a definition: fix the config, or move the definition aside by hand',
          { retryable: false },
        );
      return;
    }
    ctx.log.info({ definition: s.definition }, 'creating the image definition');
    await this.retrying(
      'GalleryImages_CreateOrUpdate',
      () =>
        c.compute.galleryImages.createOrUpdate(
          s.resourceGroup,
          s.gallery,
          s.definition,
          definitionResource(plan.primaryLocation, s, plan.description),
          this.lro(ctx),
        ),
      ctx,
    );
  }

  private targetRegions(plan: TargetPlan, s: AzureImage): TargetRegion[] {
    return locations(plan).map((name) => ({
      name,
      regionalReplicaCount: s.replicas[name] ?? s.replicaCount,
      storageAccountType: s.storageAccountType,
    }));
  }

  /**
   * Poll the version (its replication status per region) until `done` says so or the deadline passes; the
   * version as last seen either way. A version that vanished is an error.
   */
  private async waitVersion(
    s: AzureImage,
    done: (v: GalleryImageVersion, states: Record<string, RegionState>) => boolean,
    ctx: ProviderContext,
  ): Promise<GalleryImageVersion> {
    const deadline = Date.now() + this.settings.operationTimeoutMs;
    for (let poll = 1; ; poll++) {
      const v = await this.getVersion(s, ctx);
      if (!v)
        throw new PlumeError(
          'provider',
          `image version ${s.definition}/${s.version} vanished`,
          'run the release again',
        );
      if (done(v, regionStates(v)) || Date.now() >= deadline) return v;
      await sleep(
        Math.min(this.settings.pollMaxMs, this.settings.pollMinMs * poll, Math.max(0, deadline - Date.now())),
        undefined,
        { signal: ctx.signal },
      );
    }
  }

  async createImages(
    plan: TargetPlan,
    disk: DiskRef | undefined,
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const primary = plan.images.find((i) => i.location === plan.primaryLocation)!;
    await this.ensureDefinition(plan, ctx);
    let version = await this.getVersion(s, ctx);
    const reused = version !== undefined;
    if (
      version?.provisioningState === 'Failed' &&
      regionStates(version)[plan.primaryLocation] !== 'Completed'
    ) {
      ctx.log.warn({ version: s.version }, 'removing an image version Azure could not create');
      await this.retrying(
        'GalleryImageVersions_Delete',
        () =>
          c.compute.galleryImageVersions.delete(
            s.resourceGroup,
            s.gallery,
            s.definition,
            s.version,
            this.lro(ctx),
          ),
        ctx,
      );
      version = undefined;
    }
    if (!version) {
      if (!disk)
        throw new PlumeError(
          'internal',
          `no VHD to create version ${s.version} from`,
          'run the release again',
        );
      const storageAccountId = `/subscriptions/${s.subscription}/resourceGroups/${s.storageResourceGroup}/providers/Microsoft.Storage/storageAccounts/${s.storageAccount}`;
      await this.retrying(
        'GalleryImageVersions_CreateOrUpdate',
        // The operation is followed by reading the version, not through the poller: a run killed while
        // it replicates finds the version and waits for it the same way.
        () =>
          c.compute.galleryImageVersions
            .createOrUpdate(
              s.resourceGroup,
              s.gallery,
              s.definition,
              s.version,
              {
                location: plan.primaryLocation,
                tags: { ...plan.tags, 'plume-release': plan.key },
                publishingProfile: {
                  targetRegions: this.targetRegions(plan, s),
                  excludeFromLatest: s.excludeFromLatest,
                  ...(plan.deprecateAt ? { endOfLifeDate: new Date(plan.deprecateAt) } : {}),
                  storageAccountType: s.storageAccountType,
                },
                storageProfile: { osDiskImage: { source: { uri: disk.id, storageAccountId } } },
              },
              this.lro(ctx),
            )
            .submitted(),
        ctx,
      );
    }
    const ready = await this.waitVersion(
      s,
      // Until the gallery's own copy is settled: another region failing first fails the version, but the
      // copy may still complete (and the other region is replicated again by repair).
      (v, states) => {
        const primary = states[plan.primaryLocation];
        return (
          primary === 'Completed' ||
          primary === 'Failed' ||
          (v.provisioningState === 'Failed' && primary !== 'Replicating')
        );
      },
      ctx,
    );
    const states = regionStates(ready);
    if (states[plan.primaryLocation] !== 'Completed') {
      const detail = ready.replicationStatus?.summary?.find(
        (r) => regionKey(r.region ?? '') === plan.primaryLocation,
      )?.details;
      throw new PlumeError(
        'provider',
        `image version ${s.definition}/${s.version} is ${ready.provisioningState} in ${plan.primaryLocation}${detail ? `: ${detail}` : ''}`,
        ready.provisioningState === 'Failed'
          ? 'check the VHD, then run again'
          : 'run again: it is waited for',
        { retryable: false },
      );
    }
    // The gallery holds its own copy now: the staged VHD has served its purpose (this run's, or one a run
    // killed after the version's creation left behind). A failure to delete it is only worth a warning.
    const blob = c.blobs.getContainerClient(s.storageContainer).getPageBlobClient(blobName(plan));
    await blob
      .deleteIfExists()
      .catch((err: unknown) =>
        ctx.log.warn(
          { blob: blob.url, err: describeAzureError(err, 'Blob.Delete').message },
          'could not delete the staged VHD',
        ),
      );
    const id = ready.id!;
    ctx.emit({ type: 'image-ready', target: primary, id, reused, primary: true });
    return [{ target: primary, id }];
  }

  /** Add planned regions the version lacks (a config that grew), then wait for every region to complete. */
  async replicate(
    plan: TargetPlan,
    _primary: PublishedImage[],
    ctx: ProviderContext,
  ): Promise<TargetOutcome[]> {
    const s = azureImage(plan);
    const others = plan.images.filter((i) => i.location !== plan.primaryLocation);
    if (others.length === 0) return [];
    await this.ensureRegions(plan, ctx);
    const v = await this.waitVersion(
      s,
      (_v, states) =>
        others.every((i) => states[i.location] === 'Completed' || states[i.location] === 'Failed'),
      ctx,
    );
    const states = regionStates(v);
    return others.map((target) => {
      const state = states[target.location];
      if (state === 'Completed') {
        ctx.emit({ type: 'image-ready', target, id: v.id!, reused: false, primary: false });
        return { target, id: v.id! };
      }
      const error =
        state === undefined
          ? `not a target region of version ${s.version}`
          : `replication is ${state} after ${Math.round(this.settings.operationTimeoutMs / 60_000)} min`;
      ctx.emit({ type: 'target-failed', target, error });
      return { target, error };
    });
  }

  /** Make the version's target regions the plan's (regions replicate again when re-listed after failing). */
  private async ensureRegions(plan: TargetPlan, ctx: ProviderContext, force: string[] = []): Promise<void> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const v = await this.getVersion(s, ctx);
    if (!v)
      throw new PlumeError('provider', `image version ${s.version} is missing`, 'run the release again');
    const listed = new Set((v.publishingProfile?.targetRegions ?? []).map((r) => regionKey(r.name)));
    const missing = locations(plan).filter((l) => !listed.has(l));
    if (missing.length === 0 && force.length === 0) return;
    ctx.log.info({ version: s.version, regions: [...missing, ...force] }, 'replicating to regions');
    const update = (regions: TargetRegion[], wait: boolean) =>
      this.retrying(
        'GalleryImageVersions_Update',
        async () => {
          const poller = c.compute.galleryImageVersions.update(
            s.resourceGroup,
            s.gallery,
            s.definition,
            s.version,
            { publishingProfile: { targetRegions: regions } },
            this.lro(ctx),
          );
          await (wait ? poller : poller.submitted());
        },
        ctx,
      );
    const all = this.targetRegions(plan, s);
    // A region that failed replicates again only once it has left the list and come back; Azure takes one
    // operation on a version at a time, so the first is waited for. The second is followed by reading the
    // version's replication status (see waitVersion).
    if (force.length)
      await update(
        all.filter((r) => !force.includes(r.name)),
        true,
      );
    await update(all, false);
  }

  /** Share the gallery as the plan says: with the community, or with listed subscriptions and tenants. */
  private async share(plan: TargetPlan, ctx: ProviderContext): Promise<void> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const gallery = await this.getGallery(s, ctx);
    const todo = sharingPlan(gallery, plan.visibility, s.community);
    for (const step of todo) {
      ctx.log.info({ gallery: s.gallery, step: step.what }, 'sharing the gallery');
      if (step.gallery)
        await this.retrying(
          'Galleries_Update',
          () => c.compute.galleries.update(s.resourceGroup, s.gallery, step.gallery!, this.lro(ctx)),
          ctx,
        );
      if (step.sharing)
        await this.retrying(
          'GallerySharingProfile_Update',
          () =>
            c.compute.gallerySharingProfile.update(s.resourceGroup, s.gallery, step.sharing!, this.lro(ctx)),
          ctx,
        );
    }
  }

  private getGallery(s: AzureImage, ctx: ProviderContext): Promise<Gallery> {
    const c = this.clientsFor(s);
    return this.retrying(
      'Galleries_Get',
      () => c.compute.galleries.get(s.resourceGroup, s.gallery, { select: 'Permissions' }),
      ctx,
    );
  }

  /** Bring the version's excludeFromLatest and end of life to the plan's (a pre-release had neither). */
  private async fixVersion(plan: TargetPlan, ctx: ProviderContext): Promise<void> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const v = await this.getVersion(s, ctx);
    if (!v || versionProblems(v, s, plan.deprecateAt).length === 0) return;
    await this.retrying(
      'GalleryImageVersions_Update',
      () =>
        c.compute.galleryImageVersions.update(
          s.resourceGroup,
          s.gallery,
          s.definition,
          s.version,
          {
            publishingProfile: {
              excludeFromLatest: s.excludeFromLatest,
              ...(plan.deprecateAt ? { endOfLifeDate: new Date(plan.deprecateAt) } : {}),
            },
          },
          this.lro(ctx),
        ),
      ctx,
    );
  }

  async publish(plan: TargetPlan, images: PublishedImage[], ctx: ProviderContext): Promise<TargetOutcome[]> {
    try {
      await this.fixVersion(plan, ctx);
      await this.share(plan, ctx);
    } catch (err) {
      const error = errorMessage(err);
      return images.map((target) => {
        ctx.emit({ type: 'target-failed', target, error });
        return { target, error };
      });
    }
    return images.map((target) => {
      ctx.emit({ type: 'image-published', target, id: target.id });
      return { target, id: target.id };
    });
  }

  async verify(plan: TargetPlan, ctx: ProviderContext): Promise<VerifyReport> {
    const s = azureImage(plan);
    const c = this.clientsFor(s);
    const report: VerifyReport = { ok: [], problems: [] };
    const all = (kind: Problem['kind'], detail: string, id?: string) => {
      for (const target of plan.images) report.problems.push({ target, kind, detail, ...(id ? { id } : {}) });
    };
    let version: GalleryImageVersion | undefined;
    let gallery: Gallery;
    let definition: GalleryImage;
    try {
      gallery = await this.getGallery(s, ctx);
      definition = await this.retrying(
        'GalleryImages_Get',
        () => c.compute.galleryImages.get(s.resourceGroup, s.gallery, s.definition),
        ctx,
      ).catch((err: unknown) => {
        if (isNotFound((err as { cause?: unknown }).cause)) return {} as GalleryImage;
        throw err;
      });
      version = await this.getVersion(s, ctx);
    } catch (err) {
      all('error', errorMessage(err));
      return report;
    }
    if (!version || !definition.name) {
      all('missing', `no image version ${s.definition}/${s.version} in gallery ${s.gallery}`);
      return report;
    }
    const id = version.id!;
    const defWrong = definitionProblems(definition, s);
    const versionWrong = versionProblems(version, s, plan.deprecateAt);
    const wrong = [...defWrong, ...versionWrong];
    const states = regionStates(version);
    const shared = sharingPlan(gallery, plan.visibility, s.community);
    const info = gallery.sharingProfile?.communityGalleryInfo;
    const publicName = info?.communityGalleryEnabled ? info.publicNames?.[0] : undefined;
    const publishedId = plan.visibility.public && publicName ? communityVersionId(publicName, s) : id;
    const galleryShared =
      gallery.sharingProfile?.permissions !== undefined && gallery.sharingProfile.permissions !== 'Private';
    for (const target of plan.images) {
      const before = report.problems.length;
      const problem = (kind: Problem['kind'], detail: string) =>
        report.problems.push({ target, kind, detail, id });
      const state = states[target.location];
      if (state === undefined)
        problem('missing', `version ${s.version} is not replicated to ${target.location}`);
      else if (state === 'Failed') problem('failed', `replication to ${target.location} failed`);
      else if (state !== 'Completed')
        problem('not-available', `replication to ${target.location} is ${state}`);
      if (wrong.length) problem('attributes', wrong.join('; '));
      if (shared.length)
        problem(
          'not-public',
          `gallery ${s.gallery} is not shared as planned: ${shared.map((x) => x.what).join(', ')}`,
        );
      if (!plan.visibility.public && plan.visibility.accounts.length === 0 && galleryShared)
        problem(
          'public',
          `gallery ${s.gallery} is shared (${gallery.sharingProfile?.permissions}) but the release is private`,
        );
      if (report.problems.length === before) report.ok.push({ ...target, id: publishedId });
    }
    return report;
  }

  async repair(plan: TargetPlan, problems: Problem[], ctx: ProviderContext): Promise<void> {
    const s = azureImage(plan);
    const kinds = new Set(problems.map((p) => p.kind));
    for (const p of problems)
      ctx.log.warn({ location: p.target.location, problem: p.kind, detail: p.detail }, 'repairing');
    const hard = problems.find(
      (p) => p.kind === 'public' || p.kind === 'error' || (p.kind === 'missing' && !p.id),
    );
    if (hard)
      throw new PlumeError(
        'provider',
        `${p(hard)}`,
        hard.kind === 'public'
          ? 'plume never withdraws an image: stop sharing the gallery by hand if it must be private'
          : 'run the release again: it uploads the VHD anew and creates the version',
      );
    if (kinds.has('attributes')) {
      const c = this.clientsFor(s);
      const definition = await this.retrying(
        'GalleryImages_Get',
        () => c.compute.galleryImages.get(s.resourceGroup, s.gallery, s.definition),
        ctx,
      );
      const wrong = definitionProblems(definition, s);
      if (wrong.length)
        throw new PlumeError(
          'provider',
          `image definition ${s.definition}: ${wrong.join('; ')}`,
          'Azure does not change these on a definition: fix the config, or move the definition aside by hand',
        );
      await this.fixVersion(plan, ctx);
    }
    const failed = problems
      .filter((x) => x.kind === 'failed' || x.kind === 'missing')
      .map((x) => x.target.location);
    if (failed.length)
      await this.ensureRegions(
        plan,
        ctx,
        [...new Set(failed)].filter((l) => l !== plan.primaryLocation),
      );
    if (kinds.has('not-public')) await this.share(plan, ctx);
    const waiting = problems
      .filter((x) => x.kind === 'not-available' || x.kind === 'failed' || x.kind === 'missing')
      .map((x) => x.target.location);
    if (waiting.length)
      await this.waitVersion(
        s,
        (_v, states) => waiting.every((l) => states[l] === 'Completed' || states[l] === 'Failed'),
        ctx,
      );
  }

  listLocations(primary: string): Promise<string[]> {
    return Promise.resolve([primary]);
  }

  async listRelease(plan: TargetPlan, ctx: ProviderContext): Promise<PublishedImage[]> {
    const s = azureImage(plan);
    const v = await this.getVersion(s, ctx);
    if (!v) return [];
    const states = regionStates(v);
    return plan.images.filter((i) => states[i.location] === 'Completed').map((i) => ({ ...i, id: v.id! }));
  }
}

function p(problem: Problem): string {
  return `${problem.target.location}: ${problem.kind}: ${problem.detail}`;
}
