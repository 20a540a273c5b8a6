import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { EBSClient } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { STSClient } from '@aws-sdk/client-sts';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { PlumeError } from '../../../shared/errors.js';

export interface AwsClientSettings {
  /** Endpoint override (the emulator); otherwise the SDK's own AWS_ENDPOINT_URL / config file handling. */
  endpoint?: string;
  profile?: string;
  /** Attempts per call, the first included; the SDK retries throttling, 5xx and network errors only. */
  maxAttempts: number;
  connectTimeoutMs: number;
  /** Per attempt. */
  requestTimeoutMs: number;
  /** Whole call, retries included. */
  callTimeoutMs: number;
  maxSockets: number;
}

export const DEFAULT_CLIENT_SETTINGS: AwsClientSettings = {
  maxAttempts: 10,
  connectTimeoutMs: 10_000,
  requestTimeoutMs: 120_000,
  callTimeoutMs: 15 * 60_000,
  maxSockets: 64,
};

/** One client per service and region, sharing keep-alive connection pools. */
export class AwsClients {
  private readonly ec2s = new Map<string, EC2Client>();
  private readonly ebss = new Map<string, EBSClient>();
  private readonly stss = new Map<string, STSClient>();
  private readonly handler: NodeHttpHandler;

  constructor(readonly settings: AwsClientSettings) {
    const agentOptions = { keepAlive: true, maxSockets: settings.maxSockets };
    this.handler = new NodeHttpHandler({
      connectionTimeout: settings.connectTimeoutMs,
      requestTimeout: settings.requestTimeoutMs,
      throwOnRequestTimeout: true,
      httpAgent: new HttpAgent(agentOptions),
      httpsAgent: new HttpsAgent(agentOptions),
    });
  }

  private config(region: string) {
    return {
      region,
      maxAttempts: this.settings.maxAttempts,
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
  if (code === 'TimeoutError' || code === 'AbortError' || /aborted|timed? ?out/i.test(message))
    return new PlumeError(
      'provider',
      `${action} in ${region} timed out`,
      'AWS or the network is slow; run again to resume',
      { cause: err },
    );
  const text =
    message && message !== 'UnknownError'
      ? message
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
