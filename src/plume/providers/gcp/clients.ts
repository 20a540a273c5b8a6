import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Compute from '@google-cloud/compute';
import type { GlobalOperationsClient, ImagesClient, ProjectsClient } from '@google-cloud/compute';
import { Storage } from '@google-cloud/storage';
import { GoogleAuth, JWT, type AuthClient } from 'google-auth-library';
import { PlumeError } from '../../../shared/errors.js';
import { checkSecretFile } from '../../../shared/secret-file.js';
import { assertTlsVerified } from '../../source/policy.js';

const CLOUD_PLATFORM = 'https://www.googleapis.com/auth/cloud-platform';
const GOOGLE_TOKEN_URL = 'https://oauth2.googleapis.com/token';

export interface GcpClientSettings {
  /** A service account's JSON key (mantle's --gce-json-key); Application Default Credentials otherwise. */
  jsonKey?: string;
  /** API roots, for a local emulator; Google's otherwise. */
  computeEndpoint?: string;
  storageEndpoint?: string;
  requestTimeoutMs: number;
  maxAttempts: number;
}

interface KeyFile {
  type?: string;
  client_email?: string;
  private_key?: string;
  private_key_id?: string;
  token_uri?: string;
}

/**
 * Credentials from a service account's key file. The key's `token_uri` is honoured as gcloud honours it
 * (google-auth-library's JWT always posts to Google's endpoint, so the request is redirected on the
 * client's own transporter, a documented extension point); the key is never logged.
 */
function keyFileAuth(path: string): JWT {
  checkSecretFile(path, 'GCE key file', { kind: 'usage' });
  let key: KeyFile;
  try {
    key = JSON.parse(readFileSync(path, 'utf8')) as KeyFile;
  } catch (err) {
    throw new PlumeError('usage', `cannot read GCE key file ${path}: ${(err as Error).message}`);
  }
  if (key.type !== 'service_account' || !key.client_email || !key.private_key)
    throw new PlumeError(
      'usage',
      `${path} is not a service account's JSON key`,
      'create a key for the service account that publishes images, and give its file',
    );
  const jwt = new JWT({
    email: key.client_email,
    key: key.private_key,
    keyId: key.private_key_id,
    scopes: [CLOUD_PLATFORM],
  });
  const tokenUri = key.token_uri;
  if (tokenUri && tokenUri !== GOOGLE_TOKEN_URL)
    jwt.transporter.interceptors.request.add({
      resolved: (options) => {
        if (String(options.url) === GOOGLE_TOKEN_URL) options.url = new URL(tokenUri);
        return Promise.resolve(options);
      },
    });
  return jwt;
}

/** `http://127.0.0.1:9000/compute/v1/` as the compute clients take an endpoint. */
function computeEndpoint(url: string | undefined) {
  if (!url) return {};
  const u = new URL(url);
  return {
    apiEndpoint: u.hostname,
    port: Number(u.port || (u.protocol === 'http:' ? 80 : 443)),
    protocol: u.protocol.replace(':', ''),
  };
}

/**
 * Google's Compute Engine client, loaded when a GCE client is first made rather than when plume starts:
 * loading it reads its protobuf descriptors, 1.2 s and 290 MB, which every run that never touches GCE
 * (`--help`, an AWS-only release, joystick's status commands) would otherwise pay.
 */
function computeClients(): typeof Compute {
  return createRequire(import.meta.url)('@google-cloud/compute') as typeof Compute;
}

/** Google's clients for one project's account: Compute Engine's images and operations, Cloud Storage. */
export class GcpClients {
  readonly images: ImagesClient;
  readonly operations: GlobalOperationsClient;
  readonly projects: ProjectsClient;
  readonly storage: Storage;
  /** Who the clients act as, for the record (the key's service account, or "application default"). */
  readonly identity: string;

  constructor(
    readonly settings: GcpClientSettings,
    project: string,
  ) {
    assertTlsVerified();
    const auth: AuthClient | GoogleAuth = settings.jsonKey
      ? keyFileAuth(settings.jsonKey)
      : new GoogleAuth({ scopes: [CLOUD_PLATFORM] });
    this.identity =
      auth instanceof JWT ? (auth.email ?? 'service account') : 'application default credentials';
    const compute = {
      ...computeEndpoint(settings.computeEndpoint),
      ...(auth instanceof GoogleAuth ? { auth } : { authClient: auth }),
    };
    const { ImagesClient, GlobalOperationsClient, ProjectsClient } = computeClients();
    this.images = new ImagesClient(compute);
    this.operations = new GlobalOperationsClient(compute);
    this.projects = new ProjectsClient(compute);
    this.storage = new Storage({
      projectId: project,
      ...(settings.storageEndpoint
        ? { apiEndpoint: settings.storageEndpoint, useAuthWithCustomEndpoint: true }
        : {}),
      ...(auth instanceof GoogleAuth ? { authClient: auth } : { authClient: auth }),
      retryOptions: { autoRetry: true, maxRetries: settings.maxAttempts - 1 },
    });
  }

  /** Per-call options: the deadline of one attempt. */
  callOptions() {
    return { timeout: this.settings.requestTimeoutMs };
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.images.close(), this.operations.close(), this.projects.close()]);
  }
}

/** The HTTP status and Google's reason of a failed call, looking through the client's error shapes. */
export function gcpFailure(err: unknown): { status?: number; reason?: string } {
  if (typeof err !== 'object' || err === null) return {};
  const e = err as { httpStatusCode?: number; code?: number | string; errors?: { reason?: string }[] };
  const raw = (err as Record<symbol, unknown>)[Symbol.for('google-gax.rawHttpResponsePayload')];
  let reason = e.errors?.[0]?.reason;
  if (!reason && typeof raw === 'string')
    try {
      reason = (JSON.parse(raw) as { error?: { errors?: { reason?: string }[] } }).error?.errors?.[0]?.reason;
    } catch {
      /* not JSON: no reason */
    }
  const status = e.httpStatusCode ?? (typeof e.code === 'number' && e.code >= 100 ? e.code : undefined);
  return { status, reason };
}

export function isNotFound(err: unknown): boolean {
  return gcpFailure(err).status === 404;
}

/**
 * Turn a client failure into one line a release engineer can act on; `action` is the API method, so an
 * access error names what the service account may not do.
 */
export function describeGcpError(err: unknown, action: string): PlumeError {
  if (err instanceof PlumeError) return err;
  const { status, reason } = gcpFailure(err);
  const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
  if (/Could not load the default credentials|Unable to detect a Project Id/i.test(message))
    return new PlumeError(
      'credentials',
      'no Google Cloud credentials found',
      'give --gce-json-key FILE (or [gcp] json_key), or set up Application Default Credentials',
      { cause: err },
    );
  if (status === 401 || status === 403)
    return new PlumeError(
      'credentials',
      `Google Cloud refused ${action} (${status}${reason ? ` ${reason}` : ''}): ${message}`,
      "check the service account's roles (compute.images.* and storage.objects.* in the project)",
      { cause: err },
    );
  return new PlumeError(
    'provider',
    `${action} failed: ${message}`,
    'run again to resume; the release picks up where it stopped',
    { cause: err, retryable: status === undefined || status === 429 || status >= 500 },
  );
}

/** Call a method, mapping failures to PlumeErrors that name it. */
export async function call<T>(action: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw describeGcpError(err, action);
  }
}
