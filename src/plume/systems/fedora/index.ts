import { PlumeError } from '../../../shared/errors.js';
import { fetchDocument } from '../../source/fetch.js';
import { checkSource, childUrl } from '../../source/policy.js';
import type { ReleasePlan } from '../../plan.js';
import { requireOneOf } from '../registry.js';
import type { LocateContext, ReleaseRequest, SourceFacts, System, TargetSettings } from '../types.js';
import { parseComposeId } from './compose-id.js';
import { amiName, buildName, selectImage, type SelectedImage } from './images.js';
import { parseComposeInfo, parseImagesJson } from './productmd.js';

const CHANNELS = [
  { name: 'rawhide', description: 'Rawhide nightly composes (Fedora-Rawhide-YYYYMMDD.n.N)' },
  { name: 'branched', description: 'nightly composes of the branched release before it ships' },
  { name: 'updates', description: 'updates composes of released versions' },
  { name: 'cloud', description: 'Fedora Cloud release composes (Beta and RC, two-week composes)' },
];
const ARCHES = ['x86_64', 'aarch64'];
const AWS_ARCH = { x86_64: 'x86_64', aarch64: 'arm64' } as const;

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
  image: SelectedImage;
  imageUrl: string;
}

/** `…/Fedora-Cloud-30-20190611.0` and `…/Fedora-Cloud-30-20190611.0/compose` both mean the latter. */
export function composeLocation(location: string): string {
  const trimmed = location.replace(/\/+$/, '');
  return /\/compose$/.test(trimmed) ? trimmed : `${trimmed}/compose`;
}

function isoDate(yyyymmdd: string): string {
  return /^\d{8}$/.test(yyyymmdd)
    ? `${yyyymmdd.slice(0, 4)}-${yyyymmdd.slice(4, 6)}-${yyyymmdd.slice(6, 8)}`
    : yyyymmdd;
}

export const fedora: System = {
  name: 'fedora',
  description: 'Fedora Cloud Base and AtomicHost images from Pungi composes',
  channels: () => CHANNELS,
  arches: () => ARCHES,
  imageTypes: () => ['Cloud-Base', 'AtomicHost'],
  sourceHosts: () => ['kojipkgs.fedoraproject.org', 'dl.fedoraproject.org'],

  async locate(request: ReleaseRequest, ctx: LocateContext): Promise<FedoraFacts> {
    requireOneOf(
      'channel',
      request.channel,
      CHANNELS.map((c) => c.name),
      'fedora',
    );
    const arch = requireOneOf('arch', request.arch, ARCHES, 'fedora') as FedoraFacts['arch'];
    const imageType = requireOneOf(
      'image-type',
      request.imageType ?? 'Cloud-Base',
      this.imageTypes(),
      'fedora',
    );
    if (imageType === 'AtomicHost' && request.channel === 'cloud')
      throw new PlumeError(
        'usage',
        'AtomicHost is not released on the cloud channel',
        'use --channel updates or branched',
      );
    if (!request.compose)
      throw new PlumeError(
        'usage',
        '--compose is required for fedora',
        'give the URL of the compose (its compose/ directory)',
      );

    const location = checkSource(composeLocation(request.compose), ctx.policy);
    const imagesUrl = childUrl(location, 'metadata/images.json');
    const images = parseImagesJson(await fetchDocument(imagesUrl, ctx.policy, ctx.signal), imagesUrl.href);
    const compose = images.payload.compose;

    // composeinfo.json knows the release version and label; older or partial composes may lack it.
    let version: string | undefined;
    let releaseShort: string | undefined;
    let label = request.label;
    try {
      const infoUrl = childUrl(location, 'metadata/composeinfo.json');
      const info = parseComposeInfo(await fetchDocument(infoUrl, ctx.policy, ctx.signal), infoUrl.href);
      version = info.payload.release.version;
      releaseShort = info.payload.release.short;
      label ??= info.payload.compose.label ?? undefined;
    } catch (err) {
      if (!(err instanceof PlumeError) || err.kind !== 'source') throw err;
      ctx.log.debug({ err: err.message }, 'no composeinfo.json; deriving the release from the compose id');
    }
    const parsedId = parseComposeId(compose.id);
    version ??= request.version ?? parsedId?.version;
    releaseShort ??= parsedId?.releaseShort ?? 'Fedora';
    if (!version)
      throw new PlumeError(
        'input',
        `cannot tell the Fedora version of compose ${compose.id}`,
        'pass --version',
      );

    const image = selectImage(images, imageType, arch);
    const imageUrl = childUrl(location, image.path);
    checkSource(imageUrl.href, ctx.policy);
    return {
      request,
      location: location.href,
      composeId: compose.id,
      composeDate: compose.date,
      composeType: compose.type,
      respin: request.respin ?? compose.respin,
      label,
      version,
      releaseShort,
      arch,
      imageType,
      image,
      imageUrl: imageUrl.href,
    };
  },

  plan(raw: SourceFacts, settings: TargetSettings): ReleasePlan {
    const f = raw as FedoraFacts;
    const build = buildName(f.image.path);
    const awsArch = AWS_ARCH[f.arch];
    const targets = settings.locations.flatMap((location) =>
      settings.variants.map((variant) => ({
        location,
        variant,
        name: amiName(build, location, variant, f.respin),
      })),
    );
    return {
      key: `fedora/${f.request.channel}/${f.composeId}/${f.imageType}/${f.arch}`,
      system: 'fedora',
      channel: f.request.channel,
      arch: f.arch,
      imageType: f.imageType,
      version: f.version,
      compose: f.composeId,
      respin: f.respin,
      date: isoDate(f.composeDate),
      label: f.label,
      build,
      source: {
        url: f.imageUrl,
        sha256: f.image.checksums.sha256.toLowerCase(),
        compression: 'xz',
        size: f.image.size,
        volumeGiB: settings.volumeGiB,
      },
      provider: 'aws',
      primaryLocation: settings.primaryLocation,
      targets,
      description: `${build} (compose ${f.composeId})`,
      tags: {
        Channel: f.request.channel,
        Version: f.version,
        ComposeID: f.composeId,
        Date: isoDate(f.composeDate),
        Arch: awsArch,
        Build: build,
        ImageType: f.imageType,
      },
      visibility: settings.visibility,
      deprecateAt: settings.deprecateAfterDays
        ? new Date(
            Date.parse(isoDate(f.composeDate)) + settings.deprecateAfterDays * 86_400_000,
          ).toISOString()
        : undefined,
      aws: {
        partition: settings.partition,
        profile: settings.profile,
        architecture: awsArch,
        // x86_64 instances still boot BIOS where UEFI is missing; Graviton is UEFI only.
        bootMode: awsArch === 'arm64' ? 'uefi' : 'uefi-preferred',
        imdsSupport: settings.imdsV2 === false ? undefined : 'v2.0',
        enaSupport: true,
        sriovNetSupport: 'simple',
        rootDeviceName: '/dev/sda1',
      },
    };
  },
};
