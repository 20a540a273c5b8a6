import type {
  Gallery,
  GalleryImage,
  GalleryImageVersion,
  GalleryUpdate,
  SharingUpdate,
} from '@azure/arm-compute';
import type { Visibility } from '../../plan.js';
import type { CommunityToml } from './config.js';
import { regionKey, sharingGroups, type AzureImage } from './settings.js';

/** Pure decisions of the Azure provider: what a definition should be, what differs, what sharing to do. */

/** Azure's regional replication states: Completed, Replicating, Failed, Unknown. */
export type RegionState = string;

/** Each region's replication state, by plume's region names. */
export function regionStates(v: GalleryImageVersion): Record<string, RegionState> {
  const out: Record<string, RegionState> = {};
  const summary = v.replicationStatus?.summary;
  if (summary)
    for (const r of summary)
      if (r.region) out[regionKey(r.region)] = r.state ?? 'Unknown';
      else if (v.provisioningState === 'Succeeded')
        // Read without $expand=ReplicationStatus: a version that succeeded has completed everywhere.
        for (const r of v.publishingProfile?.targetRegions ?? []) out[regionKey(r.name)] = 'Completed';
  return out;
}

export function definitionResource(location: string, s: AzureImage, description: string): GalleryImage {
  return {
    location,
    description: description.slice(0, 1000),
    osType: 'Linux',
    osState: 'Generalized',
    hyperVGeneration: s.hyperVGeneration,
    architecture: s.architecture,
    identifier: { publisher: s.publisher, offer: s.offer, sku: s.sku },
    features: s.features,
  };
}

const lower = (x: string | undefined) => (x ?? '').toLowerCase();

/** What an existing definition says that the plan's does not (Azure changes none of these). */
export function definitionProblems(current: GalleryImage, s: AzureImage): string[] {
  const want = definitionResource('', s, '');
  const out: string[] = [];
  for (const key of ['osType', 'osState', 'hyperVGeneration', 'architecture'] as const)
    if (lower(current[key]) !== lower(want[key]))
      out.push(`its ${key} is ${current[key] ?? 'unset'}, not ${want[key]}`);
  const id = current.identifier;
  if (
    !id ||
    lower(id.publisher) !== lower(s.publisher) ||
    lower(id.offer) !== lower(s.offer) ||
    lower(id.sku) !== lower(s.sku)
  )
    out.push(
      `its identifier is ${id ? `${id.publisher}/${id.offer}/${id.sku}` : 'unset'}, not ${s.publisher}/${s.offer}/${s.sku}`,
    );
  const have = new Set((current.features ?? []).map((f) => `${f.name}=${f.value}`));
  const missing = s.features.filter((f) => !have.has(`${f.name}=${f.value}`));
  if (missing.length)
    out.push(`it lacks the features ${missing.map((f) => `${f.name}=${f.value}`).join(', ')}`);
  return out;
}

/** What the version's publishing profile says that the plan's does not (both can be changed). */
export function versionProblems(v: GalleryImageVersion, s: AzureImage, endOfLife?: string): string[] {
  const out: string[] = [];
  const p = v.publishingProfile;
  if ((p?.excludeFromLatest ?? false) !== s.excludeFromLatest)
    out.push(`excludeFromLatest is ${p?.excludeFromLatest ?? false}, not ${s.excludeFromLatest}`);
  if (endOfLife && p?.endOfLifeDate?.getTime() !== Date.parse(endOfLife))
    out.push(`endOfLifeDate is ${p?.endOfLifeDate?.toISOString() ?? 'unset'}, not ${endOfLife}`);
  return out;
}

export interface SharingStep {
  what: string;
  gallery?: GalleryUpdate;
  sharing?: SharingUpdate;
}

/**
 * The calls that bring a gallery's sharing to what the plan says, in order (none when it already is). A
 * public release shares the gallery with the community; otherwise listed subscriptions and tenants get it.
 * A private release without accounts asks for nothing: plume never withdraws sharing.
 */
export function sharingPlan(
  gallery: Gallery,
  visibility: Visibility,
  community?: CommunityToml,
): SharingStep[] {
  const profile = gallery.sharingProfile;
  const permissions = profile?.permissions ?? 'Private';
  const steps: SharingStep[] = [];
  if (visibility.public) {
    if (!community) return [{ what: 'community gallery info is not configured' }];
    const info = profile?.communityGalleryInfo;
    if (permissions !== 'Community' || !info?.publicNamePrefix)
      steps.push({
        what: 'community permissions',
        gallery: {
          sharingProfile: {
            permissions: 'Community',
            communityGalleryInfo: {
              publisherUri: community.publisher_uri,
              publisherContact: community.publisher_contact,
              eula: community.eula,
              publicNamePrefix: community.public_name_prefix,
            },
          },
        },
      });
    if (!info?.communityGalleryEnabled)
      steps.push({ what: 'community sharing', sharing: { operationType: 'EnableCommunity' } });
    return steps;
  }
  const { subscriptions, tenants } = sharingGroups(visibility.accounts);
  if (subscriptions.length + tenants.length === 0 || permissions === 'Community') return [];
  if (permissions === 'Private')
    steps.push({ what: 'group permissions', gallery: { sharingProfile: { permissions: 'Groups' } } });
  const has = (type: string) =>
    new Set(
      (profile?.groups ?? [])
        .filter((g) => g.type === type)
        .flatMap((g) => (g.ids ?? []).map((i) => i.toLowerCase())),
    );
  const subs = subscriptions.filter((i) => !has('Subscriptions').has(i));
  const tens = tenants.filter((i) => !has('AADTenants').has(i));
  if (subs.length + tens.length > 0)
    steps.push({
      what: `sharing with ${[...subs, ...tens].join(', ')}`,
      sharing: {
        operationType: 'Add',
        groups: [
          ...(subs.length ? [{ type: 'Subscriptions' as const, ids: subs }] : []),
          ...(tens.length ? [{ type: 'AADTenants' as const, ids: tens }] : []),
        ],
      },
    });
  return steps;
}
