import { BlobServiceClient, RestError, StorageSharedKeyCredential } from '@azure/storage-blob';
import { DEV_ACCOUNT } from './config.js';
import { invalid } from './errors.js';
import { FOOTER_SIZE, vhdProblem, type VhdProblem } from './vhd.js';

/** A version's OS disk source as the request gave it. */
export interface DiskSource {
  uri: string;
  storageAccountId: string;
}

export type SourceCheck = { ok: true; sizeBytes: number } | { ok: false; problem: VhdProblem };

const STORAGE_ACCOUNT_ID =
  /^\/subscriptions\/[^/]+\/resourceGroups\/[^/]+\/providers\/Microsoft\.Storage\/storageAccounts\/([a-z0-9]{3,24})$/i;

/**
 * The emulator's view of its storage account: checks that a source URI names a blob in it, and reads that
 * blob's size and VHD footer straight from Azurite (past the blob proxy, so no fault rule fires on the
 * emulator's own reads).
 */
export class SourceReader {
  private readonly service: BlobServiceClient;

  constructor(
    azuriteEndpoint: string,
    /** host:port of the endpoints clients may name in a URI (the blob proxy, Azurite itself). */
    private readonly hosts: readonly string[],
  ) {
    this.service = new BlobServiceClient(
      `${azuriteEndpoint}/${DEV_ACCOUNT.name}`,
      new StorageSharedKeyCredential(DEV_ACCOUNT.name, DEV_ACCOUNT.key),
      { retryOptions: { maxTries: 1 } },
    );
  }

  /** Static checks, answered at once with 400: the URI and account id must name a blob of this account. */
  locate(source: DiskSource, target: string): { container: string; blob: string } {
    const m = STORAGE_ACCOUNT_ID.exec(source.storageAccountId);
    if (!m)
      invalid(
        `The storage account id '${source.storageAccountId}' is not a valid resource id.`,
        `${target}.storageAccountId`,
      );
    let url: URL;
    try {
      url = new URL(source.uri);
    } catch {
      return invalid(`The blob uri '${source.uri}' is not a valid URI.`, `${target}.uri`);
    }
    const [account, container, ...rest] = url.pathname
      .split('/')
      .filter(Boolean)
      .map((s) => decodeURIComponent(s));
    if (
      !['http:', 'https:'].includes(url.protocol) ||
      !this.hosts.includes(url.host) ||
      !container ||
      !rest.length
    ) {
      invalid(
        `The blob uri '${source.uri}' does not name a blob in a storage account this emulator serves.`,
        `${target}.uri`,
      );
    }
    if (account !== DEV_ACCOUNT.name || account.toLowerCase() !== m[1]!.toLowerCase()) {
      invalid(
        `The blob uri '${source.uri}' is not in storage account '${m[1]}' given by storageAccountId.`,
        `${target}.uri`,
      );
    }
    return { container, blob: rest.join('/') };
  }

  /** Read the blob and judge it as Azure judges an image source; never throws. */
  async check(uri: string, where: { container: string; blob: string }): Promise<SourceCheck> {
    const client = this.service.getContainerClient(where.container).getPageBlobClient(where.blob);
    try {
      const props = await client.getProperties();
      const size = props.contentLength ?? 0;
      if (props.blobType !== 'PageBlob') {
        return {
          ok: false,
          problem: {
            code: 'InvalidVhd',
            message: `The blob ${uri} is a ${props.blobType ?? 'unknown'}; a VHD must be a page blob.`,
          },
        };
      }
      if (size < FOOTER_SIZE) return { ok: false, problem: vhdProblem(Buffer.alloc(0), size, uri)! };
      const footer = await client.downloadToBuffer(size - FOOTER_SIZE, FOOTER_SIZE);
      const problem = vhdProblem(footer, size, uri);
      return problem ? { ok: false, problem } : { ok: true, sizeBytes: size - FOOTER_SIZE };
    } catch (e) {
      if (e instanceof RestError && e.statusCode === 404) {
        return {
          ok: false,
          problem: { code: 'InvalidParameter', message: `The source blob ${uri} does not exist.` },
        };
      }
      return {
        ok: false,
        problem: { code: 'InternalOperationError', message: `emulator: reading ${uri} failed: ${String(e)}` },
      };
    }
  }

  /** Delete every container: Azurite back to empty on reset. */
  async clear(): Promise<void> {
    for await (const c of this.service.listContainers()) await this.service.deleteContainer(c.name);
  }
}
