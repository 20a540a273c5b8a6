import { PlumeError } from '../../shared/errors.js';

/**
 * Where images and metadata may come from. A compose location arrives in a bus message anyone on the bus
 * could forge, so nothing is fetched from a host that is not configured, and local files only when the
 * operator asked for them on the command line.
 */
export interface SourcePolicy {
  /** Host names (optionally `host:port`); `*.example.org` matches any subdomain. */
  allowedHosts: readonly string[];
  /** Allow `file:` URLs and plain paths. */
  allowFiles: boolean;
  /** Allow plain http (TLS is required otherwise); loopback hosts are always allowed plain http. */
  allowInsecureHttp: boolean;
  /** Attempts for a transient failure (connection reset, 5xx, stalled body), the first included. */
  attempts: number;
  /** A response that sends nothing for this long is abandoned and resumed. */
  idleTimeoutMs: number;
  /**
   * A response slower than this over a whole `rateWindowMs` is abandoned and resumed (a host dripping a
   * byte a second never trips the idle timeout): 0 turns the check off.
   */
  minBytesPerSecond: number;
  rateWindowMs: number;
  /** Longest a metadata document (or an image's head or tail) may take to fetch, per attempt. */
  documentTimeoutMs: number;
  /** Largest metadata document accepted (images.json and friends). */
  maxMetadataBytes: number;
}

/** Hosts come from the systems (their `sourceHosts`) and the config's `[source] allowed_hosts`. */
export const DEFAULT_SOURCE_POLICY: SourcePolicy = {
  allowedHosts: [],
  allowFiles: false,
  allowInsecureHttp: false,
  attempts: 5,
  idleTimeoutMs: 60_000,
  minBytesPerSecond: 16 * 1024,
  rateWindowMs: 30_000,
  documentTimeoutMs: 120_000,
  maxMetadataBytes: 64 * 1024 * 1024,
};

const LOOPBACK = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

function hostMatches(pattern: string, url: URL): boolean {
  const p = pattern.toLowerCase();
  const host = url.hostname.toLowerCase();
  const hostPort = url.port ? `${host}:${url.port}` : host;
  if (p.startsWith('*.')) return host.endsWith(p.slice(1)) && host.length > p.length - 1;
  return p === host || p === hostPort;
}

/**
 * Node skips certificate checks for every https connection (image hosts, AWS) when this is set: plume
 * refuses to run rather than trust an unauthenticated image or endpoint.
 */
export function assertTlsVerified(env: NodeJS.ProcessEnv = process.env): void {
  if (env.NODE_TLS_REJECT_UNAUTHORIZED === '0')
    throw new PlumeError(
      'usage',
      'NODE_TLS_REJECT_UNAUTHORIZED=0 turns off TLS certificate checks; plume does not run without them',
      'unset it; to trust a private CA, set NODE_EXTRA_CA_CERTS to its certificate',
    );
}

/** Parse a location given by a person or a message into a URL, refusing what the policy forbids. */
export function checkSource(location: string, policy: SourcePolicy): URL {
  let url: URL;
  if (location.startsWith('/') || location.startsWith('./') || location.startsWith('../')) {
    url = new URL(`file://${location.startsWith('/') ? '' : process.cwd() + '/'}${location}`);
  } else {
    try {
      url = new URL(location);
    } catch {
      throw new PlumeError('usage', `not a URL or absolute path: ${JSON.stringify(location)}`);
    }
  }
  if (url.protocol === 'file:') {
    if (!policy.allowFiles)
      throw new PlumeError(
        'source',
        `refusing to read local file ${url.pathname}`,
        'local files are only read when given on the command line',
      );
    return url;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new PlumeError('source', `unsupported URL scheme ${url.protocol} in ${location}`, 'use https://');
  if (url.username || url.password)
    throw new PlumeError('source', `refusing a URL with credentials in it: ${url.host}`);
  if (!policy.allowedHosts.some((p) => hostMatches(p, url)))
    throw new PlumeError(
      'source',
      `host ${url.host} is not an allowed image source`,
      `add it to [source] allowed_hosts if it is trusted (allowed: ${policy.allowedHosts.join(', ') || 'none'})`,
    );
  if (url.protocol === 'http:' && !policy.allowInsecureHttp && !LOOPBACK.has(url.hostname))
    throw new PlumeError(
      'source',
      `refusing plain http for ${url.host}`,
      'use https, or set [source] allow_insecure_http = true',
    );
  return url;
}

/** Resolve a path relative to a base location, refusing anything that escapes it. */
export function childUrl(base: URL, relPath: string): URL {
  if (/^[a-z][a-z0-9+.-]*:/i.test(relPath) || relPath.startsWith('/') || relPath.startsWith('\\'))
    throw new PlumeError('input', `image path ${JSON.stringify(relPath)} is not relative to the compose`);
  if (relPath.split(/[/\\]/).some((seg) => seg === '..' || seg === '.'))
    throw new PlumeError(
      'input',
      `image path ${JSON.stringify(relPath)} tries to leave the compose directory`,
    );
  const dir = base.href.endsWith('/') ? base : new URL(base.href + '/');
  const url = new URL(relPath.split('/').map(encodeURIComponent).join('/'), dir);
  if (!url.href.startsWith(dir.href))
    throw new PlumeError('input', `image path ${JSON.stringify(relPath)} resolves outside the compose`);
  return url;
}
