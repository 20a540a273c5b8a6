import type { IncomingHttpHeaders } from 'node:http';

/** A Blob service request: the account, container and blob its path names. */
export interface BlobTarget {
  account?: string;
  container?: string;
  blob?: string;
}

/** Path-style addressing (what Azurite and the SDK use against an IP endpoint): /account/container/blob. */
export function blobTarget(pathname: string): BlobTarget {
  const [account, container, ...rest] = pathname.replace(/^\/+/, '').split('/');
  const decode = (s: string | undefined) => {
    if (!s) return undefined;
    try {
      return decodeURIComponent(s);
    } catch {
      return s; // a malformed escape is Azurite's to refuse, not the classifier's
    }
  };
  return {
    account: decode(account),
    container: decode(container),
    blob: rest.length ? decode(rest.join('/')) : undefined,
  };
}

/**
 * The Blob service REST operation a request maps to (names as in the REST reference, without spaces):
 * PutBlob, PutPage, ClearPage, GetPageRanges, GetBlob, GetBlobProperties, DeleteBlob, CreateContainer...
 */
export function blobOperation(method: string, url: URL, headers: IncomingHttpHeaders): string {
  const q = url.searchParams;
  const comp = q.get('comp');
  const restype = q.get('restype');
  const { container, blob } = blobTarget(url.pathname);

  if (!container) {
    if (comp === 'list' && method === 'GET') return 'ListContainers';
    if (restype === 'service' && comp === 'properties') {
      return method === 'PUT' ? 'SetBlobServiceProperties' : 'GetBlobServiceProperties';
    }
    if (restype === 'account' && comp === 'properties') return 'GetAccountInformation';
    return 'Unknown';
  }
  if (!blob) {
    if (restype !== 'container') return 'Unknown';
    if (comp === 'list') return 'ListBlobs';
    if (comp === 'metadata') return method === 'PUT' ? 'SetContainerMetadata' : 'GetContainerMetadata';
    if (comp === 'acl') return method === 'PUT' ? 'SetContainerACL' : 'GetContainerACL';
    if (comp === 'lease') return 'LeaseContainer';
    switch (method) {
      case 'PUT':
        return 'CreateContainer';
      case 'DELETE':
        return 'DeleteContainer';
      case 'GET':
      case 'HEAD':
        return 'GetContainerProperties';
      default:
        return 'Unknown';
    }
  }
  switch (method) {
    case 'PUT':
      switch (comp) {
        case 'page':
          return headers['x-ms-page-write'] === 'clear' ? 'ClearPage' : 'PutPage';
        case 'block':
          return 'PutBlock';
        case 'blocklist':
          return 'PutBlockList';
        case 'properties':
          return 'SetBlobProperties';
        case 'metadata':
          return 'SetBlobMetadata';
        case 'lease':
          return 'LeaseBlob';
        case 'snapshot':
          return 'SnapshotBlob';
        case 'tags':
          return 'SetBlobTags';
        case 'appendblock':
          return 'AppendBlock';
        case null:
          return headers['x-ms-copy-source'] !== undefined ? 'CopyBlob' : 'PutBlob';
        default:
          return 'Unknown';
      }
    case 'GET':
      switch (comp) {
        case 'pagelist':
          return 'GetPageRanges';
        case 'blocklist':
          return 'GetBlockList';
        case 'metadata':
          return 'GetBlobMetadata';
        case 'tags':
          return 'GetBlobTags';
        case null:
          return 'GetBlob';
        default:
          return 'Unknown';
      }
    case 'HEAD':
      return 'GetBlobProperties';
    case 'DELETE':
      return 'DeleteBlob';
    default:
      return 'Unknown';
  }
}
