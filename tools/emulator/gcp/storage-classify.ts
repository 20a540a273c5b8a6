/** A Cloud Storage JSON API request: the method it maps to and what it names. */
export interface StorageCall {
  /** The JSON API method (`objects.insert`, `buckets.get`...), or `objects.insert.chunk` for a resumable PUT. */
  operation: string;
  bucket?: string;
  object?: string;
  /** The path Firebase's emulator serves the same call at (it mounts objects under /b/, not /storage/v1/b/). */
  firebasePath?: string;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/**
 * Name a request after the JSON API method it calls, as Cloud Storage's IAM and audit logs do:
 * `buckets.get|list|insert`, `objects.get|list|patch|delete|insert`, and for resumable uploads
 * `objects.insert` (the session's start), `objects.insert.chunk` (each PUT into it, status queries too) and
 * `objects.insert.cancel` (DELETE of the session).
 */
export function storageCall(method: string, url: URL): StorageCall {
  const path = url.pathname;
  const upload = /^\/upload\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(path);
  if (upload) {
    const bucket = decode(upload[1]!);
    const session = url.searchParams.has('upload_id');
    if (method === 'POST') return { operation: 'objects.insert', bucket };
    if (method === 'PUT' && session) return { operation: 'objects.insert.chunk', bucket };
    if (method === 'DELETE' && session) return { operation: 'objects.insert.cancel', bucket };
    return { operation: 'unknown', bucket };
  }
  const object = /^\/(?:storage|download\/storage)\/v1\/b\/([^/]+)\/o\/(.+)$/.exec(path);
  if (object) {
    const [bucket, name] = [decode(object[1]!), decode(object[2]!)];
    const firebasePath = `/b/${object[1]}/o/${object[2]}`;
    const operation =
      method === 'GET'
        ? 'objects.get'
        : method === 'PATCH'
          ? 'objects.patch'
          : method === 'DELETE'
            ? 'objects.delete'
            : 'unknown';
    return { operation, bucket, object: name, firebasePath };
  }
  const list = /^\/storage\/v1\/b\/([^/]+)\/o\/?$/.exec(path);
  if (list)
    return {
      operation: method === 'GET' ? 'objects.list' : 'unknown',
      bucket: decode(list[1]!),
      firebasePath: `/b/${list[1]}/o`,
    };
  const bucket = /^\/storage\/v1\/b\/([^/]+)\/?$/.exec(path);
  if (bucket) return { operation: method === 'GET' ? 'buckets.get' : 'unknown', bucket: decode(bucket[1]!) };
  if (/^\/storage\/v1\/b\/?$/.test(path)) {
    if (method === 'GET') return { operation: 'buckets.list' };
    if (method === 'POST') return { operation: 'buckets.insert' };
  }
  return { operation: 'unknown' };
}
