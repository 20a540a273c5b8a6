import { homedir } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { access, constants } from 'node:fs/promises';
import { z } from 'zod';
import { PlumeError } from '../../../shared/errors.js';
import { targetPlanKey, type ReleasePlan, type SettingsLayer, type TargetPlan } from '../../plan.js';
import { verifyDetachedSignature } from '../openpgp.js';
import { requireOneOf } from '../registry.js';
import { parseSettings } from '../settings.js';
import type { LocateContext, ReleaseRequest, SourceFacts, System, TargetSettings } from '../types.js';
import { amiListFiles } from './outputs.js';
import {
  BOARDS,
  CHANNELS,
  IMAGE_FILE,
  SIGNATURE_SUFFIX,
  VOLUME_GIB,
  VOLUME_TYPE,
  amiName,
  imageDescription,
  slug,
  type ChannelSpec,
} from './specs.js';

export { amiList, amiListFiles } from './outputs.js';
export { CHANNELS, amiName } from './specs.js';

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

/** `[systems.container-linux]`: the signing key, and per channel where builds are and where they go. */
const Settings = z.strictObject({
  verify_key: z.string().min(1).optional(),
  /** Whose builds the user channel publishes (default $USER). */
  user: z.string().min(1).optional(),
  volume_type: z.string().min(1).optional(),
  volume_size_gib: z.number().int().min(1).max(16384).optional(),
  channels: z
    .record(
      z.string(),
      z.strictObject({
        base_url: z.url().optional(),
        /** Replaces the channel's partitions (plume's built-in list) when given. */
        partitions: z.array(PartitionToml).min(1).optional(),
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

export interface ContainerLinuxFacts extends SourceFacts {
  channel: string;
  board: string;
  version: string;
  baseName: string;
  baseDescription: string;
  imageUrl: string;
  signatureUrl: string;
  /** Absent when none is configured: only an upload needs it (see verifySource). */
  keyFile?: string;
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
  description: 'CoreOS Container Linux: signed bzip2 images from the build buckets, AWS and GovCloud',
  channels: () => CHANNELS.map((c) => ({ name: c.name, description: c.description })),
  arches: () => [...BOARDS],
  imageTypes: () => [],
  sourceHosts: () => ['storage.googleapis.com'],

  providers: () => ['aws'],

  channelTargets(channel, environment, raw, provider): SettingsLayer[][] {
    if (environment)
      throw new PlumeError(
        'usage',
        `${NAME} has no environments (--environment ${environment})`,
        'its channels say where they publish; configure [systems.container-linux.channels.NAME] partitions',
      );
    const spec = channelSpec(channel);
    const settings = settingsOf(raw);
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
    const imageUrl = ctx.source.check(`${dir}${IMAGE_FILE}`).href;
    const signatureUrl = ctx.source.check(`${dir}${IMAGE_FILE}${SIGNATURE_SUFFIX}`).href;
    return {
      request,
      channel: spec.name,
      board,
      version,
      baseName: spec.baseName,
      baseDescription: spec.baseDescription,
      imageUrl,
      signatureUrl,
      keyFile,
    };
  },

  plan(raw: SourceFacts, targets: TargetSettings[]): ReleasePlan {
    const f = raw as ContainerLinuxFacts;
    const name = amiName(f.baseName, f.channel, f.version);
    const build = name.replace(/-hvm$/, '');
    const key = `${NAME}/${f.channel}/${f.board}/${f.version}`;
    return {
      key,
      system: NAME,
      channel: f.channel,
      arch: f.board,
      version: f.version,
      build,
      targets: targets.map((target): TargetPlan => {
        if (target.variants.length !== 1)
          throw new PlumeError(
            'usage',
            `${NAME} images have one name per region (${name}), so one root volume type, not ${target.variants.join(', ')}`,
            'drop --volume-types, or set volume_type in [systems.container-linux]',
          );
        return {
          key: targetPlanKey(key, target.name, false),
          provider: target.provider,
          name: target.name,
          architecture: 'x86_64',
          build,
          description: imageDescription(f.baseDescription, f.channel, f.version),
          tags: { Channel: f.channel, Version: f.version },
          source: {
            url: f.imageUrl,
            compression: 'bzip2',
            // bzip2 records no size: the volume is plume's fixed 8 GiB unless configured.
            fallbackVolumeGiB: VOLUME_GIB,
            volumeGiB: target.volumeGiB,
            signatureUrl: f.signatureUrl,
            signatureKey: f.keyFile,
          },
          primaryLocation: target.primaryLocation,
          images: target.locations.map((location) => ({ location, variant: target.variants[0]!, name })),
          visibility: target.visibility,
          settings: {
            ...target.settings,
            rootDeviceName: '/dev/xvda',
            // Registered without a boot mode by plume, which AWS takes as BIOS.
            bootMode: 'legacy-bios',
          },
        };
      }),
      skipped: [],
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

  outputs: amiListFiles,
};
