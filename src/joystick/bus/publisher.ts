import { IllegalOperationError, type ChannelModel, type ConfirmChannel } from 'amqplib';
import { silentLogger, type Logger } from '../../shared/log.js';
import { POLICIES, retry, type Backoff } from '../../shared/retry.js';
import { closeQuietly } from './close.js';
import type { BusConfig } from './config.js';
import type { BusConnection } from './connection.js';
import { amqpErrorCode, PublishFailed } from './errors.js';
import { toAmqp, type AmqpPublish, type Message } from './message.js';

/*
 * Publishing as fedora-messaging's FedoraMessagingFactoryV2.publish does it: to publish_exchange under
 * topic_prefix.topic, on a channel in confirm mode, done only when the broker confirms, and retried across
 * reconnections. Unlike fedora-messaging (which retries until its 30 s timeout and gives up on a nack at
 * once) a nack is retried too, because RabbitMQ nacks on transient trouble (a full queue with
 * reject-publish, an internal error); both the number of attempts and the total time are bounded.
 *
 * The exchange is never declared here, whatever passive_declares says: fedora-messaging's publisher does
 * not declare either. A missing exchange or a refused permission fails at once, since no retry can help.
 *
 * A retry after a lost confirm may publish the message twice; the copies share the message id, which is
 * how consumers (joystick's included) recognise them. That is fedora-messaging's guarantee as well.
 */

export interface PublisherOptions {
  logger?: Logger;
  /** Tries per message, the first included. Default `POLICIES.busPublish.attempts` (8). */
  maxAttempts?: number;
  /**
   * The most time a publish may take, retries included. Default `POLICIES.busPublish.timeoutMs` (30 s,
   * fedora-messaging's publish timeout).
   */
  timeoutMs?: number;
  /** The pause between tries (default `POLICIES.busPublish`). */
  backoff?: Backoff;
}

export interface PublishOptions {
  /** Publish elsewhere than publish_exchange. */
  exchange?: string;
}

/** One confirm channel on one connection; replaced when either dies. */
interface ChannelSlot {
  model: ChannelModel;
  channel: Promise<ConfirmChannel>;
  /** Why the broker closed it (403, 404, ...), learnt from the channel's 'error' event. */
  closeError?: Error;
  closed: boolean;
}

class Fatal extends Error {}

/** Ends the retries of a publish (closed, timed out): `error` is what the failure reports. */
class Stop extends Error {
  constructor(readonly error: Error) {
    super(error.message);
  }
}

export class Publisher {
  private readonly log: Logger;
  private readonly maxAttempts: number;
  private readonly timeoutMs: number;
  private readonly backoff: Backoff;
  private slot: ChannelSlot | undefined;
  private closed = false;
  private readonly stop = new AbortController();

  constructor(
    private readonly connection: BusConnection,
    private readonly config: BusConfig,
    opts: PublisherOptions = {},
  ) {
    this.log = opts.logger ?? silentLogger();
    this.maxAttempts = Math.max(1, opts.maxAttempts ?? POLICIES.busPublish.attempts);
    this.timeoutMs = opts.timeoutMs ?? POLICIES.busPublish.timeoutMs;
    this.backoff = opts.backoff ?? POLICIES.busPublish;
  }

  /** Resolve once the broker has confirmed the message; reject with PublishFailed if it never does. */
  async publish(message: Message, opts: PublishOptions = {}): Promise<void> {
    const exchange = opts.exchange ?? this.config.publish_exchange;
    const amqp = toAmqp(message, {
      topicPrefix: this.config.topic_prefix,
      defaultPriority: this.config.publish_priority,
    });
    const deadline = Date.now() + this.timeoutMs;
    const what = { id: message.id, exchange, routingKey: amqp.routingKey };
    let lastError: Error = new Error('no attempt was made');
    let attempt = 0;
    try {
      await retry(
        async (n) => {
          if (this.closed) throw new Stop(lastError);
          if (n > 1 && Date.now() >= deadline)
            throw new Stop(
              new Error(`no confirmation within ${this.timeoutMs} ms (last: ${lastError.message})`),
            );
          attempt = n;
          const timeout = AbortSignal.timeout(Math.max(1, deadline - Date.now()));
          const signal = AbortSignal.any([timeout, this.stop.signal]);
          try {
            const channel = await this.channel(signal);
            await withSignal(confirmPublish(channel.slot, channel.channel, exchange, amqp), signal);
            this.log.debug({ ...what, attempt }, 'published');
          } catch (err) {
            lastError = err instanceof Error ? err : new Error(String(err));
            if (err instanceof Fatal) throw err;
            if (signal.aborted)
              throw new Stop(
                this.closed
                  ? new Error('the publisher was closed')
                  : new Error(`no confirmation within ${this.timeoutMs} ms`),
              );
            this.log.warn({ ...what, attempt, err: lastError.message }, 'publish not confirmed; retrying');
            throw lastError;
          }
        },
        {
          attempts: this.maxAttempts,
          policy: this.backoff,
          retryable: (err) => !(err instanceof Fatal) && !(err instanceof Stop),
          // A wait is cut to end at the deadline; the attempt after it ends as "no confirmation within".
          deadline: deadline + 1,
          signal: this.stop.signal,
        },
      );
      return;
    } catch (err) {
      if (err instanceof Stop) lastError = err.error;
      else if (!(err instanceof Fatal) && !this.closed && Date.now() >= deadline)
        lastError = new Error(`no confirmation within ${this.timeoutMs} ms (last: ${lastError.message})`);
      // else: attempts ran out, a fatal refusal, or close() during a wait: the last attempt's failure says why
    }
    const failure = new PublishFailed(
      `could not publish message ${message.id} to ${exchange} with routing key ${amqp.routingKey} after ${attempt} attempt${attempt === 1 ? '' : 's'}: ${lastError.message}`,
      lastError instanceof Fatal
        ? fatalHint(lastError)
        : 'the broker did not confirm it; it may be down or refusing publishes',
      attempt,
      lastError,
    );
    this.log.error({ ...what, attempts: attempt, err: lastError.message }, 'publish failed');
    throw failure;
  }

  /** Stop publishing: pending retries give up, the channel closes. The connection stays open. */
  async close(): Promise<void> {
    this.closed = true;
    this.stop.abort();
    const slot = this.slot;
    this.slot = undefined;
    if (slot && !slot.closed) {
      const channel = await slot.channel.catch(() => undefined);
      if (channel) await closeQuietly(channel);
    }
  }

  /** The confirm channel of the live connection, opened on first use after each (re)connection. */
  private async channel(signal: AbortSignal): Promise<{ channel: ConfirmChannel; slot: ChannelSlot }> {
    const model = await this.connection.waitForConnection(signal);
    let slot = this.slot;
    if (!slot || slot.model !== model || slot.closed) {
      const fresh: ChannelSlot = { model, channel: model.createConfirmChannel(), closed: false };
      slot = fresh;
      this.slot = fresh;
      fresh.channel.then(
        (ch) => {
          ch.on('error', (err: Error) => {
            fresh.closeError = err;
          });
          ch.on('close', () => {
            fresh.closed = true;
          });
        },
        () => {
          fresh.closed = true;
        },
      );
    }
    const channel = await withSignal(slot.channel, signal);
    return { channel, slot };
  }
}

/** Publish one message and wait for the broker's ack, translating what cannot succeed on retry. */
function confirmPublish(
  slot: ChannelSlot,
  channel: ConfirmChannel,
  exchange: string,
  amqp: AmqpPublish,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const done = (err: unknown): void => {
      if (err === null || err === undefined) return resolve();
      // the channel's 'error' (carrying the broker's reply code) fires before the confirm callbacks fail
      const cause = slot.closeError ?? (err instanceof Error ? err : new Error('publish failed'));
      const code = amqpErrorCode(cause);
      if (code === 403 || code === 404) reject(new Fatal(cause.message, { cause }));
      else reject(cause);
    };
    try {
      channel.publish(exchange, amqp.routingKey, amqp.content, amqp.options, done);
    } catch (err) {
      // a channel that closed since we got it is worth another try; a frame that cannot be encoded
      // (headers over 64 KiB, say) is not
      if (err instanceof IllegalOperationError) done(err);
      else
        reject(
          new Fatal(`the message cannot be sent: ${err instanceof Error ? err.message : String(err)}`, {
            cause: err,
          }),
        );
    }
  });
}

function fatalHint(err: Error): string {
  const code = amqpErrorCode(err.cause);
  if (code === 403) return 'the broker user may not publish there; ask the broker administrators';
  if (code === 404) return 'the exchange does not exist; check publish_exchange';
  return 'make the message smaller (AMQP caps headers at 64 KiB)';
}

function withSignal<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(new Error('aborted'));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
