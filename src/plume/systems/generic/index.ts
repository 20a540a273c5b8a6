import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import type { PlumeConfig } from '../../config.js';
import type { ReleasePlan } from '../../plan.js';
import { AWS_RUNNABLE_ARCHES, awsArchitecture } from '../../providers/aws/arch.js';
import { compressionFromName } from '../../source/decompress.js';
import { fetchDocument } from '../../source/fetch.js';
import { checkSource } from '../../source/policy.js';
import type { SystemRegistry } from '../registry.js';
import { requireOneOf } from '../registry.js';
import { TargetToml, awsImageSettings, mergeTargets, parseSettings, targetFromToml } from '../settings.js';
import type { LocateContext, ReleaseRequest, SourceFacts, System, TargetSettings } from '../types.js';
import { sha256For } from './checksums.js';
import { render, unknownPlaceholder, type Values } from './template.js';

export { sha256For } from './checksums.js';

/** What a request gives the templates; names and tags may also use the build, region and volume type. */
const REQUEST_VALUES = [
  'channel',
  'version',
  'arch',
  'aws_arch',
  'timestamp',
  'respin',
  'compose_id',
  'label',
];
const NAME_VALUES = [...REQUEST_VALUES, 'build', 'region', 'volume_type'];

const ChannelToml = TargetToml.extend({ description: z.string().optional() });

/**
 * `[systems.NAME]` for a system plume has no code for. Besides what is below, the table takes the keys of
 * `[aws]` (base_region, regions, volume_types, visibility, share_with, profile, partition, ...) for all its
 * channels; a channel given as a table may set them for itself.
 */
export const GenericToml = TargetToml.extend({
  description: z.string().min(1).optional(),
  channels: z.union([
    z.array(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'a channel name')).min(1),
    z.record(z.string().regex(/^[a-z0-9][a-z0-9._-]*$/, 'a channel name'), ChannelToml),
  ]),
  arches: z
    .array(z.string())
    .min(1)
    .refine(
      (a) => a.every((x) => awsArchitecture(x)),
      `arches must be among ${AWS_RUNNABLE_ARCHES.join(', ')}`,
    ),
  /** URL template of the image, e.g. `https://dl.example.org/{channel}/{version}/img-{version}.{arch}.raw.xz`. */
  source: z.string().min(1),
  /** URL template of its sha256: a SHA256SUMS (or CHECKSUM) list, or a file holding the digest. */
  checksum: z.string().min(1),
  compression: z.enum(['xz', 'bzip2', 'gzip', 'none']).optional(),
  /** The image's name without region or volume type; default `{system}-{channel}-{version}-{arch}`. */
  build: z.string().min(1).optional(),
  /** One image per region and volume type, so it must tell them apart; default `{build}-{region}-{volume_type}`. */
  name: z.string().min(1).default('{build}-{region}-{volume_type}'),
  image_description: z.string().min(1).default('{build}'),
  tags: z.record(z.string(), z.string()).default({ Channel: '{channel}', Version: '{version}' }),
  boot_mode: z.enum(['uefi', 'uefi-preferred', 'legacy-bios']).optional(),
  root_device: z
    .string()
    .regex(/^\/dev\/[a-z0-9]+$/, 'a device name like /dev/sda1')
    .default('/dev/sda1'),
});
export type GenericToml = z.infer<typeof GenericToml>;

interface GenericFacts extends SourceFacts {
  channel: string;
  arch: string;
  values: Values;
  imageUrl: string;
  sha256: string;
}

/** Hosts a template names literally (an operator wrote them, so they are trusted sources). */
function templateHost(template: string): string | undefined {
  try {
    const url = new URL(template.replace(/\{[a-z_]+\}/g, 'x'));
    return /\{/.test(template.split('/')[2] ?? '') ? undefined : url.host;
  } catch {
    return undefined;
  }
}

/** `20240501`, `2024-05-01` or an ISO time, as milliseconds; anything else is no date. */
function buildDate(timestamp: string | undefined): number | undefined {
  if (!timestamp) return undefined;
  const iso = /^\d{8}$/.test(timestamp)
    ? `${timestamp.slice(0, 4)}-${timestamp.slice(4, 6)}-${timestamp.slice(6, 8)}`
    : timestamp;
  const t = Date.parse(iso);
  return Number.isNaN(t) ? undefined : t;
}

function awsNameProblem(name: string): string | undefined {
  if (name.length < 3 || name.length > 128) return 'must be 3 to 128 characters long';
  if (!/^[A-Za-z0-9()[\]./'@_ -]+$/.test(name))
    return "may only hold letters, digits, spaces and ( ) [ ] . / - ' @ _";
  return undefined;
}

/** Build a system from its config section; every template is checked now. */
export function genericSystem(name: string, raw: Record<string, unknown>): System {
  const where = `systems.${name}`;
  if (!/^[a-z0-9][a-z0-9_-]*$/.test(name))
    throw new PlumeError('usage', `config: [${where}]: a system name is lower case letters, digits, - and _`);
  const def = parseSettings(GenericToml, raw, where);
  for (const [key, template, allowed] of [
    ['source', def.source, REQUEST_VALUES],
    ['checksum', def.checksum, REQUEST_VALUES],
    ['build', def.build ?? '', REQUEST_VALUES],
    ['name', def.name, NAME_VALUES],
    [
      'image_description',
      def.image_description,
      NAME_VALUES.filter((v) => v !== 'region' && v !== 'volume_type'),
    ],
    ...Object.entries(def.tags).map(([k, v]) => [`tags.${k}`, v, NAME_VALUES] as const),
  ] as const) {
    const bad = unknownPlaceholder(template, allowed);
    if (bad)
      throw new PlumeError(
        'usage',
        `config: ${where}.${key}: unknown placeholder {${bad}}`,
        `use ${allowed.map((a) => `{${a}}`).join(', ')}`,
      );
  }
  if (!/\{region\}/.test(def.name))
    throw new PlumeError(
      'usage',
      `config: ${where}.name must contain {region}`,
      'copies keep their names per region; e.g. "{build}-{region}-{volume_type}"',
    );
  const channels: Record<string, z.infer<typeof ChannelToml>> = Array.isArray(def.channels)
    ? Object.fromEntries(def.channels.map((c) => [c, {}]))
    : def.channels;
  const channelNames = Object.keys(channels);
  const {
    description: _d,
    channels: _c,
    arches: _a,
    source: _s,
    checksum: _k,
    compression: _z,
    build: _b,
    name: _n,
    image_description: _i,
    tags: _t,
    boot_mode: _m,
    root_device: _r,
    ...targetToml
  } = def;
  const systemTarget = targetFromToml(targetToml);

  return {
    name,
    description: def.description ?? `${name} (defined in the config file)`,
    channels: () =>
      channelNames.map((c) => ({ name: c, description: channels[c]?.description ?? `${name} ${c}` })),
    arches: () => def.arches,
    imageTypes: () => [],
    sourceHosts: () =>
      [templateHost(def.source), templateHost(def.checksum)].filter((h): h is string => h !== undefined),

    channelTargets(channel, environment): Partial<TargetSettings>[] {
      requireOneOf('channel', channel, channelNames, name);
      if (environment)
        throw new PlumeError('usage', `${name} has no environments (--environment ${environment})`);
      const { description: _desc, ...own } = channels[channel] ?? {};
      return [mergeTargets(systemTarget, targetFromToml(own))];
    },

    async locate(request: ReleaseRequest, ctx: LocateContext): Promise<GenericFacts> {
      const channel = requireOneOf('channel', request.channel, channelNames, name);
      const arch = requireOneOf('arch', request.arch ?? request.board, def.arches, name);
      if (!request.version)
        throw new PlumeError('usage', `--version is required for ${name}`, 'give the version to release');
      const values: Values = {
        channel,
        version: request.version,
        arch,
        aws_arch: awsArchitecture(arch),
        timestamp: request.timestamp,
        respin: request.respin === undefined ? undefined : String(request.respin),
        compose_id: request.composeId,
        label: request.label,
      };
      values.build = render(def.build ?? `${name}-{channel}-{version}-{arch}`, values, `${where}.build`);
      const imageUrl = checkSource(
        render(def.source, values, `${where}.source`, encodeURIComponent),
        ctx.policy,
      );
      const sumsUrl = checkSource(
        render(def.checksum, values, `${where}.checksum`, encodeURIComponent),
        ctx.policy,
      );
      const fileName = decodeURIComponent(imageUrl.pathname.split('/').pop() ?? '');
      const sha256 = sha256For(
        (await fetchDocument(sumsUrl, ctx.policy, ctx.signal)).toString('utf8'),
        fileName,
        sumsUrl.href,
      );
      return { request, channel, arch, values, imageUrl: imageUrl.href, sha256 };
    },

    plan(raw: SourceFacts, settings: TargetSettings): ReleasePlan {
      const f = raw as GenericFacts;
      const build = f.values.build!;
      const targets = settings.locations.flatMap((location) =>
        settings.variants.map((variant) => {
          const imageName = render(
            def.name,
            { ...f.values, region: location, volume_type: variant },
            `${where}.name`,
          );
          const problem = awsNameProblem(imageName);
          if (problem)
            throw new PlumeError(
              'usage',
              `${where}.name makes ${JSON.stringify(imageName)}, which ${problem}`,
            );
          return { location, variant, name: imageName };
        }),
      );
      const names = new Set(targets.map((t) => `${t.location} ${t.name}`));
      if (names.size !== targets.length)
        throw new PlumeError(
          'usage',
          `${where}.name gives several images in one region the same name`,
          'add {volume_type} to it, or publish one volume type',
        );
      const awsArch = awsArchitecture(f.arch)!;
      const tagValues = { ...f.values, region: settings.primaryLocation };
      return {
        key: `${name}/${f.channel}/${f.values.version}/${f.arch}${settings.name ? `/${settings.name}` : ''}`,
        system: name,
        channel: f.channel,
        arch: f.arch,
        version: f.values.version!,
        ...(f.request.composeId ? { compose: f.request.composeId } : {}),
        ...(f.request.respin !== undefined ? { respin: f.request.respin } : {}),
        build,
        source: {
          url: f.imageUrl,
          sha256: f.sha256,
          compression: def.compression ?? compressionFromName(new URL(f.imageUrl).pathname),
          volumeGiB: settings.volumeGiB,
        },
        provider: 'aws',
        primaryLocation: settings.primaryLocation,
        targets,
        description: render(def.image_description, f.values, `${where}.image_description`),
        tags: Object.fromEntries(
          Object.entries(def.tags).map(([k, v]) => [k, render(v, tagValues, `${where}.tags.${k}`)]),
        ),
        visibility: settings.visibility,
        // Counted from the build's date, when --timestamp gives one (the plan stays a pure function).
        deprecateAt:
          settings.deprecateAfterDays && buildDate(f.values.timestamp)
            ? new Date(
                buildDate(f.values.timestamp)! + settings.deprecateAfterDays * 86_400_000,
              ).toISOString()
            : undefined,
        aws: awsImageSettings(settings, awsArch, {
          rootDeviceName: def.root_device,
          bootMode: def.boot_mode,
          imdsV2ByDefault: true,
        }),
      };
    },
  };
}

/**
 * The registry with every `[systems.NAME]` that is not a built-in system turned into a system: another
 * distribution publishes with a config file and no code. Sections of built-in systems are their settings.
 */
export function withConfiguredSystems(registry: SystemRegistry, config: PlumeConfig): SystemRegistry {
  const defined = Object.entries(config.systems)
    .filter(([name]) => !registry.has(name))
    .map(([name, section]) => genericSystem(name, section));
  return defined.length > 0 ? registry.extend(defined) : registry;
}
