import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CRC32C, type File } from '@google-cloud/storage';
import { PlumeError } from '../../../shared/errors.js';
import type { ReleaseEvent } from '../types.js';
import { describeGcpError } from './clients.js';

export interface UploadOptions {
  /** Bytes per resumable-upload request (a multiple of 256 KiB, as Cloud Storage requires). */
  chunkBytes: number;
  /** Custom metadata of the object (what release it belongs to, which source). */
  metadata: Record<string, string>;
  /** Size of the source, when known, for progress. */
  total?: number;
  emit: (event: ReleaseEvent) => void;
  signal?: AbortSignal;
}

/**
 * Stream chunks into a Cloud Storage object through one resumable session: the library sends them in
 * `chunkBytes` requests and, when one breaks, asks the session how much it holds and resumes from there;
 * nothing is written to local disk. The object exists only once the last byte is in (and never replaces
 * one: `ifGenerationMatch: 0`). What Cloud Storage says it holds is then checked against what was sent,
 * MD5 and CRC32C both; a mismatch deletes the object.
 */
export async function uploadObject(
  file: File,
  chunks: AsyncIterable<Buffer>,
  opts: UploadOptions,
): Promise<{ bytes: number; md5: string; crc32c: string }> {
  const preconditionOpts = { ifGenerationMatch: 0 };
  let uri: string;
  try {
    [uri] = await file.createResumableUpload({
      metadata: { contentType: 'application/gzip', metadata: opts.metadata },
      preconditionOpts,
    });
  } catch (err) {
    throw describeGcpError(err, 'storage.objects.insert');
  }
  const md5 = createHash('md5');
  const crc = new CRC32C();
  let bytes = 0;
  let lastReport = 0;
  async function* counted(): AsyncGenerator<Buffer> {
    for await (const chunk of chunks) {
      md5.update(chunk);
      crc.update(chunk);
      bytes += chunk.length;
      if (bytes - lastReport >= 16 * 2 ** 20) {
        lastReport = bytes;
        opts.emit({
          type: 'upload-progress',
          rawBytes: bytes,
          totalBytes: opts.total ?? bytes,
          blocksSent: 0,
          zeroBlocks: 0,
          bytesSent: bytes,
        });
      }
      yield chunk;
    }
  }
  try {
    await pipeline(
      Readable.from(counted()),
      file.createWriteStream({ uri, resumable: true, chunkSize: opts.chunkBytes, preconditionOpts }),
      { signal: opts.signal },
    );
  } catch (err) {
    if (err instanceof PlumeError) throw err;
    throw describeGcpError(err, 'storage.objects.insert');
  }
  const sent = { md5: md5.digest('base64'), crc32c: crc.toString() };
  let meta: { md5Hash?: string; crc32c?: string; size?: string | number };
  try {
    [meta] = (await file.getMetadata()) as unknown as [typeof meta];
  } catch (err) {
    throw describeGcpError(err, 'storage.objects.get');
  }
  if (meta.md5Hash !== sent.md5 || meta.crc32c !== sent.crc32c || Number(meta.size) !== bytes) {
    await file.delete({ ignoreNotFound: true }).catch(() => undefined);
    throw new PlumeError(
      'provider',
      `Cloud Storage holds ${String(meta.size)} bytes (md5 ${meta.md5Hash}, crc32c ${meta.crc32c}) of the ${bytes} sent (md5 ${sent.md5}, crc32c ${sent.crc32c})`,
      'the upload was damaged on its way; run again',
    );
  }
  return { bytes, ...sent };
}
