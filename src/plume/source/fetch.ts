import { createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { PlumeError } from '../../shared/errors.js';
import { POLICIES, retry, waitToRetry, type RetryOptions } from '../../shared/retry.js';
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

/** What a transfer's watch decides at a tick: go on, or why to give up on this attempt. Pure. */
export function transferVerdict(
  t: { now: number; startedAt: number; lastByteAt: number; windowStartAt: number; windowBytes: number },
  limits: { idleMs: number; minBytesPerSecond: number; windowMs: number; deadlineMs?: number },
): string | undefined {
  if (limits.deadlineMs !== undefined && t.now - t.startedAt >= limits.deadlineMs)
    return `no complete answer within ${Math.round(limits.deadlineMs / 1000)} s`;
  if (t.now - t.lastByteAt >= limits.idleMs)
    return `nothing received for ${Math.round(limits.idleMs / 1000)} s`;
  const elapsed = t.now - t.windowStartAt;
  if (limits.minBytesPerSecond > 0 && elapsed >= limits.windowMs) {
    const rate = (t.windowBytes * 1000) / elapsed;
    if (rate < limits.minBytesPerSecond)
      return `${Math.round(rate)} bytes/s over ${Math.round(elapsed / 1000)} s, slower than the minimum ${limits.minBytesPerSecond} bytes/s`;
  }
  return undefined;
}

/**
 * A watch over one attempt at a transfer: its signal aborts (with a TransientError, so the attempt is
 * retried or resumed) when the host sends nothing for the idle timeout, sends slower than the minimum rate
 * over a whole window, or the attempt passes its deadline. One timer ticking a few times per window;
 * nothing runs while bytes flow except a counter.
 */
function watchTransfer(
  policy: SourcePolicy,
  what: string,
  signal: AbortSignal | undefined,
  deadlineMs?: number,
) {
  const controller = new AbortController();
  const startedAt = Date.now();
  const state = { startedAt, lastByteAt: startedAt, windowStartAt: startedAt, windowBytes: 0 };
  const limits = {
    idleMs: policy.idleTimeoutMs,
    minBytesPerSecond: policy.minBytesPerSecond,
    windowMs: policy.rateWindowMs,
    deadlineMs,
  };
  const tickMs = Math.max(
    50,
    Math.min(1000, policy.idleTimeoutMs / 4, policy.rateWindowMs / 4, (deadlineMs ?? Infinity) / 4),
  );
  let pausedAt: number | undefined;
  const timer = setInterval(() => {
    if (pausedAt !== undefined) return;
    const now = Date.now();
    const verdict = transferVerdict({ ...state, now }, limits);
    if (verdict) {
      clearInterval(timer);
      controller.abort(new TransientError(`${what}: ${verdict}`));
    } else if (now - state.windowStartAt >= limits.windowMs) {
      state.windowStartAt = now;
      state.windowBytes = 0;
    }
  }, tickMs);
  return {
    signal: signal ? AbortSignal.any([signal, controller.signal]) : controller.signal,
    /** Why the watch gave up, when it did. */
    reason: () => (controller.signal.aborted ? (controller.signal.reason as Error) : undefined),
    received(n: number) {
      state.lastByteAt = Date.now();
      state.windowBytes += n;
    },
    /**
     * While the consumer holds a chunk (the upload is behind, so the download waits), the host is not
     * slow: that time is taken out of every clock.
     */
    pause() {
      pausedAt ??= Date.now();
    },
    resume() {
      if (pausedAt === undefined) return;
      const held = Date.now() - pausedAt;
      pausedAt = undefined;
      state.startedAt += held;
      state.lastByteAt += held;
      state.windowStartAt += held;
    },
    stop: () => clearInterval(timer),
  };
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
      // Every hop is checked: an allowed host must not bounce us to one that is not, and never to a local
      // file (the command line may allow files; what a server answers never can).
      current = checkSource(new URL(res.headers.get('location')!, current).href, {
        ...policy,
        allowFiles: false,
      });
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

/** How a fetch is retried: `[source] attempts`, `POLICIES.sourceFetch`, transient failures only. */
function fetchRetry(policy: SourcePolicy, signal: AbortSignal | undefined): RetryOptions {
  return {
    attempts: policy.attempts,
    policy: POLICIES.sourceFetch,
    retryable: isTransient,
    ...(signal ? { signal } : {}),
  };
}

/**
 * One request of a document under a watch (deadline, idle time, rate), retried as `fetchRetry` says; a
 * final failure is one line naming the URL.
 */
async function fetchWithRetries<T>(
  url: URL,
  policy: SourcePolicy,
  signal: AbortSignal | undefined,
  attempt: (watched: AbortSignal, received: (bytes: number) => void) => Promise<T>,
): Promise<T> {
  try {
    return await retry(
      async () => {
        const watch = watchTransfer(policy, url.href, signal, policy.documentTimeoutMs);
        try {
          return await attempt(watch.signal, (n) => watch.received(n));
        } catch (caught) {
          throw watch.reason() ?? caught;
        } finally {
          watch.stop();
        }
      },
      fetchRetry(policy, signal),
    );
  } catch (err) {
    throw describeFetchError(url, err);
  }
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
  return fetchWithRetries(url, policy, signal, async (watched, received) => {
    const res = await request(url, policy, { signal: watched });
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
      received(chunk.byteLength);
      size += chunk.byteLength;
      if (size > policy.maxMetadataBytes)
        throw new PlumeError('input', `${url.href} is larger than ${policy.maxMetadataBytes} bytes`);
      chunks.push(Buffer.from(chunk));
    }
    if (Number.isFinite(declared) && size !== declared)
      throw new TransientError(`${url.href} ended after ${size} of ${declared} bytes`);
    return Buffer.concat(chunks);
  });
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
  return fetchWithRetries(url, policy, signal, async (watched) => {
    const res = await request(url, policy, { method: 'HEAD', signal: watched });
    const len = res.headers.get('content-length');
    return {
      url,
      size: len === null ? undefined : Number(len),
      ranges: res.headers.get('accept-ranges') === 'bytes',
    };
  });
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
  return fetchWithRetries(info.url, policy, signal, async (watched) => {
    const res = await request(info.url, policy, {
      headers: { range: `bytes=${offset}-${offset + length - 1}` },
      signal: watched,
    });
    if (res.status !== 206) {
      await res.body?.cancel();
      throw new PlumeError('source', `${info.url.host} does not serve byte ranges`);
    }
    return Buffer.from(await res.arrayBuffer());
  });
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
  // An attempt that brought at least a window's worth at the minimum rate was real progress and starts the
  // count of failures again; a host dripping a little per attempt must not resume forever.
  const progressBytes = Math.max(1, policy.minBytesPerSecond * (policy.rateWindowMs / 1000));
  for (;;) {
    // No overall deadline: an image takes as long as it takes, as long as it keeps the minimum rate.
    const watch = watchTransfer(policy, 'the image download', signal);
    const attemptStart = offset;
    try {
      const headers: Record<string, string> = {};
      if (offset > 0) {
        headers.range = `bytes=${offset}-`;
        if (validator) headers['if-range'] = validator;
      }
      const res = await request(info.url, policy, { headers, signal: watch.signal });
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
        watch.received(chunk.byteLength);
        offset += chunk.byteLength;
        if (offset - attemptStart >= progressBytes) failures = 0;
        watch.pause();
        yield Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
        watch.resume();
      }
      if (total !== undefined && offset < total)
        throw new TransientError(`the image download ended at byte ${offset} of ${total}`);
      return;
    } catch (err) {
      // Every byte arrived and only the end of the exchange failed (the watch firing late on a loaded
      // machine, a reset after the last byte): asking for the rest would get 416 Range Not Satisfiable.
      // The checksum downstream still decides whether the bytes are right.
      if (!signal?.aborted && total !== undefined && offset === total) return;
      const reason: unknown = watch.reason() ?? err;
      failures++;
      // Not retry(): the attempts count starts again after real progress, and a generator yields between.
      await waitToRetry(reason, failures, fetchRetry(policy, signal)).catch((final: unknown) => {
        throw describeFetchError(info.url, final);
      });
    } finally {
      watch.stop();
    }
  }
}
