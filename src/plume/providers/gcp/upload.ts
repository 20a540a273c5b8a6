import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { CRC32C, type File } from '@google-cloud/storage';
import { PlumeError } from '../../../shared/errors.js';
import type { Logger } from '../../../shared/log.js';
import type { UploadSessionKey, UploadSessionStore } from '../../state/upload-sessions.js';
import type { ReleaseEvent } from '../types.js';
import { describeGcpError, gcpFailure } from './clients.js';

/**
 * How old a saved session may be and still be resumed. Cloud Storage forgets a resumable session a week
 * after it was started; one older than six days is started anew rather than risking it expiring half-way
 * through the rest (which would cost a failed run before the fresh upload anyway).
 */
export const SESSION_MAX_AGE_MS = 6 * 24 * 3600 * 1000;

export interface UploadResume {
  store: UploadSessionStore;
  key: UploadSessionKey;
  /** sha256 of the source (its checksum file's): a saved session for another source is not resumed. */
  sourceSha256: string;
  sourceBytes?: number;
}

export interface UploadOptions {
  /** Bytes per resumable-upload request (a multiple of 256 KiB, as Cloud Storage requires). */
  chunkBytes: number;
  /** Custom metadata of the object (what release it belongs to, which source). */
  metadata: Record<string, string>;
  /** Size of the source, when known, for progress. */
  total?: number;
  emit: (event: ReleaseEvent) => void;
  log: Logger;
  signal?: AbortSignal;
  /** Deadline of one status query or cancel of a session. */
  requestTimeoutMs: number;
  /** Retry what the network or Google's servers failed (the provider's policy). */
  retrying: <T>(action: string, fn: () => Promise<T>) => Promise<T>;
  /** Where the session is kept for the next run, when the source's sha256 is known. */
  resume?: UploadResume;
}

export interface UploadResult {
  /** Bytes of the object (all read from the source, hashed). */
  bytes: number;
  /** Bytes this run sent: fewer than `bytes` when it resumed a session a killed run left. */
  sent: number;
  /** Where this run started sending (0 unless resumed). */
  resumedFrom: number;
  md5: string;
  crc32c: string;
}

/** What a session answers to a status query. */
type SessionStatus = { state: 'open'; persisted: number } | { state: 'gone' | 'complete' };

/**
 * A session URI is a bearer capability: any text that reaches a log or a terminal (errors of Google's
 * client can quote the request's URL) has it and its upload_id cut out.
 */
function redacted(err: unknown, uri: string, action: string): PlumeError {
  const e = describeGcpError(err, action);
  const id = new URL(uri).searchParams.get('upload_id');
  const scrub = (text: string) => {
    let t = text.split(uri).join('<upload session>');
    if (id) t = t.split(id).join('<upload id>');
    return t;
  };
  const message = scrub(e.message);
  const hint = e.hint === undefined ? undefined : scrub(e.hint);
  // The cause (Google's error, with its request) is dropped for the same reason.
  return new PlumeError(e.kind, message, hint, { retryable: e.retryable });
}

/**
 * Ask a session how much of the object it holds: Cloud Storage's documented status check, an empty PUT
 * with `Content-Range: bytes *\/*` to the session URI (which authorizes it by itself). 308 is an open
 * session (its Range header, if any, says how many bytes from 0 it persisted); 200/201 a session whose
 * object was made; 404 and 410 one that expired or was cancelled, and any other refusal one not worth
 * trusting. Network failures and 5xx/429 are thrown, retryable: the session may well be alive.
 */
async function sessionStatus(uri: string, opts: UploadOptions): Promise<SessionStatus> {
  const signal = AbortSignal.any([
    AbortSignal.timeout(opts.requestTimeoutMs),
    ...(opts.signal ? [opts.signal] : []),
  ]);
  let res: Response;
  try {
    res = await fetch(uri, {
      method: 'PUT',
      headers: { 'content-range': 'bytes */*', 'content-length': '0' },
      signal,
    });
    await res.arrayBuffer();
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw new PlumeError(
      'provider',
      `storage.objects.insert (upload status) failed: ${(err as Error).name}`,
      'run again to resume',
      { retryable: true },
    );
  }
  if (res.status === 308) {
    const m = /^bytes=0-(\d+)$/.exec(res.headers.get('range') ?? '');
    return { state: 'open', persisted: m ? Number(m[1]) + 1 : 0 };
  }
  if (res.status === 200 || res.status === 201) return { state: 'complete' };
  if (res.status === 429 || res.status >= 500)
    throw new PlumeError(
      'provider',
      `storage.objects.insert (upload status) failed: ${res.status}`,
      'run again to resume',
      { retryable: true },
    );
  return { state: 'gone' };
}

/** Cancel a session no longer wanted (best effort: its bytes are dropped by Cloud Storage in a week anyway). */
async function cancelSession(uri: string, opts: UploadOptions): Promise<void> {
  await fetch(uri, {
    method: 'DELETE',
    headers: { 'content-length': '0' },
    signal: AbortSignal.timeout(opts.requestTimeoutMs),
  })
    .then((r) => r.arrayBuffer())
    .catch(() => undefined);
}

/**
 * The session a previous run of this release left for this object, and how much of it Cloud Storage
 * holds; undefined (and forgotten) when there is none worth resuming: for another source, too old, gone.
 */
async function savedSession(
  resume: UploadResume,
  opts: UploadOptions,
): Promise<{ uri: string; persisted: number } | undefined> {
  const saved = await resume.store.get(resume.key);
  if (!saved) return undefined;
  const forget = async (why: string) => {
    opts.log.info({ object: resume.key.object, reason: why }, 'not resuming the upload a previous run left');
    await resume.store.delete(resume.key);
    return undefined;
  };
  if (
    saved.sourceSha256 !== resume.sourceSha256 ||
    (saved.sourceBytes !== undefined &&
      resume.sourceBytes !== undefined &&
      saved.sourceBytes !== resume.sourceBytes)
  ) {
    await cancelSession(saved.uri, opts);
    return forget('it was for another source');
  }
  if (Date.now() - saved.createdAt > SESSION_MAX_AGE_MS) {
    await cancelSession(saved.uri, opts);
    return forget('its session is older than Cloud Storage keeps one');
  }
  const status = await opts.retrying('storage.objects.insert', () => sessionStatus(saved.uri, opts));
  if (status.state !== 'open')
    return forget(
      status.state === 'gone'
        ? 'Cloud Storage no longer knows its session'
        : // Its object was made (and, not being there now, deleted as unchecked by this run): start afresh.
          'its session already finished',
    );
  return { uri: saved.uri, persisted: status.persisted };
}

/**
 * Stream chunks into a Cloud Storage object through one resumable session: the library sends them in
 * `chunkBytes` requests and, when one breaks, asks the session how much it holds and resumes from there;
 * nothing is written to local disk. The session's URI is saved in the state database before the first byte
 * goes, so that a run killed mid-way (which no in-process retry survives) is resumed by the next run: it
 * asks the saved session how much it holds, reads the source again from its start (every byte is hashed:
 * the checks below are over the whole object, not only what this run sent), skips what the session holds
 * and sends the rest. The object exists only once the last byte is in (and never replaces one:
 * `ifGenerationMatch: 0`). What Cloud Storage says it holds is then checked against what was read, MD5 and
 * CRC32C both; a mismatch deletes the object (and a next run starts from nothing).
 */
export async function uploadObject(
  file: File,
  chunks: AsyncIterable<Buffer>,
  opts: UploadOptions,
): Promise<UploadResult> {
  const preconditionOpts = { ifGenerationMatch: 0 };
  const { resume } = opts;
  const saved = resume ? await savedSession(resume, opts) : undefined;
  let uri: string;
  let offset = 0;
  if (saved) {
    ({ uri } = saved);
    offset = saved.persisted;
    opts.log.info(
      { object: resume!.key.object, persisted: offset },
      'resuming the upload a previous run left',
    );
  } else {
    try {
      [uri] = await file.createResumableUpload({
        metadata: { contentType: 'application/gzip', metadata: opts.metadata },
        preconditionOpts,
      });
    } catch (err) {
      throw describeGcpError(err, 'storage.objects.insert');
    }
    if (resume)
      try {
        await resume.store.put(resume.key, {
          uri,
          sourceSha256: resume.sourceSha256,
          ...(resume.sourceBytes !== undefined ? { sourceBytes: resume.sourceBytes } : {}),
          createdAt: Date.now(),
        });
      } catch (err) {
        opts.log.warn(
          { object: resume.key.object, err: (err as Error).message },
          'could not save the upload session: a run killed mid-upload will start it over',
        );
      }
  }

  const md5 = createHash('md5');
  const crc = new CRC32C();
  let bytes = 0;
  let sent = 0;
  let lastReport = 0;
  const read = (chunk: Buffer) => {
    md5.update(chunk);
    crc.update(chunk);
    bytes += chunk.length;
  };
  const progress = () => {
    if (bytes - lastReport < 16 * 2 ** 20) return;
    lastReport = bytes;
    opts.emit({
      type: 'upload-progress',
      rawBytes: bytes,
      totalBytes: opts.total ?? bytes,
      blocksSent: 0,
      zeroBlocks: 0,
      bytesSent: sent,
    });
  };
  const source = chunks[Symbol.asyncIterator]();
  // What the session holds is read and hashed, not sent; the rest of the chunk that crosses the offset is
  // (hashed only once it is sent, so that crcBefore is the CRC32C of exactly the bytes the session holds).
  let pending: Buffer | undefined;
  try {
    while (bytes < offset) {
      const next = await source.next();
      if (next.done) break;
      const take = Math.min(next.value.length, offset - bytes);
      read(take === next.value.length ? next.value : next.value.subarray(0, take));
      progress();
      if (take < next.value.length) pending = next.value.subarray(take);
    }
  } catch (err) {
    if (err instanceof PlumeError) throw err;
    throw redacted(err, uri, 'storage.objects.insert');
  }
  if (bytes < offset) {
    // The session holds more than the source has: not this source's bytes after all.
    if (resume) await resume.store.delete(resume.key);
    await cancelSession(uri, opts);
    throw new PlumeError(
      'provider',
      `the upload session a previous run left holds ${offset} bytes, more than the ${bytes} of the source`,
      'run again: the upload starts over',
    );
  }
  const crcBefore = crc.toString();
  async function* rest(): AsyncGenerator<Buffer> {
    if (pending?.length) {
      read(pending);
      sent += pending.length;
      yield pending;
    }
    for (;;) {
      const next = await source.next();
      if (next.done) return;
      read(next.value);
      sent += next.value.length;
      progress();
      yield next.value;
    }
  }
  try {
    await pipeline(
      Readable.from(rest()),
      file.createWriteStream({
        uri,
        resumable: true,
        chunkSize: opts.chunkBytes,
        preconditionOpts,
        // Where the session is (0: a new one, no status query needed), and the CRC32C of the bytes it
        // holds, so the library's own check of the object covers all of it.
        offset,
        ...(offset > 0 ? { resumeCRC32C: crcBefore } : {}),
      }),
      { signal: opts.signal },
    );
  } catch (err) {
    // A session that is finished (the library's own check failed and it deleted the object) or that Cloud
    // Storage no longer knows cannot be resumed by the next run either; one still open is kept for it.
    if (resume && !opts.signal?.aborted) {
      const { status } = gcpFailure(err);
      const state =
        status === 404 || status === 410
          ? 'gone'
          : await sessionStatus(uri, opts).then(
              (s) => s.state,
              () => 'open',
            );
      if (state !== 'open') await resume.store.delete(resume.key);
    }
    if (err instanceof PlumeError) throw err;
    throw redacted(err, uri, 'storage.objects.insert');
  }
  // The object is made: the session is finished, whatever the checks below find.
  await resume?.store.delete(resume.key);
  const sums = { md5: md5.digest('base64'), crc32c: crc.toString() };
  let meta: { md5Hash?: string; crc32c?: string; size?: string | number };
  try {
    [meta] = (await file.getMetadata()) as unknown as [typeof meta];
  } catch (err) {
    throw describeGcpError(err, 'storage.objects.get');
  }
  if (meta.md5Hash !== sums.md5 || meta.crc32c !== sums.crc32c || Number(meta.size) !== bytes) {
    await file.delete({ ignoreNotFound: true }).catch(() => undefined);
    throw new PlumeError(
      'provider',
      `Cloud Storage holds ${String(meta.size)} bytes (md5 ${meta.md5Hash}, crc32c ${meta.crc32c}) of the ${bytes} read (md5 ${sums.md5}, crc32c ${sums.crc32c})`,
      'the upload was damaged on its way; run again',
    );
  }
  return { bytes, sent, resumedFrom: offset, ...sums };
}
