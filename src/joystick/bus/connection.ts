import { EventEmitter } from 'node:events';
import { connect, type ChannelModel } from 'amqplib';
import { PlumeError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import { POLICIES, retry, type Backoff } from '../../shared/retry.js';
import { closeQuietly } from './close.js';
import type { BusConfig } from './config.js';
import { buildConnectPlan, type ConnectPlan } from './connect-options.js';

/*
 * One AMQP connection that outlives network trouble. The first connection is tried as pika would
 * (connection_attempts tries, retry_delay apart) and failing it is an error the caller sees at startup;
 * once connected, a lost connection is re-established forever, with exponential backoff and jitter,
 * until close(). Publishers and consumers open their own channels on it and listen for `connected`.
 */

export interface BusConnectionEvents {
  /** A (re)established connection, ready for channels. */
  connected: [model: ChannelModel];
  /** The connection was lost; a reconnection follows unless close() was called. */
  disconnected: [error: Error];
  reconnecting: [info: { attempt: number; delayMs: number; error: Error }];
  /** close() finished; nothing will reconnect. */
  closed: [];
}

export interface BusConnectionOptions {
  logger?: Logger;
  /** The name RabbitMQ shows for this connection (rabbitmqctl list_connections client_properties). */
  connectionName?: string;
  /** Pacing of reconnections after a loss (default `POLICIES.busReconnect`). */
  backoff?: Backoff;
}

export class BusConnection extends EventEmitter<BusConnectionEvents> {
  readonly plan: ConnectPlan;
  private readonly log: Logger;
  private readonly backoff: Backoff;
  private current: ChannelModel | undefined;
  private closing = false;
  private readonly stop = new AbortController();
  private waiters: { resolve: (m: ChannelModel) => void; reject: (e: Error) => void }[] = [];

  private constructor(plan: ConnectPlan, opts: BusConnectionOptions) {
    super();
    this.plan = plan;
    this.log = opts.logger ?? silentLogger();
    this.backoff = opts.backoff ?? POLICIES.busReconnect;
  }

  /** Connect (with pika's connection_attempts and retry_delay), then keep the connection up until close(). */
  static async open(config: BusConfig, opts: BusConnectionOptions = {}): Promise<BusConnection> {
    const plan = await buildConnectPlan(config, { connectionName: opts.connectionName });
    const conn = new BusConnection(plan, opts);
    for (const warning of plan.warnings) conn.log.warn({ broker: plan.display }, warning);
    // pika's pacing: connection_attempts tries, retry_delay apart (no growth, no jitter).
    const log = (err: unknown, attempt: number) =>
      conn.log.warn(
        { broker: plan.display, attempt, of: plan.connectionAttempts, err: errorText(err) },
        'cannot connect to the AMQP broker',
      );
    try {
      conn.adopt(
        await retry(() => conn.openOnce(), {
          attempts: plan.connectionAttempts,
          policy: { baseMs: plan.retryDelayMs, maxMs: plan.retryDelayMs, factor: 1, jitter: 0 },
          onRetry: log,
        }),
      );
      return conn;
    } catch (err) {
      log(err, plan.connectionAttempts);
      throw describeConnectError(err, plan);
    }
  }

  /** The live connection, if there is one right now. */
  get model(): ChannelModel | undefined {
    return this.current;
  }

  get isConnected(): boolean {
    return this.current !== undefined;
  }

  get isClosed(): boolean {
    return this.closing;
  }

  /** The live connection, or the next one; rejects once close() is called or `signal` aborts. */
  waitForConnection(signal?: AbortSignal): Promise<ChannelModel> {
    if (this.current) return Promise.resolve(this.current);
    if (this.closing) return Promise.reject(closedError());
    return new Promise((resolve, reject) => {
      const waiter = {
        resolve: (m: ChannelModel) => {
          signal?.removeEventListener('abort', onAbort);
          resolve(m);
        },
        reject: (e: Error) => {
          signal?.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      const onAbort = (): void => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(waiter);
    });
  }

  /** Close for good: no reconnection, waiters rejected, the AMQP connection closed cleanly. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    this.stop.abort();
    for (const w of this.waiters.splice(0)) w.reject(closedError());
    const model = this.current;
    this.current = undefined;
    if (model) await closeQuietly(model);
    this.log.info({ broker: this.plan.display }, 'AMQP connection closed');
    this.emit('closed');
  }

  private async openOnce(): Promise<ChannelModel> {
    return connect(this.plan.target, this.plan.socketOptions);
  }

  private adopt(model: ChannelModel): void {
    if (this.closing) {
      model.close().catch(() => undefined);
      return;
    }
    // amqplib emits 'error' before 'close' on a forced close or a missed heartbeat; the close handles it
    model.on('error', (err: Error) => this.log.warn({ err: err.message }, 'AMQP connection error'));
    model.on('close', (err?: Error) => this.lost(model, err));
    model.on('blocked', (reason: string) => this.log.warn({ reason }, 'the broker is blocking publishes'));
    model.on('unblocked', () => this.log.info('the broker unblocked publishes'));
    this.current = model;
    this.log.info({ broker: this.plan.display }, 'connected to the AMQP broker');
    for (const w of this.waiters.splice(0)) w.resolve(model);
    this.emit('connected', model);
  }

  private lost(model: ChannelModel, err: Error | undefined): void {
    if (this.current !== model) return;
    this.current = undefined;
    if (this.closing) return;
    const error = err ?? new Error('the broker closed the connection');
    this.log.warn(
      { broker: this.plan.display, err: error.message },
      'lost the AMQP connection; reconnecting',
    );
    this.emit('disconnected', error);
    void this.reconnect(error);
  }

  /** Reconnect until it works or close(): the loss counts as the first failed attempt (a wait comes first). */
  private async reconnect(cause: Error): Promise<void> {
    const toError = (err: unknown) => (err instanceof Error ? err : new Error(String(err)));
    try {
      await retry(
        async (attempt) => {
          if (attempt === 1) throw cause;
          if (this.closing) return;
          try {
            this.adopt(await this.openOnce());
          } catch (err) {
            this.log.warn(
              { broker: this.plan.display, attempt: attempt - 1, err: toError(err).message },
              'reconnection failed',
            );
            throw err;
          }
        },
        {
          attempts: Infinity,
          policy: this.backoff,
          retryable: () => !this.closing,
          signal: this.stop.signal,
          onRetry: (err, attempt, delayMs) =>
            this.emit('reconnecting', { attempt, delayMs, error: toError(err) }),
        },
      );
    } catch {
      // Only close() ends the retries; nothing is left to do.
    }
  }
}

function closedError(): PlumeError {
  return new PlumeError(
    'internal',
    'the AMQP connection is closed',
    'this is a bug: something used the bus after closing it',
  );
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Turn a failed first connection into something a person can act on. */
function describeConnectError(err: unknown, plan: ConnectPlan): PlumeError {
  const text = errorText(err);
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const where = `${plan.target.hostname}:${plan.target.port}`;
  const attempts = `${plan.connectionAttempts} attempt${plan.connectionAttempts === 1 ? '' : 's'}`;
  if (/ACCESS.REFUSED|403/.test(text)) {
    return new PlumeError(
      'credentials',
      `the AMQP broker ${plan.display} refused the login: ${text}`,
      plan.socketOptions.credentials?.mechanism === 'EXTERNAL'
        ? 'check the client certificate in [tls] and that the broker maps it to a user'
        : 'check the user and password in amqp_url',
      { cause: err },
    );
  }
  if (/NOT.ALLOWED|530/.test(text)) {
    return new PlumeError(
      'credentials',
      `the AMQP broker ${plan.display} refused the vhost: ${text}`,
      "check the vhost in amqp_url and the user's permissions on it",
      {
        cause: err,
      },
    );
  }
  if (
    plan.tls &&
    (typeof code === 'string' ? /CERT|SSL|TLS/.test(code) : /certificate|SSL|TLS/i.test(text))
  ) {
    return new PlumeError(
      'credentials',
      `TLS with the AMQP broker ${where} failed: ${text}`,
      'check [tls] ca_cert (the CA that signed the broker) and the host name in amqp_url',
      {
        cause: err,
      },
    );
  }
  return new PlumeError(
    'provider',
    `cannot connect to the AMQP broker ${plan.display} after ${attempts}: ${text}`,
    'check that the broker is up and reachable from here',
    {
      cause: err,
    },
  );
}
