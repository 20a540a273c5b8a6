import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { credentials, type Options, type SocketOptions } from 'amqplib';
import { PlumeError } from '../../shared/errors.js';
import { redactUrl } from '../../shared/log.js';
import type { BusConfig, ClientProperties } from './config.js';

/*
 * From a fedora-messaging configuration to what amqplib.connect takes. The amqp_url is a pika URL
 * (pika.URLParameters), so its query parameters are pika's; the [tls] table is applied the way
 * fedora_messaging/twisted/service.py does: amqps only, server certificate and host name verified,
 * TLS 1.2 at least, and SASL EXTERNAL when a client certificate and key are both given.
 */

export interface ConnectPlan {
  /** amqplib's object form, so credentials and the vhost pass through without re-encoding a URL. */
  target: Options.Connect;
  socketOptions: SocketOptions;
  /** pika's connection_attempts: tries before the first connection is declared impossible. */
  connectionAttempts: number;
  /** pika's retry_delay, in milliseconds: the pause between those tries. */
  retryDelayMs: number;
  /** The broker URL with its password hidden, for logs and errors. */
  display: string;
  /** True when [tls] is in use (amqps). */
  tls: boolean;
  /** Settings that were given but have no effect here, for the caller to log. */
  warnings: string[];
}

export interface ConnectPlanOptions {
  /** Shown by RabbitMQ as the connection's client-provided name (connection_name property). */
  connectionName?: string;
}

/** pika's defaults for the parameters we honour. */
const PIKA_DEFAULTS = { connectionAttempts: 1, retryDelaySeconds: 2, socketTimeoutSeconds: 10 };

/** pika URL parameters that exist but mean nothing to amqplib; accepted so Fedora's URLs load. */
const IGNORED_PARAMS = new Set([
  'blocked_connection_timeout',
  'stack_timeout',
  'tcp_options',
  'backpressure_detection',
]);

function usage(message: string, hint: string, cause?: unknown): PlumeError {
  return new PlumeError('usage', message, hint, cause === undefined ? undefined : { cause });
}

function numberParam(name: string, value: string, display: string, integer: boolean): number {
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || (integer && !Number.isInteger(n))) {
    throw usage(
      `amqp_url ${display}: ${name}=${value} is not a ${integer ? 'non-negative integer' : 'non-negative number'}`,
      'fix the query parameter in amqp_url',
    );
  }
  return n;
}

async function readPem(path: string, key: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    throw usage(
      `tls.${key}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'fix the path in the [tls] table',
      err,
    );
  }
}

/** Turn the configuration into connection parameters, reading and checking the TLS files. */
export async function buildConnectPlan(
  config: BusConfig,
  opts: ConnectPlanOptions = {},
): Promise<ConnectPlan> {
  let url: URL;
  try {
    url = new URL(config.amqp_url);
  } catch (err) {
    // not echoed: an unparseable URL's password cannot be masked
    throw usage('amqp_url is not a URL', 'use amqp://user:password@host:port/vhost', err);
  }
  const display = redactUrl(config.amqp_url);
  const protocol = url.protocol === 'amqps:' ? 'amqps' : url.protocol === 'amqp:' ? 'amqp' : null;
  if (protocol === null)
    throw usage(`amqp_url ${display} is not amqp:// or amqps://`, 'use an amqp:// or amqps:// URL');
  const warnings: string[] = [];

  const target: Options.Connect = {
    protocol,
    // pika connects to localhost when the URL names no host (the default amqp:// does not)
    hostname: url.hostname.replace(/^\[|\]$/g, '') || 'localhost',
    port: url.port ? Number(url.port) : protocol === 'amqps' ? 5671 : 5672,
    // amqplib unescapes the vhost itself; "" and "/" both mean the default vhost "/"
    vhost: url.pathname.length > 1 ? url.pathname.slice(1) : '/',
  };
  if (url.username !== '' || url.password !== '') {
    target.username = decodeURIComponent(url.username);
    target.password = decodeURIComponent(url.password);
  }

  let connectionAttempts = PIKA_DEFAULTS.connectionAttempts;
  let retryDelayMs = PIKA_DEFAULTS.retryDelaySeconds * 1000;
  let timeoutMs = PIKA_DEFAULTS.socketTimeoutSeconds * 1000;
  let urlClientProperties: ClientProperties | undefined;
  for (const [name, value] of url.searchParams) {
    switch (name) {
      case 'connection_attempts':
        connectionAttempts = Math.max(1, numberParam(name, value, display, true));
        break;
      case 'retry_delay':
        retryDelayMs = numberParam(name, value, display, false) * 1000;
        break;
      case 'socket_timeout':
        timeoutMs = numberParam(name, value, display, false) * 1000;
        break;
      case 'heartbeat':
      case 'heartbeat_interval':
        target.heartbeat = numberParam(name, value, display, true);
        break;
      case 'channel_max':
        target.channelMax = numberParam(name, value, display, true);
        break;
      case 'frame_max':
        target.frameMax = numberParam(name, value, display, true);
        break;
      case 'locale':
        target.locale = value;
        break;
      case 'client_properties': {
        // pika takes a URL-encoded JSON object here, and then ignores [client_properties]
        let parsed: unknown;
        try {
          parsed = JSON.parse(value);
        } catch (err) {
          throw usage(
            `amqp_url ${display}: client_properties is not JSON`,
            'give a URL-encoded JSON object',
            err,
          );
        }
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
          throw usage(
            `amqp_url ${display}: client_properties is not a JSON object`,
            'give a URL-encoded JSON object',
          );
        }
        urlClientProperties = parsed as ClientProperties;
        break;
      }
      case 'ssl_options':
        throw usage(
          `amqp_url ${display}: ssl_options in the URL is not supported`,
          'put ca_cert, certfile and keyfile in the [tls] table instead',
        );
      default:
        if (IGNORED_PARAMS.has(name)) {
          warnings.push(`amqp_url parameter ${name} has no effect with joystick's AMQP client; ignored`);
          break;
        }
        throw usage(
          `amqp_url ${display}: unknown URL parameter ${name}`,
          'pika would refuse it too; remove it',
        );
    }
  }

  const socketOptions: SocketOptions = {
    timeout: timeoutMs,
    // unlike pika we can say who we are in RabbitMQ's connection list
    clientProperties: {
      ...(urlClientProperties ?? config.client_properties),
      ...(opts.connectionName !== undefined ? { connection_name: opts.connectionName } : {}),
    },
    keepAlive: true,
  };

  const tlsConf = config.tls;
  const usesTls = protocol === 'amqps';
  if (!usesTls) {
    if (tlsConf.certfile !== null || tlsConf.ca_cert !== null) {
      warnings.push(
        'the [tls] settings apply to amqps:// URLs only; amqp_url is amqp://, so they are ignored',
      );
    }
  } else {
    socketOptions.minVersion = 'TLSv1.2';
    socketOptions.rejectUnauthorized = true;
    if (tlsConf.ca_cert !== null) socketOptions.ca = [await readPem(tlsConf.ca_cert, 'ca_cert')];
    if (tlsConf.certfile !== null && tlsConf.keyfile !== null) {
      socketOptions.cert = await readPem(tlsConf.certfile, 'certfile');
      socketOptions.key = await readPem(tlsConf.keyfile, 'keyfile');
      // fedora-messaging authenticates with the certificate, not with the URL's user and password
      socketOptions.credentials = credentials.external();
    }
    checkTlsMaterial(socketOptions, config);
  }

  return { target, socketOptions, connectionAttempts, retryDelayMs, display, tls: usesTls, warnings };
}

/** Fail at startup, naming the file, rather than in the middle of a TLS handshake. */
function checkTlsMaterial(opts: SocketOptions, config: BusConfig): void {
  if (opts.ca !== undefined) {
    // Node ignores text that is not PEM in a CA list, which would leave us trusting nothing we meant to
    const pem = Buffer.concat(
      (Array.isArray(opts.ca) ? opts.ca : [opts.ca]).map((c) => Buffer.from(c)),
    ).toString('utf8');
    const blocks = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
    try {
      if (blocks.length === 0) throw new Error('no BEGIN CERTIFICATE block');
      for (const block of blocks) new X509Certificate(block);
    } catch (err) {
      throw usage(
        `tls.ca_cert ${config.tls.ca_cert}: not a PEM certificate bundle (${errText(err)})`,
        'point ca_cert at the CA bundle that signed the broker certificate',
        err,
      );
    }
  }
  if (opts.cert === undefined) return;
  try {
    createSecureContext({ cert: opts.cert });
  } catch (err) {
    throw usage(
      `tls.certfile ${config.tls.certfile}: not a PEM certificate (${errText(err)})`,
      'point certfile at the client certificate',
      err,
    );
  }
  try {
    createSecureContext({ cert: opts.cert, key: opts.key });
  } catch (err) {
    const mismatch = /mismatch/i.test(errText(err));
    throw usage(
      mismatch
        ? `tls.keyfile ${config.tls.keyfile} is not the key of tls.certfile ${config.tls.certfile}`
        : `tls.keyfile ${config.tls.keyfile}: not a usable PEM private key (${errText(err)})`,
      'point keyfile at the private key of the client certificate (unencrypted PEM)',
      err,
    );
  }
}

function errText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
