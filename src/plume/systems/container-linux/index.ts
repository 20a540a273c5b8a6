import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { access, constants } from 'node:fs/promises';
import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import { targetPlanKey, type ReleasePlan, type SettingsLayer, type TargetPlan } from '../../plan.js';
import { signatureCreationTime, verifyDetachedSignature } from '../openpgp.js';
import { requireOneOf } from '../registry.js';
import { parseSettings } from '../settings.js';
import type { LocateContext, ReleaseRequest, SourceFacts, System, TargetSettings } from '../types.js';
import { releaseFiles } from './outputs.js';
import {
  AZURE_FILE,
  BOARDS,
  CHANNELS,
  GCE_FILE,
  IMAGE_FILE,
  SIGNATURE_SUFFIX,
  VOLUME_GIB,
  AZURE_VOLUME_GIB,
  VOLUME_TYPE,
  amiName,
  azureDefinition,
  azureVersionName,
  gceFamily,
  gceImageDescription,
  gceImageName,
  imageDescription,
  slug,
  type ChannelSpec,
} from './specs.js';

export { amiList, amiListFiles, releaseFiles } from './outputs.js';
export { CHANNELS, amiName, azureDefinition, azureVersionName, gceFamily, gceImageName } from './specs.js';

const NAME = 'container-linux';

/**
 * A partition as the config writes it: its name, and AWS's target keys (validated by the AWS provider),
 * of which base_region and regions are required, since a partition has no region list to fall back on.
 */
const PartitionToml = z.looseObject({
  name: z.string().min(1),
  base_region: z.string(),
  regions: z.array(z.string()).min(1),
});

/** A provider's table (`gcp`, `azure`), validated by that provider. */
const ProviderTable = z.record(z.string(), z.unknown()).optional();

/**
 * `[systems.container-linux]`: the signing key, and per channel where builds are and where they go. GCE and
 * Azure targets start from `[gcp]` and `[azure]`; `[systems.container-linux.gcp]` (or `.azure`) and then the
 * channel's own `gcp` (or `azure`) table say what differs (mantle's channels used their own GCE projects).
 */
const Settings = z.strictObject({
  verify_key: z.string().min(1).optional(),
  /** Whose builds the user channel publishes (default $USER). */
  user: z.string().min(1).optional(),
  volume_type: z.string().min(1).optional(),
  volume_size_gib: z.number().int().min(1).max(16384).optional(),
  gcp: ProviderTable,
  azure: ProviderTable,
  channels: z
    .record(
      z.string(),
      z.strictObject({
        base_url: z.url().optional(),
        /** Replaces the channel's partitions (plume's built-in list) when given. */
        partitions: z.array(PartitionToml).min(1).optional(),
        gcp: ProviderTable,
        azure: ProviderTable,
      }),
    )
    .default({}),
});
type Settings = z.infer<typeof Settings>;

function settingsOf(raw: Record<string, unknown> | undefined): Settings {
  return parseSettings(Settings, raw, `systems.${NAME}`);
}

function channelSpec(channel: string): ChannelSpec {
  requireOneOf(
    'channel',
    channel,
    CHANNELS.map((c) => c.name),
    NAME,
  );
  return CHANNELS.find((c) => c.name === channel)!;
}

/** One provider's file of the build, beside its detached signature. */
export interface Artifact {
  url: string;
  signatureUrl: string;
}

export interface ContainerLinuxFacts extends SourceFacts {
  channel: string;
  board: string;
  version: string;
  baseName: string;
  baseDescription: string;
  /** Each provider's file, for the providers the release is for that the build has one for. */
  artifacts: Record<string, Artifact>;
  /** Providers left out, and why. */
  missing: { provider: string; reason: string }[];
  /**
   * The day (`YYYYMMDD`) the build's GCE archive was signed, from its signature: the date mantle's GCE
   * names carry, the same on every run (see gceSignedDay).
   */
  gceDay?: string;
  /** Absent when none is configured: only an upload needs it (see verifySource). */
  keyFile?: string;
}

/** Each provider's file in a Container Linux build directory. */
const PROVIDER_FILES: Record<string, string> = { aws: IMAGE_FILE, gcp: GCE_FILE, azure: AZURE_FILE };

/** CL's Azure definitions are published as CoreOS / CoreOS, as the Marketplace's `CoreOS:CoreOS:{Channel}`. */
const AZURE_IDENTIFIER: SettingsLayer = {
  where: "container-linux's Azure identifier",
  table: { publisher: 'CoreOS', offer: 'CoreOS' },
};

/** `YYYYMMDD` of a time, in UTC. */
function yyyymmdd(t: Date): string {
  return t.toISOString().slice(0, 10).replaceAll('-', '');
}

/**
 * The day mantle's GCE names carry. mantle took the day it ran, so a re-run on another day could not find
 * the image it had made; here it is the day the build's GCE archive was signed, read from the signature's
 * hashed (signed) creation time: fixed for the build, the same from any mirror, and cheap (the signature
 * is a few hundred bytes, fetched anyway to check the archive; the archive's Last-Modified would change
 * with every copy of the bucket). The provider also finds the image by its name up to the day and its
 * release label, so a re-signed build still finds the image it already has.
 */
async function gceSignedDay(signatureUrl: string, ctx: LocateContext): Promise<string> {
  const signature = await ctx.source.document(signatureUrl);
  return yyyymmdd(signatureCreationTime(signature, GCE_FILE));
}

function expandPath(path: string): string {
  const p = path.startsWith('~/') ? join(homedir(), path.slice(2)) : path;
  return isAbsolute(p) ? p : resolve(p);
}

/** The old `--board`; `--arch x86_64` (or amd64) means the one board AWS runs. */
function boardOf(request: ReleaseRequest): string {
  if (request.board) return request.board;
  if (request.arch === 'x86_64' || request.arch === 'amd64') return 'amd64-usr';
  return request.arch ?? 'amd64-usr';
}

/** An upload is needed and nothing can check what would be uploaded. */
function missingKey(key: string): PlumeError {
  return new PlumeError(
    'usage',
    `${key}: the image must be uploaded, and ${NAME} images are signed, but no key to check them is configured`,
    'set verify_key in [systems.container-linux] or pass --verify-key FILE (the ASCII-armoured public key); releasing what a pre-release uploaded needs none',
  );
}

export const containerLinux: System = {
  name: NAME,
  aliases: ['cl', 'coreos'],
  description:
    'CoreOS Container Linux: signed images from the build buckets, to AWS and GovCloud, GCE and Azure',
  channels: () => CHANNELS.map((c) => ({ name: c.name, description: c.description })),
  arches: () => [...BOARDS],
  imageTypes: () => [],
  sourceHosts: () => ['storage.googleapis.com'],

  providers: () => ['aws', 'gcp', 'azure'],

  channelTargets(channel, environment, raw, provider): SettingsLayer[][] {
    if (environment)
      throw new PlumeError(
        'usage',
        `${NAME} has no environments (--environment ${environment})`,
        'its channels say where they publish; configure [systems.container-linux.channels.NAME] partitions',
      );
    const spec = channelSpec(channel);
    const settings = settingsOf(raw);
    if (provider === 'gcp' || provider === 'azure') {
      const table = (t: Record<string, unknown> | undefined, where: string): SettingsLayer[] =>
        t ? [{ where, table: t }] : [];
      return [
        [
          ...(provider === 'azure' ? [AZURE_IDENTIFIER] : []),
          ...table(settings[provider], `systems.${NAME}.${provider}`),
          ...table(settings.channels[channel]?.[provider], `systems.${NAME}.channels.${channel}.${provider}`),
        ],
      ];
    }
    if (provider !== 'aws') return [[]];
    // Every channel's images are made public on release, as plume did; one root volume type per AMI; the
    // images predate IMDSv2 and plume never required it.
    const own: SettingsLayer = {
      where: `${NAME}'s defaults`,
      table: {
        visibility: 'public',
        volume_types: [settings.volume_type ?? VOLUME_TYPE],
        imds_v2: false,
        ...(settings.volume_size_gib ? { volume_size_gib: settings.volume_size_gib } : {}),
      },
    };
    const configured = settings.channels[channel]?.partitions;
    if (configured)
      return configured.map(({ name, ...table }, i) => [
        own,
        { where: `systems.${NAME}.channels.${channel}.partitions.${i}`, table, name: slug(name) },
      ]);
    return spec.partitions.map((p) => [
      own,
      {
        where: `${NAME}'s ${p.name} partition`,
        name: slug(p.name),
        table: { partition: p.partition, profile: p.profile, base_region: p.baseRegion, regions: p.regions },
      },
    ]);
  },

  async locate(request: ReleaseRequest, ctx: LocateContext): Promise<ContainerLinuxFacts> {
    const spec = channelSpec(request.channel);
    const board = requireOneOf('board', boardOf(request), BOARDS, NAME);
    if (!request.version)
      throw new PlumeError(
        'usage',
        `--version is required for ${NAME}`,
        'give the build version, e.g. --version 1688.5.3',
      );
    const version = request.version;
    if (!/^[A-Za-z0-9][A-Za-z0-9.+_-]*$/.test(version))
      throw new PlumeError('usage', `--version ${JSON.stringify(version)} is not a build version`);
    const settings = settingsOf(ctx.settings);

    // The key checks an image before it is uploaded. As in plume's two stages, `release` publishes what
    // `pre-release` uploaded and verified, and a dry run uploads nothing: neither needs one. A key that is
    // given must be readable, found out now rather than after a download.
    const key = request.verifyKey ?? settings.verify_key;
    const keyFile = key ? expandPath(key) : undefined;
    if (keyFile)
      await access(keyFile, constants.R_OK).catch((err: NodeJS.ErrnoException) => {
        throw new PlumeError(
          'usage',
          `cannot read the OpenPGP key ${keyFile}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
          'check verify_key / --verify-key',
        );
      });

    let base = settings.channels[spec.name]?.base_url ?? spec.baseUrl;
    if (base.includes('{user}')) {
      const user = settings.user ?? process.env.USER;
      if (!user)
        throw new PlumeError(
          'usage',
          `the ${spec.name} channel needs a user name and $USER is not set`,
          'set user in [systems.container-linux]',
        );
      base = base.replaceAll('{user}', encodeURIComponent(user));
    }
    const dir = `${base.replace(/\/+$/, '')}/${board}/${encodeURIComponent(version)}/`;
    const artifacts: Record<string, Artifact> = {};
    const missing: ContainerLinuxFacts['missing'] = [];
    let gceDay: string | undefined;
    for (const provider of ctx.providers) {
      const file = PROVIDER_FILES[provider];
      if (!file) {
        missing.push({ provider, reason: `${NAME} has no image for ${provider}` });
        continue;
      }
      if (provider === 'azure' && !azureVersionName(version)) {
        const reason = `version ${version} cannot name an Azure image version (three whole numbers, e.g. 1688.5.3)`;
        // Asked for by name, it is refused; the config's default leaves Azure out of this build and says why.
        if (request.platforms?.includes('azure'))
          throw new PlumeError('usage', `${NAME} ${reason}`, 'publish this build with --platform aws,gcp');
        missing.push({ provider, reason });
        continue;
      }
      const artifact = {
        url: ctx.source.check(`${dir}${file}`).href,
        signatureUrl: ctx.source.check(`${dir}${file}${SIGNATURE_SUFFIX}`).href,
      };
      if (provider === 'gcp') {
        try {
          gceDay = await gceSignedDay(artifact.signatureUrl, ctx);
        } catch (err) {
          // A build without its GCE archive is published elsewhere, as a compose without one is.
          if (!(err instanceof PlumeError) || err.kind !== 'source' || !/not found/.test(err.message))
            throw err;
          missing.push({ provider, reason: `the build has no signed ${GCE_FILE} (${err.message})` });
          continue;
        }
      }
      artifacts[provider] = artifact;
    }
    return {
      request,
      channel: spec.name,
      board,
      version,
      baseName: spec.baseName,
      baseDescription: spec.baseDescription,
      artifacts,
      missing,
      ...(gceDay ? { gceDay } : {}),
      keyFile,
    };
  },

  plan(raw: SourceFacts, targets: TargetSettings[]): ReleasePlan {
    const f = raw as ContainerLinuxFacts;
    const spec = channelSpec(f.channel);
    const name = amiName(f.baseName, f.channel, f.version);
    const build = name.replace(/-hvm$/, '');
    const key = `${NAME}/${f.channel}/${f.board}/${f.version}`;
    if (Object.keys(f.artifacts).length === 0)
      throw new PlumeError(
        'input',
        `${key} has nothing to publish: ${f.missing.map((m) => `${m.provider}: ${m.reason}`).join('; ')}`,
      );
    const tags = { Channel: f.channel, Version: f.version };
    const planned: TargetPlan[] = [];
    for (const target of targets) {
      const artifact = f.artifacts[target.provider];
      if (!artifact) continue;
      const common = {
        key: targetPlanKey(key, target.name, false),
        provider: target.provider,
        name: target.name,
        architecture: 'x86_64' as const,
        build,
        tags,
        primaryLocation: target.primaryLocation,
        visibility: target.visibility,
      };
      const signed = { signatureUrl: artifact.signatureUrl, signatureKey: f.keyFile };
      if (target.provider === 'aws') {
        if (target.variants.length !== 1)
          throw new PlumeError(
            'usage',
            `${NAME} images have one name per region (${name}), so one root volume type, not ${target.variants.join(', ')}`,
            'drop --volume-types, or set volume_type in [systems.container-linux]',
          );
        planned.push({
          ...common,
          description: imageDescription(f.baseDescription, f.channel, f.version),
          source: {
            url: artifact.url,
            compression: 'bzip2',
            // bzip2 records no size: the volume is plume's fixed 8 GiB unless configured.
            fallbackVolumeGiB: VOLUME_GIB,
            volumeGiB: target.volumeGiB,
            ...signed,
          },
          images: target.locations.map((location) => ({ location, variant: target.variants[0]!, name })),
          settings: {
            ...target.settings,
            rootDeviceName: '/dev/xvda',
            // Registered without a boot mode by plume, which AWS takes as BIOS.
            bootMode: 'legacy-bios',
          },
        });
      } else if (target.provider === 'gcp') {
        if (!f.gceDay) throw new PlumeError('internal', `no signing day of ${GCE_FILE} for ${key}`);
        const gce = gceImageName(f.channel, f.version, f.gceDay);
        const day = `${f.gceDay.slice(0, 4)}-${f.gceDay.slice(4, 6)}-${f.gceDay.slice(6, 8)}`;
        planned.push({
          ...common,
          description: gceImageDescription(spec, f.version, f.board, day),
          // The archive goes to Cloud Storage as it is; GCE reads its disk.raw.
          source: { url: artifact.url, compression: 'none', volumeGiB: target.volumeGiB, ...signed },
          images: target.locations.map((location) => ({
            location,
            variant: target.variants[0]!,
            name: gce.name,
          })),
          settings: {
            ...target.settings,
            family: gceFamily(f.channel),
            // What mantle created CL's images with: BIOS boot (no UEFI_COMPATIBLE), multi-queue SCSI.
            guestOsFeatures: ['VIRTIO_SCSI_MULTIQUEUE'],
            namePrefix: gce.prefix,
          },
        });
      } else if (target.provider === 'azure') {
        const version = azureVersionName(f.version)!;
        planned.push({
          ...common,
          description: spec.azureDescription,
          // bzip2 records no size: the VHD's is known once it is read (its footer ends it), and the blob is
          // bounded by [images] max_volume_gib meanwhile. Until then the disk is taken to be the size
          // Container Linux's Azure disks had, which only the progress shows.
          source: {
            url: artifact.url,
            compression: 'bzip2',
            fallbackVolumeGiB: AZURE_VOLUME_GIB,
            volumeGiB: target.volumeGiB,
            ...signed,
          },
          images: target.locations.map((location) => ({
            location,
            variant: target.variants[0]!,
            name: version,
          })),
          settings: {
            ...target.settings,
            ...azureDefinition(f.channel),
            features: [],
            excludeFromLatest: false,
            // mantle made classic OS images, which are Hyper-V generation 1 (BIOS): CL never booted on V2.
            hyperVGeneration: 'V1',
          },
        });
      }
    }
    return {
      key,
      system: NAME,
      channel: f.channel,
      arch: f.board,
      version: f.version,
      build,
      targets: planned,
      skipped: f.missing,
    };
  },

  async verifySource(plan: TargetPlan, file: string, ctx: LocateContext): Promise<void> {
    const { signatureUrl, signatureKey } = plan.source;
    if (!signatureUrl) throw new PlumeError('internal', `the plan of ${plan.key} has no signature to check`);
    if (!signatureKey) throw missingKey(plan.key);
    const signature = await ctx.source.document(signatureUrl);
    const good = await verifyDetachedSignature({
      file,
      signature,
      keyFile: signatureKey,
      what: basename(new URL(plan.source.url).pathname),
      signal: ctx.signal,
    });
    ctx.log.info(
      { key: good.primaryFingerprint, signingKey: good.fingerprint, signature: signatureUrl },
      'image signature verified',
    );
  },

  outputs: releaseFiles,
};
