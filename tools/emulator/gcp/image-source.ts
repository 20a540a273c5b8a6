import type { HttpUpstream } from '../upstream.js';
import { readAll } from '../upstream.js';
import { checkArchive, type ArchiveCheck } from './archive.js';
import type { Buckets } from './buckets.js';
import { invalidField } from './errors.js';

export interface SourceObject {
  bucket: string;
  object: string;
}

/**
 * `rawDisk.source` as Compute Engine takes it: `https://storage.googleapis.com/BUCKET/OBJECT`,
 * `https://storage.cloud.google.com/BUCKET/OBJECT` or `gs://BUCKET/OBJECT`.
 */
export function parseSource(source: unknown): SourceObject {
  const field = 'resource.rawDisk.source';
  if (typeof source !== 'string' || !source)
    return invalidField(field, source ?? '', 'A source is required.');
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    return invalidField(field, source, 'Must be a Cloud Storage URL.');
  }
  let bucket: string | undefined;
  let path: string;
  if (url.protocol === 'gs:') {
    bucket = url.hostname;
    path = url.pathname.replace(/^\//, '');
  } else if (
    url.protocol === 'https:' &&
    ['storage.googleapis.com', 'storage.cloud.google.com'].includes(url.hostname)
  ) {
    const [b, ...rest] = url.pathname.replace(/^\//, '').split('/');
    bucket = b;
    path = rest.join('/');
  } else return invalidField(field, source, 'Must be a Cloud Storage URL.');
  if (!bucket || !path) return invalidField(field, source, 'Must name an object in a bucket.');
  return { bucket: decodeURIComponent(bucket), object: decodeURIComponent(path) };
}

export type SourceCheck =
  (ArchiveCheck & { ok: false }) | { ok: true; diskBytes: number; archiveBytes: number };

/**
 * The emulator's own reads of image archives: straight from the Firebase Storage emulator, past the proxy,
 * so no fault rule fires on them and no token is needed (Compute Engine reads with its own service agent).
 */
export class ImageSources {
  constructor(
    private readonly firebase: HttpUpstream,
    private readonly buckets: Buckets,
  ) {}

  /** Static checks, answered at once: the source must name an object in a bucket of this project. */
  locate(source: unknown): SourceObject {
    const where = parseSource(source);
    if (!this.buckets.get(where.bucket))
      invalidField('resource.rawDisk.source', String(source), `The bucket '${where.bucket}' does not exist.`);
    return where;
  }

  /** Read the archive and judge it as GCE does; never throws. */
  async check(where: SourceObject): Promise<SourceCheck> {
    const path = `/b/${encodeURIComponent(where.bucket)}/o/${encodeURIComponent(where.object)}`;
    try {
      const meta = await this.firebase.buffered({ method: 'GET', path, headers: {} });
      if (meta.status === 404)
        return {
          ok: false,
          code: 'RESOURCE_NOT_FOUND',
          message: `The resource 'gs://${where.bucket}/${where.object}' was not found`,
        };
      if (meta.status !== 200) throw new Error(`Firebase answered ${meta.status}`);
      const { size } = JSON.parse(meta.body.toString('utf8')) as { size: string };
      const media = await this.firebase.send({ method: 'GET', path: `${path}?alt=media`, headers: {} });
      if (media.statusCode !== 200) {
        await readAll(media);
        throw new Error(`Firebase answered ${media.statusCode} to the download`);
      }
      const checked = await checkArchive(media);
      return checked.ok ? { ok: true, diskBytes: checked.diskBytes, archiveBytes: Number(size) } : checked;
    } catch (e) {
      return {
        ok: false,
        code: 'INTERNAL_ERROR',
        message: `emulator: reading gs://${where.bucket}/${where.object} failed: ${e instanceof Error ? e.message : String(e)}`,
      };
    }
  }
}
