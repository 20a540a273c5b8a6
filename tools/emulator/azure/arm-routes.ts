/** Where an ARM request is addressed: the resource (or collection) its path names. */
export type ArmRoute =
  | { kind: 'galleries'; sub: string; rg?: string }
  | { kind: 'gallery'; sub: string; rg: string; gallery: string }
  | { kind: 'share'; sub: string; rg: string; gallery: string }
  | { kind: 'images'; sub: string; rg: string; gallery: string }
  | { kind: 'image'; sub: string; rg: string; gallery: string; image: string }
  | { kind: 'versions'; sub: string; rg: string; gallery: string; image: string }
  | { kind: 'version'; sub: string; rg: string; gallery: string; image: string; version: string }
  | { kind: 'operation'; sub: string; location: string; id: string }
  | { kind: 'unknown' };

/** ARM matches resource type segments without regard to case (`resourcegroups`, `Images`...). */
const eq = (a: string | undefined, b: string) => a?.toLowerCase() === b.toLowerCase();

function decode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}

export function armRoute(pathname: string): ArmRoute {
  const raw = pathname.split('/').filter(Boolean);
  const seg = raw.map(decode);
  if (seg.some((s) => s === undefined) || !eq(seg[0], 'subscriptions') || !seg[1]) return { kind: 'unknown' };
  const s = seg as string[];
  const sub = s[1]!;
  // /subscriptions/{sub}/providers/Microsoft.Compute/...
  if (eq(s[2], 'providers') && eq(s[3], 'Microsoft.Compute')) {
    if (s.length === 5 && eq(s[4], 'galleries')) return { kind: 'galleries', sub };
    if (s.length === 8 && eq(s[4], 'locations') && eq(s[6], 'capsOperations')) {
      return { kind: 'operation', sub, location: s[5]!, id: s[7]! };
    }
    return { kind: 'unknown' };
  }
  // /subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/galleries/...
  if (!eq(s[2], 'resourceGroups') || !s[3] || !eq(s[4], 'providers') || !eq(s[5], 'Microsoft.Compute')) {
    return { kind: 'unknown' };
  }
  if (!eq(s[6], 'galleries')) return { kind: 'unknown' };
  const rg = s[3];
  if (s.length === 7) return { kind: 'galleries', sub, rg };
  const gallery = s[7]!;
  if (s.length === 8) return { kind: 'gallery', sub, rg, gallery };
  if (s.length === 9 && eq(s[8], 'share')) return { kind: 'share', sub, rg, gallery };
  if (!eq(s[8], 'images')) return { kind: 'unknown' };
  if (s.length === 9) return { kind: 'images', sub, rg, gallery };
  const image = s[9]!;
  if (s.length === 10) return { kind: 'image', sub, rg, gallery, image };
  if (!eq(s[10], 'versions')) return { kind: 'unknown' };
  if (s.length === 11) return { kind: 'versions', sub, rg, gallery, image };
  if (s.length === 12) return { kind: 'version', sub, rg, gallery, image, version: s[11]! };
  return { kind: 'unknown' };
}

const OPERATIONS: Record<ArmRoute['kind'], Record<string, string>> = {
  galleries: { GET: 'Galleries_List' },
  gallery: {
    GET: 'Galleries_Get',
    PUT: 'Galleries_CreateOrUpdate',
    PATCH: 'Galleries_Update',
    DELETE: 'Galleries_Delete',
  },
  share: { POST: 'GallerySharingProfile_Update' },
  images: { GET: 'GalleryImages_ListByGallery' },
  image: {
    GET: 'GalleryImages_Get',
    PUT: 'GalleryImages_CreateOrUpdate',
    PATCH: 'GalleryImages_Update',
    DELETE: 'GalleryImages_Delete',
  },
  versions: { GET: 'GalleryImageVersions_ListByGalleryImage' },
  version: {
    GET: 'GalleryImageVersions_Get',
    PUT: 'GalleryImageVersions_CreateOrUpdate',
    PATCH: 'GalleryImageVersions_Update',
    DELETE: 'GalleryImageVersions_Delete',
  },
  operation: { GET: 'OperationStatus' },
  unknown: {},
};

/**
 * The REST API operation id (as the specification names it) a request maps to, what fault rules select
 * ARM calls by. The Location header of a long-running operation is polled as `OperationResult`.
 */
export function armOperation(route: ArmRoute, method: string, url: URL): string {
  if (route.kind === 'galleries' && route.rg)
    return method === 'GET' ? 'Galleries_ListByResourceGroup' : 'Unknown';
  if (route.kind === 'operation' && url.searchParams.get('monitor') === 'true') {
    return method === 'GET' ? 'OperationResult' : 'Unknown';
  }
  return OPERATIONS[route.kind][method] ?? 'Unknown';
}

/** The RBAC action a call needs, as ARM names it in AuthorizationFailed. */
export function armAction(route: ArmRoute, method: string): string {
  const type = {
    galleries: 'Microsoft.Compute/galleries',
    gallery: 'Microsoft.Compute/galleries',
    share: 'Microsoft.Compute/galleries/share',
    images: 'Microsoft.Compute/galleries/images',
    image: 'Microsoft.Compute/galleries/images',
    versions: 'Microsoft.Compute/galleries/images/versions',
    version: 'Microsoft.Compute/galleries/images/versions',
    operation: 'Microsoft.Compute/locations/capsOperations',
    unknown: 'Microsoft.Resources/unknown',
  }[route.kind];
  if (route.kind === 'share') return `${type}/action`;
  const verb = method === 'GET' ? 'read' : method === 'DELETE' ? 'delete' : 'write';
  return `${type}/${verb}`;
}
