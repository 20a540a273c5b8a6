import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { PlumeError } from '../../shared/errors.js';
import { backoffDelay } from '../../shared/retry.js';
import { assertTlsVerified, checkSource, type SourcePolicy } from './policy.js';

const MAX_REDIRECTS = 5;

/** A response body as byte chunks (undici's stream is typed loosely). */
async function* bodyChunks(res: Response): AsyncGenerator<Uint8Array> {
  if (!res.body) return;
  for await (const chunk of res.body as AsyncIterable<Uint8Array>) yield chunk;
}

/** A failure worth another attempt: the network or the server hiccuped, the content is not at fault. */
class TransientError extends Error {}

/** Node's codes for a certificate that does not verify (self-signed, unknown CA, expired, wrong name). */
const TLS_CODES =
  /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_VERIFY_LEAF_SIGNATURE|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|CERT_[A-Z_]+|ERR_TLS_CERT_ALTNAME_INVALID)$/;

/** The reason a host's certificate was refused, if that is why a fetch failed. */
function tlsRefusal(err: unknown): string | undefined {
  const cause = err instanceof Error ? (err.cause as NodeJS.ErrnoException | undefined) : undefined;
  if (!cause?.code || !TLS_CODES.test(cause.code)) return undefined;
  // Node 24 appends its own advice ("; if the root CA is installed locally, try running Node.js with
  // --use-system-ca"): plume gives its own, so keep the reason only, the same on every Node.js.
  return cause.message.replace(/; if the root CA is installed locally.*$/s, '');
}

function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  // The same certificate will be refused again: no point retrying, and it is not the network's fault.
  if (tlsRefusal(err)) return false;
  if (err instanceof PlumeError) return false;
  if (err instanceof Error && err.name === 'AbortError') return false;
  // undici reports network failures as TypeError('fetch failed') with a cause.
  return err instanceof TypeError || (err instanceof Error && 'code' in err);
}

async function request(
  url: URL,
  policy: SourcePolicy,
  init: { method?: string; headers?: Record<string, string>; signal?: AbortSignal },
): Promise<Response> {
  assertTlsVerified();
  let current = url;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const res = await fetch(current, { ...init, redirect: 'manual' });
    if (res.status >= 300 && res.status < 400 && res.headers.get('location')) {
      await res.body?.cancel();
      // Every hop is checked: an allowed host must not bounce us to one that is not.
      current = checkSource(new URL(res.headers.get('location')!, current).href, policy);
      continue;
    }
    if (res.status >= 500 || res.status === 429 || res.status === 408) {
      await res.body?.cancel();
      throw new TransientError(`${current.href} answered HTTP ${res.status}`);
    }
    if (res.status === 404 || res.status === 410) {
      await res.body?.cancel();
      throw new PlumeError(
        'source',
        `not found (HTTP ${res.status}): ${current.href}`,
        'check the URL and that the compose finished',
      );
    }
    if (res.status >= 400) {
      await res.body?.cancel();
      throw new PlumeError(
        'source',
        `${current.href} answered HTTP ${res.status}`,
        'check the URL and access to it',
      );
    }
    return res;
  }
  throw new PlumeError('source', `too many redirects fetching ${url.href}`);
}

function describeFetchError(url: URL, err: unknown): PlumeError {
  if (err instanceof PlumeError) return err;
  const tls = tlsRefusal(err);
  if (tls)
    return new PlumeError(
      'source',
      `refusing ${url.host}: its TLS certificate does not verify (${tls})`,
      "images and metadata are fetched over verified TLS only: fix the host's certificate, or trust its CA with NODE_EXTRA_CA_CERTS",
      { cause: err },
    );
  const cause =
    err instanceof Error && err.cause instanceof Error
      ? err.cause.message
      : String(err instanceof Error ? err.message : err);
  return new PlumeError(
    'source',
    `cannot fetch ${url.href}: ${cause}`,
    'check the URL, the network and that the host is up',
    // Attempts were exhausted on a network or server failure: a later try may well succeed.
    { cause: err, retryable: true },
  );
}

/** Fetch a small document whole (compose metadata), retrying transient failures. */
export async function fetchDocument(
  location: string | URL,
  policy: SourcePolicy,
  signal?: AbortSignal,
): Promise<Buffer> {
  const url = location instanceof URL ? location : checkSource(location, policy);
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new PlumeError(
        'source',
        `cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
      );
    });
    if (info.size > policy.maxMetadataBytes)
      throw new PlumeError('input', `${path} is larger than ${policy.maxMetadataBytes} bytes`);
    const fh = await open(path);
    try {
      return await fh.readFile();
    } finally {
      await fh.close();
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(url, policy, { signal });
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (declared > policy.maxMetadataBytes) {
        await res.body?.cancel();
        throw new PlumeError(
          'input',
          `${url.href} is ${declared} bytes, more than the ${policy.maxMetadataBytes} accepted for metadata`,
        );
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of bodyChunks(res)) {
        size += chunk.byteLength;
        if (size > policy.maxMetadataBytes)
          throw new PlumeError('input', `${url.href} is larger than ${policy.maxMetadataBytes} bytes`);
        chunks.push(Buffer.from(chunk));
      }
      if (Number.isFinite(declared) && size !== declared)
        throw new TransientError(`${url.href} ended after ${size} of ${declared} bytes`);
      return Buffer.concat(chunks);
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err) || signal?.aborted)
        throw describeFetchError(url, err);
      await sleep(backoffDelay(attempt, 500, 10_000), undefined, { signal });
    }
  }
}

export interface SourceInfo {
  url: URL;
  /** Size in bytes when the server or file says. */
  size: number | undefined;
  /** Whether byte ranges can be asked for (resuming a stream, reading an xz index from the end). */
  ranges: boolean;
}

export async function probeSource(url: URL, policy: SourcePolicy, signal?: AbortSignal): Promise<SourceInfo> {
  if (url.protocol === 'file:') {
    const path = fileURLToPath(url);
    const info = await stat(path).catch((err: NodeJS.ErrnoException) => {
      throw new PlumeError(
        'source',
        `cannot read image ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`,
        'check the path',
      );
    });
    return { url, size: info.size, ranges: true };
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(url, policy, { method: 'HEAD', signal });
      const len = res.headers.get('content-length');
      return {
        url,
        size: len === null ? undefined : Number(len),
        ranges: res.headers.get('accept-ranges') === 'bytes',
      };
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err) || signal?.aborted)
        throw describeFetchError(url, err);
      await sleep(backoffDelay(attempt, 500, 10_000), undefined, { signal });
    }
  }
}

/** Read `length` bytes at `offset` (for the xz index at the end of an image). */
export async function readRange(
  info: SourceInfo,
  policy: SourcePolicy,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (info.url.protocol === 'file:') {
    const fh = await open(fileURLToPath(info.url));
    try {
      const buf = Buffer.alloc(length);
      const { bytesRead } = await fh.read(buf, 0, length, offset);
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
  for (let attempt = 1; ; attempt++) {
    try {
      const res = await request(info.url, policy, {
        headers: { range: `bytes=${offset}-${offset + length - 1}` },
        signal,
      });
      if (res.status !== 206) {
        await res.body?.cancel();
        throw new PlumeError('source', `${info.url.host} does not serve byte ranges`);
      }
      return Buffer.from(await res.arrayBuffer());
    } catch (err) {
      if (attempt >= policy.attempts || !isTransient(err) || signal?.aborted)
        throw describeFetchError(info.url, err);
      await sleep(backoffDelay(attempt, 500, 10_000), undefined, { signal });
    }
  }
}

/**
 * The image's bytes as a stream of chunks. Over http(s), a connection that breaks or stalls is resumed with
 * a Range request from where it stopped (If-Range guards against the file changing underneath), so a long
 * upload does not start over for a network blip and the bytes fed onward are exactly the file's.
 */
export async function* streamSource(
  info: SourceInfo,
  policy: SourcePolicy,
  signal?: AbortSignal,
): AsyncGenerator<Buffer> {
  if (info.url.protocol === 'file:') {
    const path = fileURLToPath(info.url);
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024, signal });
    try {
      for await (const chunk of stream) yield chunk as Buffer;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        throw new PlumeError('source', `image ${path} does not exist`);
      throw err;
    }
    return;
  }
  let offset = 0;
  let validator: string | undefined;
  let total: number | undefined;
  let failures = 0;
  for (;;) {
    const idle = new AbortController();
    const combined = signal ? AbortSignal.any([signal, idle.signal]) : idle.signal;
    let timer: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(
        () => idle.abort(new TransientError('the image download stalled')),
        policy.idleTimeoutMs,
      );
    };
    try {
      arm();
      const headers: Record<string, string> = {};
      if (offset > 0) {
        headers.range = `bytes=${offset}-`;
        if (validator) headers['if-range'] = validator;
      }
      const res = await request(info.url, policy, { headers, signal: combined });
      if (offset > 0 && res.status !== 206) {
        await res.body?.cancel();
        throw new PlumeError(
          'source',
          `the image download broke at byte ${offset} and ${info.url.host} cannot resume it (the file may have changed)`,
          'run the release again',
        );
      }
      if (offset === 0) {
        validator = res.headers.get('etag') ?? res.headers.get('last-modified') ?? undefined;
        const len = res.headers.get('content-length');
        total = len === null ? undefined : Number(len);
      }
      for await (const chunk of bodyChunks(res)) {
        arm();
        offset += chunk.byteLength;
        failures = 0;
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
      }
      if (total !== undefined && offset < total)
        throw new TransientError(`the image download ended at byte ${offset} of ${total}`);
      return;
    } catch (err) {
      const reason: unknown = idle.signal.aborted ? idle.signal.reason : err;
      failures++;
      if (failures >= policy.attempts || !isTransient(reason) || signal?.aborted)
        throw describeFetchError(info.url, reason);
      await sleep(backoffDelay(failures, 500, 10_000), undefined, { signal });
    } finally {
      clearTimeout(timer);
    }
  }
}
