/** A Compute Engine v1 REST path, as the fake serves it. */
export type ComputeRoute =
  | { kind: 'project'; project: string }
  | { kind: 'images'; project: string }
  | { kind: 'image'; project: string; image: string; verb?: string }
  | { kind: 'family'; project: string; family: string }
  | { kind: 'operations'; project: string }
  | { kind: 'operation'; project: string; operation: string; verb?: string }
  | { kind: 'unknown' };

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** Parse `/compute/v1/projects/{project}/global/...` (what @google-cloud/compute's REST transport sends). */
export function computeRoute(pathname: string): ComputeRoute {
  const m = /^\/compute\/v1\/projects\/([^/]+)(\/.*)?$/.exec(pathname);
  if (!m) return { kind: 'unknown' };
  const project = decode(m[1]!);
  const rest = (m[2] ?? '').replace(/\/+$/, '');
  if (rest === '') return { kind: 'project', project };
  if (rest === '/global/images') return { kind: 'images', project };
  if (rest === '/global/operations') return { kind: 'operations', project };
  let r = /^\/global\/images\/family\/([^/]+)$/.exec(rest);
  if (r) return { kind: 'family', project, family: decode(r[1]!) };
  r = /^\/global\/images\/([^/]+)(?:\/([A-Za-z]+))?$/.exec(rest);
  if (r) return { kind: 'image', project, image: decode(r[1]!), ...(r[2] ? { verb: r[2] } : {}) };
  r = /^\/global\/operations\/([^/]+)(?:\/(wait))?$/.exec(rest);
  if (r) return { kind: 'operation', project, operation: decode(r[1]!), ...(r[2] ? { verb: r[2] } : {}) };
  return { kind: 'unknown' };
}

/** The API method a call is, as Compute Engine names it (`images.insert`...): the fault and call-log name. */
export function computeOperation(route: ComputeRoute, method: string): string {
  switch (route.kind) {
    case 'project':
      return method === 'GET' ? 'projects.get' : 'unknown';
    case 'images':
      return method === 'POST' ? 'images.insert' : method === 'GET' ? 'images.list' : 'unknown';
    case 'family':
      return method === 'GET' ? 'images.getFromFamily' : 'unknown';
    case 'image':
      if (!route.verb)
        return method === 'GET' ? 'images.get' : method === 'DELETE' ? 'images.delete' : 'unknown';
      if (route.verb === 'getIamPolicy') return method === 'GET' ? 'images.getIamPolicy' : 'unknown';
      if (['deprecate', 'setLabels', 'setIamPolicy'].includes(route.verb))
        return method === 'POST' ? `images.${route.verb}` : 'unknown';
      return 'unknown';
    case 'operations':
      return method === 'GET' ? 'globalOperations.list' : 'unknown';
    case 'operation':
      if (route.verb === 'wait') return method === 'POST' ? 'globalOperations.wait' : 'unknown';
      return method === 'GET'
        ? 'globalOperations.get'
        : method === 'DELETE'
          ? 'globalOperations.delete'
          : 'unknown';
    default:
      return 'unknown';
  }
}

/** The IAM permission each method needs, for the access-denied fault's message. */
export function computePermission(operation: string): string {
  const [resource, verb] = operation.split('.');
  if (resource === 'images' && verb === 'insert') return 'compute.images.create';
  return `compute.${resource}.${verb}`;
}
