import type { Reply } from '../replies.js';
import {
  galleryId,
  galleryOr404,
  imageOr404,
  noContent,
  ok,
  page,
  started,
  versionOr404,
  type ArmContext,
} from './arm-context.js';
import { VERSION_PART_MAX } from './config.js';
import { fail, invalid } from './errors.js';
import {
  keyOf,
  type GalleryRecord,
  type ImageRecord,
  type TargetRegion,
  type VersionRecord,
} from './model.js';
import type { OperationOutcome } from './operations.js';
import { displayName, regionName, type RegionStatus } from './replication.js';
import { array, bool, dateTime, int, obj, oneOf, str, tags, type Json } from './validate.js';

const STORAGE_TYPES = ['Standard_LRS', 'Standard_ZRS', 'Premium_LRS', 'PremiumV2_LRS'] as const;

export interface VersionState {
  provisioningState: 'Creating' | 'Succeeded' | 'Failed';
  error?: { code: string; message: string };
  aggregatedState: 'InProgress' | 'Completed' | 'Failed';
  summary: RegionStatus[];
}

/** Where a version is: reading its source, replicating region by region, done, or failed. */
export function versionState(ctx: ArmContext, v: VersionRecord): VersionState {
  const each = (state: RegionStatus['state'], details: string) =>
    v.targetRegions.map((r) => ({
      region: displayName(r.name),
      state,
      details,
      progress: state === 'Completed' ? 100 : 0,
    }));
  if (v.injectedFailure) {
    return {
      provisioningState: 'Failed',
      error: v.injectedFailure,
      aggregatedState: 'Failed',
      summary: each('Failed', v.injectedFailure.message),
    };
  }
  if (!v.check || v.readyAt === undefined) {
    if (v.check && !v.check.ok) {
      return {
        provisioningState: 'Failed',
        error: v.check.problem,
        aggregatedState: 'Failed',
        summary: each('Failed', v.check.problem.message),
      };
    }
    return { provisioningState: 'Creating', aggregatedState: 'InProgress', summary: each('Replicating', '') };
  }
  const readyAt = v.readyAt;
  const summary = v.targetRegions.map((r) =>
    ctx.replication.status(r.name, Math.max(readyAt, r.since ?? 0), v.regionsFinal),
  );
  const failed = summary.filter((s) => s.state === 'Failed');
  if (failed.length) {
    return {
      provisioningState: 'Failed',
      error: {
        code: 'ReplicationFailed',
        message: `Replication of gallery image version '${v.name}' failed in region(s): ${failed.map((f) => f.region).join(', ')}.`,
      },
      aggregatedState: 'Failed',
      summary,
    };
  }
  const complete = summary.every((s) => s.state === 'Completed');
  return {
    provisioningState: complete ? 'Succeeded' : 'Creating',
    aggregatedState: complete ? 'Completed' : 'InProgress',
    summary,
  };
}

function versionJson(
  ctx: ArmContext,
  g: GalleryRecord,
  i: ImageRecord,
  v: VersionRecord,
  expand = false,
): Json {
  const state = versionState(ctx, v);
  return {
    id: `${galleryId(ctx, g)}/images/${i.name}/versions/${v.name}`,
    name: v.name,
    type: 'Microsoft.Compute/galleries/images/versions',
    location: v.location,
    ...(v.tags ? { tags: v.tags } : {}),
    properties: {
      publishingProfile: {
        targetRegions: v.targetRegions.map((r) => ({
          name: displayName(r.name),
          regionalReplicaCount: r.regionalReplicaCount,
          storageAccountType: r.storageAccountType,
          ...(r.excludeFromLatest !== undefined ? { excludeFromLatest: r.excludeFromLatest } : {}),
        })),
        replicaCount: v.replicaCount,
        excludeFromLatest: v.excludeFromLatest,
        publishedDate: v.publishedDate,
        ...(v.endOfLifeDate ? { endOfLifeDate: v.endOfLifeDate } : {}),
        storageAccountType: v.storageAccountType,
      },
      storageProfile: {
        osDiskImage: {
          ...(v.check?.ok ? { sizeInGB: Math.ceil(v.check.sizeBytes / 1024 ** 3) } : {}),
          hostCaching: v.hostCaching,
          source: { uri: v.source.uri, storageAccountId: v.source.storageAccountId },
        },
      },
      safetyProfile: { allowDeletionOfReplicatedLocations: true, reportedForPolicyViolation: false },
      provisioningState: state.provisioningState,
      ...(expand
        ? { replicationStatus: { aggregatedState: state.aggregatedState, summary: state.summary } }
        : {}),
    },
  };
}

export function getVersion(ctx: ArmContext, rg: string, gallery: string, image: string, name: string): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  const i = imageOr404(g, image);
  const expand = ctx.url.searchParams.get('$expand');
  if (expand !== null && !['replicationstatus', 'uefisettings'].includes(expand.toLowerCase())) {
    invalid(
      `The value '${expand}' of parameter '$expand' is not allowed. Allowed values are: ReplicationStatus, UefiSettings.`,
      '$expand',
    );
  }
  return ok(versionJson(ctx, g, i, versionOr404(g, i, name), expand?.toLowerCase() === 'replicationstatus'));
}

export function listVersions(ctx: ArmContext, rg: string, gallery: string, image: string): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  const i = imageOr404(g, image);
  return page(
    ctx,
    [...i.versions.values()].map((v) => versionJson(ctx, g, i, v)),
  );
}

function checkName(name: string): void {
  const parts = /^(\d{1,10})\.(\d{1,10})\.(\d{1,10})$/.exec(name);
  if (!parts || parts.slice(1).some((p) => Number(p) > VERSION_PART_MAX)) {
    invalid(
      `The gallery image version name '${name}' is invalid. It must be three integers separated by periods (Major.Minor.Patch), each from 0 to ${VERSION_PART_MAX}.`,
      'galleryImageVersionName',
    );
  }
}

function targetRegions(
  input: unknown,
  home: string,
  replicaCount: number,
  storageType: string,
): TargetRegion[] {
  const list = array(input, 'properties.publishingProfile.targetRegions', 100);
  if (!list) return [{ name: home, regionalReplicaCount: replicaCount, storageAccountType: storageType }];
  const out: TargetRegion[] = [];
  for (const [n, raw] of list.entries()) {
    const t = `properties.publishingProfile.targetRegions[${n}]`;
    const r = obj(raw, t, true)!;
    const given = str(r.name, `${t}.name`, true)!;
    const name = regionName(given);
    if (!name) invalid(`The target region '${given}' is not an Azure region.`, `${t}.name`);
    if (out.some((o) => o.name === name))
      invalid(`The target region '${given}' is given more than once.`, `${t}.name`);
    out.push({
      name,
      regionalReplicaCount: int(r.regionalReplicaCount, `${t}.regionalReplicaCount`, 1, 100) ?? replicaCount,
      storageAccountType:
        oneOf(r.storageAccountType, `${t}.storageAccountType`, STORAGE_TYPES) ?? storageType,
      excludeFromLatest: bool(r.excludeFromLatest, `${t}.excludeFromLatest`),
    });
  }
  if (!out.some((r) => r.name === home)) {
    invalid(
      `The target regions must include the gallery image version's own region '${displayName(home)}'.`,
      'properties.publishingProfile.targetRegions',
    );
  }
  return out;
}

/** The wire form of what can be changed by PATCH, for merging the changes into. */
function updatable(ctx: ArmContext, g: GalleryRecord, i: ImageRecord, v: VersionRecord): Json {
  const json = versionJson(ctx, g, i, v);
  const props = json.properties as Json;
  return {
    location: v.location,
    tags: v.tags,
    properties: { publishingProfile: props.publishingProfile, storageProfile: props.storageProfile },
  };
}

/** PUT and PATCH of a gallery image version: validate, start reading the source blob, answer 201/200. */
export function putVersion(
  ctx: ArmContext,
  rg: string,
  gallery: string,
  image: string,
  name: string,
  patch: boolean,
): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  const i = imageOr404(g, image);
  checkName(name);
  const existing = i.versions.get(keyOf(name));
  if (patch && !existing) versionOr404(g, i, name);
  let body = ctx.body ?? {};
  if (patch) {
    const current = updatable(ctx, g, i, existing!);
    const changes =
      obj(obj(body.properties, 'properties')?.publishingProfile, 'properties.publishingProfile') ?? {};
    const currentProps = current.properties as Json;
    body = {
      ...current,
      tags: body.tags ?? current.tags,
      properties: {
        ...currentProps,
        publishingProfile: { ...(currentProps.publishingProfile as Json), ...changes },
      },
    };
  }
  const location = regionName(str(body.location, 'location', true)!);
  if (location !== g.location) {
    invalid(
      `The gallery image version must be in the gallery's location '${g.location}', not '${String(body.location)}'.`,
      'location',
    );
  }
  const props = obj(body.properties, 'properties', true)!;
  const publishing = obj(props.publishingProfile, 'properties.publishingProfile') ?? {};
  const replicaCount = int(publishing.replicaCount, 'properties.publishingProfile.replicaCount', 1, 100) ?? 1;
  const storageAccountType =
    oneOf(publishing.storageAccountType, 'properties.publishingProfile.storageAccountType', STORAGE_TYPES) ??
    'Standard_LRS';
  const storage = obj(props.storageProfile, 'properties.storageProfile', true)!;
  if (storage.source !== undefined) {
    invalid(
      'The emulator takes VHD blob sources only (storageProfile.osDiskImage.source).',
      'properties.storageProfile.source',
    );
  }
  const osDisk = obj(storage.osDiskImage, 'properties.storageProfile.osDiskImage', true)!;
  if (storage.dataDiskImages !== undefined)
    invalid('Data disk images are not emulated.', 'properties.storageProfile.dataDiskImages');
  const t = 'properties.storageProfile.osDiskImage.source';
  const sourceIn = obj(osDisk.source, t, true)!;
  const source = {
    uri: str(sourceIn.uri, `${t}.uri`, true, 2048)!,
    // Older API versions named the storage account `id`.
    storageAccountId: str(sourceIn.storageAccountId ?? sourceIn.id, `${t}.storageAccountId`, true, 1024)!,
  };
  const where = ctx.sources.locate(source, t);
  const regions = targetRegions(publishing.targetRegions, g.location, replicaCount, storageAccountType);
  const record: VersionRecord = {
    name: existing?.name ?? name,
    location: g.location,
    tags: tags(body.tags),
    targetRegions: regions,
    replicaCount,
    excludeFromLatest:
      bool(publishing.excludeFromLatest, 'properties.publishingProfile.excludeFromLatest') ?? false,
    endOfLifeDate: dateTime(publishing.endOfLifeDate, 'properties.publishingProfile.endOfLifeDate'),
    storageAccountType,
    publishedDate: existing?.publishedDate ?? new Date().toISOString().replace('Z', '+00:00'),
    source,
    hostCaching:
      oneOf(osDisk.hostCaching, 'properties.storageProfile.osDiskImage.hostCaching', [
        'None',
        'ReadOnly',
        'ReadWrite',
      ]) ?? 'ReadOnly',
    regionsFinal: new Map<string, RegionStatus>(),
  };
  let current = record;
  if (existing) {
    if (
      existing.source.uri !== source.uri ||
      existing.source.storageAccountId.toLowerCase() !== source.storageAccountId.toLowerCase()
    ) {
      fail(409, 'PropertyChangeNotAllowed', `Changing property '${t}' is not allowed.`, t);
    }
    // An update changes the existing version in place: its source is read once (maybe still being read,
    // by a create whose answer was lost), and regions added now replicate from now.
    const before = new Set(existing.targetRegions.map((r) => r.name));
    for (const r of record.targetRegions) if (!before.has(r.name)) r.since = Date.now();
    for (const r of existing.targetRegions)
      if (!record.targetRegions.some((n) => n.name === r.name)) existing.regionsFinal.delete(r.name);
    Object.assign(existing, {
      tags: record.tags,
      targetRegions: record.targetRegions,
      replicaCount: record.replicaCount,
      excludeFromLatest: record.excludeFromLatest,
      endOfLifeDate: record.endOfLifeDate,
      storageAccountType: record.storageAccountType,
      hostCaching: record.hostCaching,
    });
    current = existing;
  } else {
    if (ctx.imageFailure) {
      record.injectedFailure = {
        code: ctx.imageFailure.code ?? 'InternalOperationError',
        message: ctx.imageFailure.message ?? 'An internal execution error occurred. Please retry later.',
      };
    }
    void ctx.sources.check(source.uri, where).then((check) => {
      record.check = check;
      if (check.ok) record.readyAt = Date.now();
    });
    i.versions.set(keyOf(record.name), record);
  }
  const operation = ctx.ops.start(() => outcome(ctx, i, current));
  const json = versionJson(ctx, g, i, current);
  (json.properties as Json).provisioningState = existing ? 'Updating' : 'Creating';
  return started(ctx, existing ? 200 : 201, g.location, operation, json);
}

/** The create operation follows the version; deleting the version meanwhile cancels it. */
function outcome(ctx: ArmContext, i: ImageRecord, v: VersionRecord): OperationOutcome {
  if (i.versions.get(keyOf(v.name)) !== v) return { status: 'Canceled' };
  const state = versionState(ctx, v);
  if (state.provisioningState === 'Failed') return { status: 'Failed', error: state.error };
  return { status: state.provisioningState === 'Succeeded' ? 'Succeeded' : 'InProgress' };
}

export function deleteVersion(
  ctx: ArmContext,
  rg: string,
  gallery: string,
  image: string,
  name: string,
): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  const i = imageOr404(g, image);
  if (!i.versions.has(keyOf(name))) return noContent();
  i.versions.delete(keyOf(name));
  return started(ctx, 202, g.location, ctx.ops.done());
}
