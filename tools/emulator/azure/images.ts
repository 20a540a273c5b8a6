import type { Reply } from '../replies.js';
import {
  galleryId,
  galleryOr404,
  imageOr404,
  noContent,
  ok,
  page,
  started,
  type ArmContext,
} from './arm-context.js';
import { fail, invalid, nestedResourcesExist } from './errors.js';
import { keyOf, type Feature, type GalleryRecord, type ImageRecord, type VersionRecord } from './model.js';
import { regionName } from './replication.js';
import { array, dateTime, obj, oneOf, str, tags, IMAGE_NAME, type Json } from './validate.js';

/** Gallery image features Azure knows, with the values it takes. */
const FEATURES: Record<string, readonly string[]> = {
  SecurityType: [
    'Standard',
    'TrustedLaunch',
    'TrustedLaunchSupported',
    'ConfidentialVM',
    'ConfidentialVMSupported',
    'TrustedLaunchAndConfidentialVmSupported',
  ],
  DiskControllerTypes: ['SCSI', 'NVMe', 'SCSI, NVMe'],
  IsAcceleratedNetworkSupported: ['True', 'False'],
  IsHibernateSupported: ['True', 'False'],
};

function features(input: unknown, hyperVGeneration: string, architecture: string): Feature[] {
  const out: Feature[] = [];
  for (const [n, raw] of (array(input, 'properties.features', 20) ?? []).entries()) {
    const t = `properties.features[${n}]`;
    const f = obj(raw, t, true)!;
    const name = oneOf(f.name, `${t}.name`, Object.keys(FEATURES), true)!;
    const value = oneOf(f.value, `${t}.value`, FEATURES[name]!, true)!;
    if (out.some((o) => o.name === name))
      invalid(`The feature '${name}' is given more than once.`, `${t}.name`);
    out.push({ name, value });
  }
  const security = out.find((f) => f.name === 'SecurityType')?.value;
  if (security && security !== 'Standard' && hyperVGeneration !== 'V2') {
    invalid(`SecurityType '${security}' requires hyperVGeneration V2.`, 'properties.hyperVGeneration');
  }
  if (architecture === 'Arm64' && hyperVGeneration !== 'V2') {
    invalid('Architecture Arm64 requires hyperVGeneration V2.', 'properties.hyperVGeneration');
  }
  return out;
}

export function imageJson(ctx: ArmContext, g: GalleryRecord, i: ImageRecord): Json {
  return {
    id: `${galleryId(ctx, g)}/images/${i.name}`,
    name: i.name,
    type: 'Microsoft.Compute/galleries/images',
    location: i.location,
    ...(i.tags ? { tags: i.tags } : {}),
    properties: {
      ...(i.description !== undefined ? { description: i.description } : {}),
      ...(i.eula !== undefined ? { eula: i.eula } : {}),
      osType: i.osType,
      osState: i.osState,
      hyperVGeneration: i.hyperVGeneration,
      architecture: i.architecture,
      ...(i.endOfLifeDate ? { endOfLifeDate: i.endOfLifeDate } : {}),
      identifier: i.identifier,
      ...(i.features.length ? { features: i.features } : {}),
      provisioningState: 'Succeeded',
    },
  };
}

export function getImage(ctx: ArmContext, rg: string, gallery: string, name: string): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  return ok(imageJson(ctx, g, imageOr404(g, name)));
}

export function listImages(ctx: ArmContext, rg: string, gallery: string): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  return page(
    ctx,
    [...g.images.values()].map((i) => imageJson(ctx, g, i)),
  );
}

/** What may not change once a definition exists, as ARM names it in PropertyChangeNotAllowed. */
const IMMUTABLE: (keyof ImageRecord)[] = [
  'osType',
  'osState',
  'hyperVGeneration',
  'architecture',
  'identifier',
];

export function putImage(ctx: ArmContext, rg: string, gallery: string, name: string, patch: boolean): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  if (!IMAGE_NAME.test(name)) {
    invalid(
      `The gallery image name '${name}' is invalid. It can contain only letters, digits, '.', '-' and '_', must start and end with a letter or digit, and be at most 80 characters.`,
      'galleryImageName',
    );
  }
  const existing = g.images.get(keyOf(name));
  if (patch && !existing) imageOr404(g, name);
  const body = ctx.body ?? {};
  // A PATCH gives only what changes: fill the rest from what exists, then validate the whole as a PUT.
  const props = {
    ...(patch ? (imageJson(ctx, g, existing!).properties as Json) : {}),
    ...(obj(body.properties, 'properties', !patch) ?? {}),
  };
  const location = patch ? existing!.location : regionName(str(body.location, 'location', true)!);
  if (location !== g.location) {
    invalid(
      `The gallery image must be in the gallery's location '${g.location}', not '${String(body.location)}'.`,
      'location',
    );
  }
  const osType = oneOf(props.osType, 'properties.osType', ['Linux', 'Windows'] as const, true)!;
  const osState = oneOf(props.osState, 'properties.osState', ['Generalized', 'Specialized'] as const, true)!;
  const hyperVGeneration =
    oneOf(props.hyperVGeneration, 'properties.hyperVGeneration', ['V1', 'V2'] as const) ?? 'V1';
  const architecture =
    oneOf(props.architecture, 'properties.architecture', ['x64', 'Arm64'] as const) ?? 'x64';
  const idIn = obj(props.identifier, 'properties.identifier', true)!;
  const identifier = {
    publisher: str(idIn.publisher, 'properties.identifier.publisher', true, 128)!,
    offer: str(idIn.offer, 'properties.identifier.offer', true, 64)!,
    sku: str(idIn.sku, 'properties.identifier.sku', true, 64)!,
  };
  const record: ImageRecord = {
    name: existing?.name ?? name,
    location,
    tags: tags(body.tags) ?? (patch ? existing?.tags : undefined),
    osType,
    osState,
    hyperVGeneration,
    architecture,
    identifier,
    features: features(props.features, hyperVGeneration, architecture),
    description: str(props.description, 'properties.description', false, 4096),
    eula: str(props.eula, 'properties.eula', false, 4096),
    endOfLifeDate: dateTime(props.endOfLifeDate, 'properties.endOfLifeDate'),
    versions: existing?.versions ?? new Map<string, VersionRecord>(),
  };
  const same = (a: unknown, b: unknown) =>
    JSON.stringify(a).toLowerCase() === JSON.stringify(b).toLowerCase();
  if (existing) {
    for (const field of IMMUTABLE) {
      if (!same(existing[field], record[field])) {
        fail(
          409,
          'PropertyChangeNotAllowed',
          `Changing property 'galleryImage.properties.${field}' is not allowed.`,
          `galleryImage.properties.${field}`,
        );
      }
    }
  }
  const clash = [...g.images.values()].find(
    (other) => other !== existing && same(other.identifier, identifier),
  );
  if (clash) {
    fail(
      409,
      'Conflict',
      `Gallery image '${clash.name}' in gallery '${g.name}' already has the identifier publisher '${identifier.publisher}', offer '${identifier.offer}', sku '${identifier.sku}'.`,
      'properties.identifier',
    );
  }
  g.images.set(keyOf(record.name), record);
  const json = imageJson(ctx, g, record);
  (json.properties as Json).provisioningState = existing ? 'Updating' : 'Creating';
  return started(ctx, existing ? 200 : 201, g.location, ctx.ops.done(), json);
}

export function deleteImage(ctx: ArmContext, rg: string, gallery: string, name: string): Reply {
  const g = galleryOr404(ctx, rg, gallery);
  const i = g.images.get(keyOf(name));
  if (!i) return noContent();
  if (i.versions.size) {
    const ids = [...i.versions.values()].map(
      (v) => `Microsoft.Compute/galleries/${g.name}/images/${i.name}/versions/${v.name}`,
    );
    nestedResourcesExist(ids);
  }
  g.images.delete(keyOf(name));
  return started(ctx, 202, g.location, ctx.ops.done());
}
