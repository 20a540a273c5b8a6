import { randomUUID } from 'node:crypto';
import type { Reply } from '../replies.js';
import { galleryId, galleryOr404, noContent, ok, page, started, type ArmContext } from './arm-context.js';
import { fail, invalid, nestedResourcesExist } from './errors.js';
import type { CommunityInfo, GalleryRecord, GroupType, ImageRecord, Permissions } from './model.js';
import { regionName } from './replication.js';
import { array, obj, oneOf, str, tags, GALLERY_NAME, type Json } from './validate.js';

const PERMISSIONS: readonly Permissions[] = ['Private', 'Groups', 'Community'];
const GROUP_TYPES: readonly GroupType[] = ['Subscriptions', 'AADTenants'];
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The gallery as ARM shows it; groups only when asked for ($select=Permissions or $expand=SharingProfile/Groups). */
export function galleryJson(ctx: ArmContext, g: GalleryRecord, withGroups = false): Json {
  const sharingProfile: Json = { permissions: g.permissions };
  if (withGroups) {
    sharingProfile.groups = [...g.groups]
      .filter(([, ids]) => ids.length)
      .map(([type, ids]) => ({ type, ids }));
  }
  if (g.community) {
    const c = g.community;
    sharingProfile.communityGalleryInfo = {
      publisherUri: c.publisherUri,
      publisherContact: c.publisherContact,
      eula: c.eula,
      publicNamePrefix: c.publicNamePrefix,
      communityGalleryEnabled: c.enabled,
      ...(c.enabled ? { publicNames: c.publicNames } : {}),
    };
  }
  const properties: Json = {
    ...(g.description !== undefined ? { description: g.description } : {}),
    identifier: { uniqueName: `${ctx.subscriptionId}-${g.name.toUpperCase()}` },
    provisioningState: 'Succeeded',
    sharingProfile,
  };
  if (g.community?.enabled) {
    properties.sharingStatus = {
      aggregatedState: 'Succeeded',
      summary: [{ region: g.location, state: 'Succeeded', details: '' }],
    };
  }
  return {
    id: galleryId(ctx, g),
    name: g.name,
    type: 'Microsoft.Compute/galleries',
    location: g.location,
    ...(g.tags ? { tags: g.tags } : {}),
    properties,
  };
}

export function getGallery(ctx: ArmContext, rg: string, name: string): Reply {
  const g = galleryOr404(ctx, rg, name);
  const select = ctx.url.searchParams.get('$select');
  const expand = ctx.url.searchParams.get('$expand');
  const withGroups =
    select?.toLowerCase() === 'permissions' || expand?.toLowerCase() === 'sharingprofile/groups';
  return ok(galleryJson(ctx, g, withGroups));
}

export function listGalleries(ctx: ArmContext, rg?: string): Reply {
  return page(
    ctx,
    ctx.store.galleriesIn(rg).map((g) => galleryJson(ctx, g)),
  );
}

function communityInfo(input: unknown, current?: CommunityInfo): CommunityInfo | undefined {
  const o = obj(input, 'properties.sharingProfile.communityGalleryInfo');
  if (!o) return current;
  const t = 'properties.sharingProfile.communityGalleryInfo';
  const prefix = str(o.publicNamePrefix, `${t}.publicNamePrefix`, true)!;
  if (!/^[A-Za-z0-9]{5,16}$/.test(prefix)) {
    invalid(`The public name prefix '${prefix}' must be 5 to 16 letters or digits.`, `${t}.publicNamePrefix`);
  }
  return {
    publisherUri: str(o.publisherUri, `${t}.publisherUri`, true)!,
    publisherContact: str(o.publisherContact, `${t}.publisherContact`, true)!,
    eula: str(o.eula, `${t}.eula`, true)!,
    publicNamePrefix: prefix,
    enabled: current?.enabled ?? false,
    publicNames: current?.publicNames ?? [],
  };
}

/** PUT (create or replace) and PATCH (update what is given) of a gallery. */
export function putGallery(ctx: ArmContext, rg: string, name: string, patch: boolean): Reply {
  if (!ctx.store.resourceGroup(rg))
    fail(404, 'ResourceGroupNotFound', `Resource group '${rg}' could not be found.`);
  if (!GALLERY_NAME.test(name)) {
    invalid(
      `The gallery name '${name}' is invalid. It can contain only letters, digits, '.' and '_', must start and end with a letter or digit, and be at most 80 characters.`,
      'galleryName',
    );
  }
  const body = ctx.body ?? {};
  const existing = ctx.store.gallery(rg, name);
  if (patch && !existing) galleryOr404(ctx, rg, name);
  const location = patch ? existing!.location : regionName(str(body.location, 'location', true)!);
  if (!location) invalid(`The location '${String(body.location)}' is not an Azure region.`, 'location');
  if (existing && existing.location !== location) {
    fail(
      409,
      'InvalidResourceLocation',
      `The resource '${name}' already exists in location '${existing.location}'.`,
    );
  }
  const props = obj(body.properties, 'properties') ?? {};
  const sharing = obj(props.sharingProfile, 'properties.sharingProfile');
  const permissions =
    oneOf(sharing?.permissions, 'properties.sharingProfile.permissions', PERMISSIONS) ??
    existing?.permissions ??
    'Private';
  const community = communityInfo(sharing?.communityGalleryInfo, existing?.community);
  if (permissions === 'Community' && !community) {
    invalid(
      'Community gallery info (publisherUri, publisherContact, eula, publicNamePrefix) is required to share a gallery with the community.',
      'properties.sharingProfile.communityGalleryInfo',
    );
  }
  if (existing?.community?.enabled && permissions !== 'Community') {
    fail(
      409,
      'OperationNotAllowed',
      `Gallery '${name}' is shared with the community: reset its sharing profile first.`,
    );
  }
  const g: GalleryRecord = {
    rg: ctx.store.resourceGroup(rg)!,
    name: existing?.name ?? name,
    location,
    tags: tags(body.tags) ?? (patch ? existing?.tags : undefined),
    description:
      str(props.description, 'properties.description', false, 4096) ??
      (patch ? existing?.description : undefined),
    permissions,
    groups: existing?.groups ?? new Map<GroupType, string[]>(),
    community,
    images: existing?.images ?? new Map<string, ImageRecord>(),
  };
  ctx.store.putGallery(g);
  const json = galleryJson(ctx, g);
  (json.properties as Json).provisioningState = existing ? 'Updating' : 'Creating';
  return started(ctx, existing ? 200 : 201, location, ctx.ops.done(), json);
}

export function deleteGallery(ctx: ArmContext, rg: string, name: string): Reply {
  const g = ctx.store.gallery(rg, name);
  if (!g) return noContent();
  if (g.images.size) {
    const ids = [...g.images.values()].map((i) => `Microsoft.Compute/galleries/${g.name}/images/${i.name}`);
    nestedResourcesExist(ids);
  }
  ctx.store.deleteGallery(g);
  return started(ctx, 202, g.location, ctx.ops.done());
}

/** POST .../share: add or remove subscriptions and tenants, reset to private, or go public to the community. */
export function share(ctx: ArmContext, rg: string, name: string): Reply {
  const g = galleryOr404(ctx, rg, name);
  const body = ctx.body ?? {};
  const operationType = oneOf(
    body.operationType,
    'operationType',
    ['Add', 'Remove', 'Reset', 'EnableCommunity'],
    true,
  )!;
  const groups = (array(body.groups, 'groups', 10) ?? []).map((raw, n) => {
    const o = obj(raw, `groups[${n}]`, true)!;
    const type = oneOf(o.type, `groups[${n}].type`, GROUP_TYPES, true)!;
    const ids = (array(o.ids, `groups[${n}].ids`, 1000) ?? []).map((id, k) => {
      const s = str(id, `groups[${n}].ids[${k}]`, true)!;
      if (!GUID.test(s))
        invalid(
          `'${s}' is not a valid ${type === 'Subscriptions' ? 'subscription' : 'tenant'} id.`,
          `groups[${n}].ids[${k}]`,
        );
      return s.toLowerCase();
    });
    return { type, ids };
  });

  switch (operationType) {
    case 'Add':
    case 'Remove': {
      if (!groups.length) invalid(`Sharing operation '${operationType}' needs at least one group.`, 'groups');
      if (g.permissions !== 'Groups') {
        fail(
          409,
          'OperationNotAllowed',
          `Gallery '${g.name}' has sharing permissions '${g.permissions}': set them to 'Groups' to share it with subscriptions or tenants.`,
        );
      }
      for (const { type, ids } of groups) {
        const have = new Set(g.groups.get(type) ?? []);
        for (const id of ids) {
          if (operationType === 'Add') have.add(id);
          else have.delete(id);
        }
        g.groups.set(type, [...have]);
      }
      break;
    }
    case 'Reset':
      g.groups = new Map();
      g.permissions = 'Private';
      if (g.community) g.community = { ...g.community, enabled: false, publicNames: [] };
      break;
    case 'EnableCommunity':
      if (g.permissions !== 'Community' || !g.community) {
        fail(
          409,
          'OperationNotAllowed',
          `Gallery '${g.name}' must have sharing permissions 'Community' and community gallery info to be shared with the community.`,
        );
      }
      if (!g.community.enabled) {
        g.community = {
          ...g.community,
          enabled: true,
          publicNames: [`${g.community.publicNamePrefix}-${randomUUID()}`],
        };
      }
      break;
  }
  const result = { operationType, ...(groups.length ? { groups } : {}) };
  return started(ctx, 202, g.location, ctx.ops.done(result), result);
}
