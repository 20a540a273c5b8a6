import { PlumeError } from '../../../shared/errors.js';
import { childUrl } from '../../source/policy.js';
import { deprecationTime, targetPlanKey, type ReleasePlan, type TargetPlan } from '../../plan.js';
import { requireOneOf } from '../registry.js';
import { environmentName } from '../settings.js';
import type { LifecyclePolicyToml } from '../../lifecycle/policy.js';
import type { LocateContext, ReleaseRequest, SourceFacts, System, TargetSettings } from '../types.js';
import { parseComposeId } from './compose-id.js';
import { FEDORA_ARCHES, composeLocation, releasesForCompose } from './compose.js';
import { IMAGE_TYPES, selectArtifact, type SelectedImage } from './images.js';
import { LAST_ATOMIC_RELEASE, composeMeaning } from './meaning.js';
import { fedimgBuildName, parseLabel, subvariantOf, uploaderImageName } from './naming.js';
import { parseComposeInfo, parseImagesJson } from './productmd.js';
import { CHANNEL_BASE_URLS, environmentLayers, fedoraSettings } from './settings.js';
import { DECISIONS, type FedoraRelease } from './targets.js';

export { parseComposeId, type ComposeId } from './compose-id.js';
export { composeLocation, releasesForCompose } from './compose.js';
export {
  composeMeaning,
  LAST_ATOMIC_RELEASE,
  type ComposeDescription,
  type ComposeMeaning,
  type FedoraChannel,
  type FedoraImageType,
} from './meaning.js';
export {
  fedimgBuildName,
  parseLabel,
  subvariantOf,
  uploaderImageName,
  type ComposeLabel,
  type LabelKind,
  type UploaderNameFacts,
} from './naming.js';

const CHANNELS = [
  { name: 'rawhide', description: 'Rawhide nightly composes (Fedora-Rawhide-YYYYMMDD.n.N)' },
  { name: 'branched', description: 'nightly composes of the branched release before it ships (.n ids)' },
  { name: 'updates', description: 'two-week AtomicHost releases (Fedora-AtomicHost composes)' },
  { name: 'cloud', description: 'Fedora Cloud release composes (Beta and RC labels, two-week composes)' },
];

export interface FedoraFacts extends SourceFacts {
  location: string;
  composeId: string;
  composeDate: string;
  composeType: string;
  respin: number;
  label?: string;
  version: string;
  releaseShort: string;
  arch: 'x86_64' | 'aarch64';
  imageType: string;
  /** The compose's artifact for each provider it has one for. */
  artifacts: Record<string, { image: SelectedImage; url: string }>;
  /** Providers the compose has no artifact for, and why. */
  missing: { provider: string; reason: string }[];
}

function isoDate(yyyymmdd: string): string {
  return /^\d{8}$/.test(yyyymmdd)
    ? `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}`
    : yyyymmdd;
}

/** plume's old `--arch amd64` meant x86_64, and its `-A/--architecture` defaulted to x86_64. */
function archOf(request: ReleaseRequest): string {
  return request.arch === undefined || request.arch === 'amd64' ? 'x86_64' : request.arch;
}

/**
 * Where the compose is: `--compose` (what joystick passes), or plume's old `--compose-id` under the
 * channel's compose directory.
 */
function composeUrl(request: ReleaseRequest, baseUrls: Record<string, string | undefined>): string {
  if (request.compose) return composeLocation(request.compose);
  if (request.composeId) {
    const base = baseUrls[request.channel] ?? CHANNEL_BASE_URLS[request.channel]!;
    return `${base.replace(/\/+$/, '')}/${encodeURIComponent(request.composeId)}/compose`;
  }
  throw new PlumeError(
    'usage',
    '--compose (or --compose-id) is required for fedora',
    'give the URL of the compose (its compose/ directory), or its id',
  );
}

/** Old command lines said what they expected (`--version 28 --timestamp 20180321`): hold the compose to it. */
function expectMatch(what: string, expected: string | undefined, actual: string, compose: string): void {
  if (expected !== undefined && expected !== '' && expected.toLowerCase() !== actual.toLowerCase())
    throw new PlumeError(
      'usage',
      `compose ${compose} has ${what} ${actual}, not ${expected}`,
      `check --${what} and the compose`,
    );
}

const NIGHTLY: LifecyclePolicyToml = { deprecate_after_days: 14, delete_after_days: 30, keep_newest: 3 };
const RELEASE: LifecyclePolicyToml = { deprecate_superseded: true, delete_after_days: 0, ga: true };

export const fedora: System = {
  name: 'fedora',
  description: 'Fedora Cloud Base and AtomicHost images from Pungi composes',
  channels: () => CHANNELS,
  arches: () => [...FEDORA_ARCHES],
  imageTypes: () => Object.keys(IMAGE_TYPES),
  sourceHosts: () => ['kojipkgs.fedoraproject.org', 'dl.fedoraproject.org'],

  // Fedora's cloud images are 5 GiB raw (Cloud Base) to 6 GiB (Atomic Host); 16 leaves room to grow and
  // stops a bomb long before it costs anything.
  imageLimits: () => ({ maxVolumeGiB: 16 }),
  // Nightlies go after a month (the newest 3 always stay); releases are deprecated when superseded and
  // never deleted.
  lifecycleDefaults: () => ({ rawhide: NIGHTLY, branched: NIGHTLY, cloud: RELEASE, updates: RELEASE }),

  providers: () => Object.keys(DECISIONS),

  channelTargets(channel, environment, raw, provider) {
    requireOneOf(
      'channel',
      channel,
      CHANNELS.map((c) => c.name),
      'fedora',
    );
    return [environmentLayers(channel, environment, fedoraSettings(raw), provider)];
  },

  async locate(request: ReleaseRequest, ctx: LocateContext): Promise<FedoraFacts> {
    requireOneOf(
      'channel',
      request.channel,
      CHANNELS.map((c) => c.name),
      'fedora',
    );
    const arch = requireOneOf('arch', archOf(request), FEDORA_ARCHES, 'fedora') as FedoraFacts['arch'];
    const imageType = requireOneOf(
      'image-type',
      request.imageType ?? 'Cloud-Base',
      this.imageTypes(),
      'fedora',
    );
    const settings = fedoraSettings(ctx.settings);
    const baseUrls = Object.fromEntries(Object.entries(settings.channels).map(([k, v]) => [k, v.base_url]));

    const location = ctx.source.check(composeUrl(request, baseUrls));
    const imagesUrl = childUrl(location, 'metadata/images.json');
    const images = parseImagesJson(await ctx.source.document(imagesUrl), imagesUrl.href);
    const compose = images.payload.compose;
    expectMatch('compose-id', request.composeId, compose.id, compose.id);

    // composeinfo.json is the truth about the release version and label (older or partial composes may
    // lack it): what a command line or a message says must agree with it, and fills in only what it lacks.
    let version: string | undefined;
    let releaseShort: string | undefined;
    let label = request.label;
    try {
      const infoUrl = childUrl(location, 'metadata/composeinfo.json');
      const info = parseComposeInfo(await ctx.source.document(infoUrl), infoUrl.href);
      version = info.payload.release.version;
      releaseShort = info.payload.release.short;
      const stated = info.payload.compose.label ?? undefined;
      if (stated) {
        expectMatch('label', request.label, stated, compose.id);
        label = stated;
      }
    } catch (err) {
      if (!(err instanceof PlumeError) || err.kind !== 'source') throw err;
      ctx.log.debug({ err: err.message }, 'no composeinfo.json; deriving the release from the compose id');
    }
    const parsedId = parseComposeId(compose.id);
    if (version) expectMatch('version', request.version, version, compose.id);
    if (request.respin !== undefined)
      expectMatch('respin', String(request.respin), String(compose.respin), compose.id);
    version ??= request.version ?? parsedId?.version;
    releaseShort ??= parsedId?.releaseShort ?? 'Fedora';
    if (!version)
      throw new PlumeError(
        'input',
        `cannot tell the Fedora version of compose ${compose.id}`,
        'pass --version',
      );
    expectMatch('timestamp', request.timestamp, compose.date, compose.id);

    const meaning = composeMeaning({
      composeId: compose.id,
      releaseShort,
      composeType: compose.type,
      composeLabel: label ?? null,
      releaseVersion: version,
      location: location.href,
    });
    if (meaning.ours && meaning.channel !== request.channel)
      ctx.log.warn(
        { compose: compose.id, channel: request.channel, expected: meaning.channel },
        `this compose belongs to the ${meaning.channel} channel`,
      );
    // The cloud channel carries Atomic Host only where a release's own compose held it (up to Fedora 29).
    if (
      imageType === 'AtomicHost' &&
      request.channel === 'cloud' &&
      !(meaning.ours && meaning.channel === 'cloud' && meaning.imageTypes.includes('AtomicHost'))
    )
      throw new PlumeError(
        'usage',
        `AtomicHost is not released on the cloud channel from compose ${compose.id}: only from the release composes of Fedora ${LAST_ATOMIC_RELEASE} and before`,
        'use --channel updates or branched',
      );

    // Each provider's file; a provider the compose has none for is left out with the reason, unless no
    // provider has one (then the compose cannot be published, and that is the error).
    const artifacts: FedoraFacts['artifacts'] = {};
    const missing: FedoraFacts['missing'] = [];
    let firstMissing: PlumeError | undefined;
    for (const provider of ctx.providers) {
      let image: SelectedImage;
      try {
        image = selectArtifact(images, imageType, arch, provider);
      } catch (err) {
        if (!(err instanceof PlumeError) || err.kind !== 'input') throw err;
        firstMissing ??= err;
        missing.push({ provider, reason: err.oneLine() });
        continue;
      }
      const url = ctx.source.check(childUrl(location, image.path).href);
      artifacts[provider] = { image, url: url.href };
    }
    if (Object.keys(artifacts).length === 0 && firstMissing) throw firstMissing;
    return {
      request,
      location: location.href,
      composeId: compose.id,
      composeDate: compose.date,
      composeType: compose.type,
      respin: compose.respin,
      label,
      version,
      releaseShort,
      arch,
      imageType,
      artifacts,
      missing,
    };
  },

  plan(raw: SourceFacts, targets: TargetSettings[]): ReleasePlan {
    const f = raw as FedoraFacts;
    const label = parseLabel(f.label);
    const buildOf = (image: SelectedImage) =>
      fedimgBuildName(image.path, { version: f.version, arch: f.arch, label });
    const first = f.artifacts.aws ?? Object.values(f.artifacts)[0];
    if (!first)
      throw new PlumeError(
        'input',
        `compose ${f.composeId} has nothing to publish: ${f.missing.map((m) => `${m.provider}: ${m.reason}`).join('; ')}`,
      );
    const release: FedoraRelease = {
      channel: f.request.channel,
      version: f.version,
      arch: f.arch,
      respin: f.respin,
      labelKind: label.kind,
      date: f.composeDate,
    };
    const env = environmentName(f.request.environment);
    const key = `fedora/${f.request.channel}/${f.composeId}/${f.imageType}/${f.arch}${env === 'production' ? '' : `/${env}`}`;
    const date = isoDate(f.composeDate);
    const planned: TargetPlan[] = [];
    for (const target of targets) {
      const artifact = f.artifacts[target.provider];
      const decide = DECISIONS[target.provider];
      if (!artifact || !decide) continue;
      const build = buildOf(artifact.image);
      planned.push({
        key: targetPlanKey(key, target.name, target.provider === 'aws' && target.name === 'aws'),
        provider: target.provider,
        name: target.name,
        architecture: f.arch,
        build,
        description: `${build} (compose ${f.composeId})`,
        tags: {
          Channel: f.request.channel,
          Version: f.version,
          ComposeID: f.composeId,
          Date: date,
          Arch: f.arch,
          Build: build,
          ImageType: f.imageType,
        },
        source: {
          url: artifact.url,
          sha256: artifact.image.checksums.sha256.toLowerCase(),
          compression: decide.compression,
          size: artifact.image.size,
          volumeGiB: target.volumeGiB,
        },
        primaryLocation: target.primaryLocation,
        images: target.locations.flatMap((location) =>
          target.variants.map((variant) => ({
            location,
            variant,
            name: decide.imageName(build, release, location, variant),
          })),
        ),
        visibility: target.visibility,
        deprecateAt: deprecationTime(date, target.deprecateAfterDays),
        settings: { ...target.settings, ...decide.settings(build, release) },
      });
    }
    return {
      key,
      system: 'fedora',
      channel: f.request.channel,
      arch: f.arch,
      imageType: f.imageType,
      version: f.version,
      compose: f.composeId,
      respin: f.respin,
      date,
      label: f.label,
      build: buildOf(first.image),
      targets: planned,
      skipped: f.missing,
    };
  },

  releasesForCompose,

  uploaderAnnouncement(plan: ReleasePlan) {
    const release = Number(plan.version);
    // fedora-image-uploader's messages carry the release as a number; Rawhide has none to give.
    if (!Number.isInteger(release) || !plan.imageType || !plan.compose) return undefined;
    return {
      imageName: uploaderImageName({
        imageType: plan.imageType,
        arch: plan.arch,
        version: plan.version,
        label: parseLabel(plan.label),
        composeId: plan.compose,
      }),
      subvariant: subvariantOf(plan.imageType),
      release,
    };
  },
};
