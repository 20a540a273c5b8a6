import type { IncomingHttpHeaders } from 'node:http';

export interface Scope {
  accessKeyId: string;
  region: string;
  service: string;
}

const CREDENTIAL = /Credential=([^/,\s]+)\/\d{8}\/([^/]+)\/([^/]+)\/aws4_request/;

/**
 * The SigV4 credential scope of a request, from its Authorization header or (presigned URLs) its
 * X-Amz-Credential query parameter. moto routes on the same scope, so this is what moto will see too.
 */
export function credentialScope(headers: IncomingHttpHeaders, url: URL): Scope | undefined {
  const auth = headers.authorization;
  const m = auth ? CREDENTIAL.exec(auth) : undefined;
  if (m) return { accessKeyId: m[1]!, region: m[2]!, service: m[3]! };
  const cred = url.searchParams.get('X-Amz-Credential');
  const parts = cred?.split('/');
  if (parts && parts.length === 5) return { accessKeyId: parts[0]!, region: parts[2]!, service: parts[3]! };
  return undefined;
}

/** Services whose requests are small enough (or need validating) to buffer whole; S3 bodies stream. */
export function buffersBody(service: string): boolean {
  return service !== 's3' && service !== 'unknown';
}

/** The operation of a query-protocol request (EC2, STS, IAM): its Action parameter. */
export function queryOperation(params: URLSearchParams): string {
  return params.get('Action') ?? 'Unknown';
}

export type EbsRoute =
  | { operation: 'StartSnapshot' }
  | { operation: 'PutSnapshotBlock' | 'GetSnapshotBlock'; snapshotId: string; blockIndex: string }
  | { operation: 'CompleteSnapshot' | 'ListSnapshotBlocks' | 'ListChangedBlocks'; snapshotId: string }
  | { operation: 'Unknown' };

/** EBS direct is REST-JSON: the operation is the method plus the path's shape. */
export function ebsRoute(method: string, path: string): EbsRoute {
  const seg = path.split('/').filter(Boolean).map(decodeURIComponent);
  if (seg[0] !== 'snapshots') return { operation: 'Unknown' };
  if (seg.length === 1 && method === 'POST') return { operation: 'StartSnapshot' };
  if (seg.length === 3 && seg[1] === 'completion' && method === 'POST') {
    return { operation: 'CompleteSnapshot', snapshotId: seg[2]! };
  }
  if (seg.length === 3 && seg[2] === 'blocks' && method === 'GET') {
    return { operation: 'ListSnapshotBlocks', snapshotId: seg[1]! };
  }
  if (seg.length === 3 && seg[2] === 'changedblocks' && method === 'GET') {
    return { operation: 'ListChangedBlocks', snapshotId: seg[1]! };
  }
  if (seg.length === 4 && seg[2] === 'blocks') {
    if (method === 'PUT') return { operation: 'PutSnapshotBlock', snapshotId: seg[1]!, blockIndex: seg[3]! };
    if (method === 'GET') return { operation: 'GetSnapshotBlock', snapshotId: seg[1]!, blockIndex: seg[3]! };
  }
  return { operation: 'Unknown' };
}

/**
 * The S3 API operation a request maps to. The SDK uses path-style addressing against an IP endpoint, but a
 * virtual-hosted bucket (`bucket.localhost`) is recognised too.
 */
export function s3Operation(method: string, url: URL, headers: IncomingHttpHeaders): string {
  const q = url.searchParams;
  const host = (headers.host ?? '').split(':')[0] ?? '';
  const virtualBucket = /^[a-z0-9.-]+\.(localhost|s3[.-].*)$/.test(host) && !/^s3[.-]/.test(host);
  const segments = url.pathname.split('/').filter(Boolean);
  const hasBucket = virtualBucket || segments.length > 0;
  const hasKey = virtualBucket ? segments.length > 0 : segments.length > 1;
  const copySource = headers['x-amz-copy-source'] !== undefined;

  if (!hasBucket) return method === 'GET' ? 'ListBuckets' : 'Unknown';
  if (!hasKey) {
    switch (method) {
      case 'PUT':
        if (q.has('tagging')) return 'PutBucketTagging';
        if (q.has('policy')) return 'PutBucketPolicy';
        if (q.has('versioning')) return 'PutBucketVersioning';
        if (q.has('acl')) return 'PutBucketAcl';
        return 'CreateBucket';
      case 'DELETE':
        if (q.has('tagging')) return 'DeleteBucketTagging';
        if (q.has('policy')) return 'DeleteBucketPolicy';
        return 'DeleteBucket';
      case 'HEAD':
        return 'HeadBucket';
      case 'POST':
        return q.has('delete') ? 'DeleteObjects' : 'Unknown';
      case 'GET':
        if (q.has('uploads')) return 'ListMultipartUploads';
        if (q.has('location')) return 'GetBucketLocation';
        if (q.has('tagging')) return 'GetBucketTagging';
        if (q.has('policy')) return 'GetBucketPolicy';
        if (q.has('versioning')) return 'GetBucketVersioning';
        if (q.has('versions')) return 'ListObjectVersions';
        if (q.has('acl')) return 'GetBucketAcl';
        return q.get('list-type') === '2' ? 'ListObjectsV2' : 'ListObjects';
      default:
        return 'Unknown';
    }
  }
  switch (method) {
    case 'PUT':
      if (q.has('partNumber') && q.has('uploadId')) return copySource ? 'UploadPartCopy' : 'UploadPart';
      if (q.has('tagging')) return 'PutObjectTagging';
      if (q.has('acl')) return 'PutObjectAcl';
      return copySource ? 'CopyObject' : 'PutObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      return 'Unknown';
    case 'DELETE':
      if (q.has('uploadId')) return 'AbortMultipartUpload';
      if (q.has('tagging')) return 'DeleteObjectTagging';
      return 'DeleteObject';
    case 'GET':
      if (q.has('uploadId')) return 'ListParts';
      if (q.has('tagging')) return 'GetObjectTagging';
      if (q.has('acl')) return 'GetObjectAcl';
      return 'GetObject';
    case 'HEAD':
      return 'HeadObject';
    default:
      return 'Unknown';
  }
}
