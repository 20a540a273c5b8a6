import { statSync } from 'node:fs';
import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import type { RetryErrorInfo, RetryStrategyV2, RetryToken } from '@smithy/types';
import type { Logger } from '../../../shared/log.js';
import { PlumeError } from '../../../shared/errors.js';
import { delayFor } from '../../../shared/retry.js';
import { assertTlsVerified } from '../../source/policy.js';

export interface AwsClientSettings {
  /** Endpoint override (the emulator); otherwise the SDK's own AWS_ENDPOINT_URL / config file handling. */
  endpoint?: string;
  profile?: string;
  /** Attempts per call on timeouts, dropped connections and 5xx, the first included. */
  maxAttempts: number;
  /** Attempts per call while AWS throttles (RequestLimitExceeded, ThrottlingException, SlowDown...). */
  throttleAttempts: number;
  /** Backoff base for transient errors and for throttling; the n-th retry waits up to base * 2^(n-1). */
  retryBaseMs: number;
  throttleBaseMs: number;
  /** Longest single backoff. */
  retryMaxMs: number;
  connectTimeoutMs: number;
  /** Per attempt: the whole request until the response headers, and any silence of the socket after. */
  requestTimeoutMs: number;
  /** Whole call, retries and backoff included. */
  callTimeoutMs: number;
  maxSockets: number;
}

export const DEFAULT_CLIENT_SETTINGS: AwsClientSettings = {
  maxAttempts: 10,
  throttleAttempts: 30,
  retryBaseMs: 200,
  throttleBaseMs: 1000,
  retryMaxMs: 20_000,
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  callTimeoutMs: 15 * 60_000,
  maxSockets: 64,
};

class Token implements RetryToken {
  constructor(
    private readonly count: number,
    private readonly delay: number,
  ) {}
  getRetryCount(): number {
    return this.count;
  }
  getRetryDelay(): number {
    return this.delay;
  }
}

/**
 * How every AWS call is retried (the SDK's RetryStrategyV2 interface; the SDK's retry middleware calls it
 * and sleeps the delay it returns, racing the call's abort signal).
 *
 * Why not the SDK's `standard` or `adaptive` mode: both draw retries from one quota per client (500
 * tokens; 5 per throttled retry, 14 per transient one), refilled only by successes. Sixteen
 * PutSnapshotBlock calls in flight on one client during a throttling storm empty it within about a
 * hundred retries, after which every throttled call fails at its first error and the whole upload with
 * it, although backing off would have got through (test/plume/aws-client.test.ts shows both). `adaptive`
 * adds a client-side rate limiter on top of the same quota. Such a quota protects a service that makes
 * millions of calls; plume makes a bounded number, from a bounded pool, each with an overall deadline
 * (`callTimeoutMs`), so here:
 *  - throttling is retried up to `throttleAttempts` times with exponential backoff and full jitter from
 *    `throttleBaseMs` (honouring a Retry-After hint), since throttling says "slow down", not "broken";
 *  - transient failures (timeouts, reset connections, 500/502/503/504) up to `maxAttempts` times from
 *    `retryBaseMs`; calls that create something are made idempotent by ClientToken or a name lookup;
 *  - everything else (access denied, validation, not found) fails at once: retrying cannot help.
 */
export class PlumeRetryStrategy implements RetryStrategyV2 {
  readonly mode = 'plume';

  constructor(
    private readonly settings: Pick<
      AwsClientSettings,
      'maxAttempts' | 'throttleAttempts' | 'retryBaseMs' | 'throttleBaseMs' | 'retryMaxMs'
    >,
    private readonly onRetry?: (info: RetryErrorInfo, attempt: number, delayMs: number) => void,
  ) {}

  acquireInitialRetryToken(): Promise<RetryToken> {
    return Promise.resolve(new Token(0, 0));
  }

  refreshRetryTokenForRetry(token: RetryToken, info: RetryErrorInfo): Promise<RetryToken> {
    const s = this.settings;
    const attempt = token.getRetryCount() + 1;
    const throttled = info.errorType === 'THROTTLING';
    // Each kind has its own configured limit, honoured as written (throttling used to be raised to
    // max_attempts silently).
    const limit = throttled ? s.throttleAttempts : s.maxAttempts;
    if ((!throttled && info.errorType !== 'TRANSIENT') || attempt >= limit)
      // The middleware then throws the call's own error.
      return Promise.reject(new Error('not retried'));
    // The project's one backoff (full jitter) with the [aws] numbers.
    let delay = delayFor(attempt, {
      baseMs: throttled ? s.throttleBaseMs : s.retryBaseMs,
      maxMs: s.retryMaxMs,
    });
    if (info.retryAfterHint)
      delay = Math.max(delay, Math.min(s.retryMaxMs, info.retryAfterHint.getTime() - Date.now()));
    this.onRetry?.(info, attempt, delay);
    return Promise.resolve(new Token(attempt, delay));
  }

  recordSuccess(): void {
    /* no quota to refill */
  }
}

/**
 * Refuse a file of AWS credentials or settings that others could read or change: keys in it are as good as
 * leaked, and a config file others can write can run their code (credential_process). Group access is
 * accepted only the way a deployment grants it to a service (root owns the file, the group is the
 * process's own: deploy/ansible writes root:joystick 0640 for User=joystick). Missing files are fine.
 */
export function checkCredentialFile(path: string, kind: 'usage' | 'credentials' = 'credentials'): void {
  let st;
  try {
    st = statSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' && kind === 'credentials') return;
    const code = (err as NodeJS.ErrnoException).code;
    throw new PlumeError(
      kind,
      `cannot read AWS credentials file ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
    );
  }
  const mode = st.mode & 0o777;
  const groupOk = st.uid === 0 && typeof process.getgid === 'function' && st.gid === process.getgid();
  // One rule wherever the file came from (environment, ~/.aws, --aws-credentials): a file mode is
  // configuration a person fixes, so it is a usage error (exit 2).
  if ((mode & 0o007) !== 0 || ((mode & 0o070) !== 0 && !groupOk))
    throw new PlumeError(
      'usage',
      `refusing AWS credentials file ${path}: its mode ${mode.toString(8).padStart(4, '0')} lets group or others read it`,
      `chmod 600 ${path}`,
    );
}

/** The files the SDK's default chain reads credentials and settings from. */
export function credentialFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const aws = join(env.HOME || homedir(), '.aws');
  return [
    env.AWS_SHARED_CREDENTIALS_FILE || join(aws, 'credentials'),
    env.AWS_CONFIG_FILE || join(aws, 'config'),
  ];
}

/** One client per service and region, sharing keep-alive connection pools. */
export class AwsClients {
  private readonly ec2s = new Map<string, EC2Client>();
  private readonly ebss = new Map<string, EBSClient>();
  private readonly stss = new Map<string, STSClient>();
  private readonly handler: NodeHttpHandler;
  private readonly retryStrategy: PlumeRetryStrategy;
  /** Retries made, by kind of error: for logs, metrics and tests. */
  readonly retries = { THROTTLING: 0, TRANSIENT: 0 } as Record<string, number>;

  constructor(
    readonly settings: AwsClientSettings,
    /** Told of every retry (joystick counts them in its metrics). */
    onRetry?: (errorType: string) => void,
    log?: Logger,
  ) {
    // Before the SDK reads them (at the first call).
    for (const file of credentialFiles()) checkCredentialFile(file);
    assertTlsVerified();
    this.retryStrategy = new PlumeRetryStrategy(settings, (info, attempt, delayMs) => {
      this.retries[info.errorType] = (this.retries[info.errorType] ?? 0) + 1;
      onRetry?.(info.errorType);
      // A region that throttles every call takes minutes to give up: say so at each backoff.
      if (info.errorType === 'THROTTLING')
        log?.warn(
          { code: awsErrorCode(info.error), attempt, of: settings.throttleAttempts, delayMs },
          `AWS is throttling (attempt ${attempt} of ${settings.throttleAttempts}); backing off ${Math.round(delayMs / 100) / 10} s`,
        );
    });
    const agentOptions = { keepAlive: true, maxSockets: settings.maxSockets };
    this.handler = new NodeHttpHandler({
      connectionTimeout: settings.connectTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      throwOnRequestTimeout: true,
      // requestTimeout stops at the response headers; a body that stalls after them needs this one.
      socketTimeout: settings.requestTimeoutMs,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    });
  }

  private config(region: string) {
    return {
      region,
      maxAttempts: this.settings.maxAttempts,
      // One per client as the SDK does, though it keeps no state between calls.
      retryStrategy: this.retryStrategy,
      requestHandler: this.handler,
      ...(this.settings.endpoint ? { endpoint: this.settings.endpoint } : {}),
      ...(this.settings.profile ? { profile: this.settings.profile } : {}),
    };
  }

  ec2(region: string): EC2Client {
    let c = this.ec2s.get(region);
    if (!c) this.ec2s.set(region, (c = new EC2Client(this.config(region))));
    return c;
  }

  ebs(region: string): EBSClient {
    let c = this.ebss.get(region);
    if (!c) this.ebss.set(region, (c = new EBSClient(this.config(region))));
    return c;
  }

  sts(region: string): STSClient {
    let c = this.stss.get(region);
    if (!c) this.stss.set(region, (c = new STSClient(this.config(region))));
    return c;
  }

  /** Options for `client.send`: an overall deadline on top of the per-attempt timeout. */
  sendOptions(signal?: AbortSignal): { abortSignal: AbortSignal } {
    const deadline = AbortSignal.timeout(this.settings.callTimeoutMs);
    return { abortSignal: signal ? AbortSignal.any([signal, deadline]) : deadline };
  }

  destroy(): void {
    for (const c of [...this.ec2s.values(), ...this.ebss.values(), ...this.stss.values()]) c.destroy();
    this.handler.destroy();
  }
}

/** AWS's throttling error codes (those the SDK classifies as THROTTLING). */
const THROTTLING = new Set([
  'Throttling',
  'ThrottlingException',
  'ThrottledException',
  'RequestThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'SlowDown',
  'EC2ThrottledException',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
]);

const ACCESS_DENIED = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'AuthFailure',
  'InvalidClientTokenId',
  'SignatureDoesNotMatch',
  'ExpiredToken',
  'ExpiredTokenException',
  'UnrecognizedClientException',
]);

export function awsErrorCode(err: unknown): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  const e = err as { name?: string; Code?: string; code?: string };
  return e.Code ?? e.name ?? e.code;
}

/**
 * Turn an SDK failure into one line a release engineer can act on. `action` is the IAM action name
 * (e.g. `ec2:CopyImage`) so an access error says exactly which permission is missing.
 */
export function describeAwsError(err: unknown, action: string, region: string): PlumeError {
  if (err instanceof PlumeError) return err;
  const code = awsErrorCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'CredentialsProviderError' || /Could not load credentials/i.test(message))
    return new PlumeError(
      'credentials',
      'no AWS credentials found',
      'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE / --aws-profile with a credentials file',
      { cause: err },
    );
  if (code && ACCESS_DENIED.has(code))
    return new PlumeError(
      'credentials',
      `AWS refused ${action} in ${region} (${code})`,
      'check the credentials and that their policy allows this action (docs/iam-policy.json)',
      { cause: err },
    );
  if (code === 'OptInRequired')
    return new PlumeError(
      'provider',
      `${region} is not enabled for this account (${action}: OptInRequired)`,
      `opt the account in to ${region} (AWS console, Account, AWS Regions), or drop it from the regions`,
      { cause: err, retryable: false },
    );
  if (code && THROTTLING.has(code))
    return new PlumeError(
      'provider',
      `${action} in ${region} was still throttled (${code}) when its attempts ran out`,
      'AWS is limiting the request rate: run again later, or raise [aws] throttle_attempts / lower the concurrency',
      { cause: err },
    );
  if (code === 'TimeoutError' || code === 'AbortError' || /aborted|timed? ?out/i.test(message))
    return new PlumeError(
      'provider',
      `${action} in ${region} timed out`,
      'AWS or the network is slow; run again to resume',
      { cause: err },
    );
  // AWS ends its messages with a period; the line goes on with ': what to do'.
  const text =
    message && message !== 'UnknownError'
      ? message.replace(/\.+$/, '')
      : `HTTP ${(err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? '?'}`;
  return new PlumeError(
    'provider',
    `${action} in ${region} failed: ${code && !text.includes(code) ? `${code}: ` : ''}${text}`,
    'run again to resume; the release picks up where it stopped',
    { cause: err },
  );
}

/** Send a command, mapping failures to PlumeErrors that name the IAM action. */
export async function send<T>(
  clients: AwsClients,
  action: string,
  region: string,
  fn: (opts: { abortSignal: AbortSignal }) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  try {
    return await fn(clients.sendOptions(signal));
  } catch (err) {
    throw describeAwsError(err, action, region);
  }
}

/** The AWS error code of a failure, looking through a PlumeError to the SDK error it wraps. */
export function codeOf(err: unknown): string | undefined {
  if (err instanceof PlumeError) return awsErrorCode(err.cause);
  return awsErrorCode(err);
}
