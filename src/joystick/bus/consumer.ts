import { randomUUID } from 'node:crypto';
import type { Channel, ChannelModel, ConsumeMessage } from 'amqplib';
import { PlumeError } from '../../shared/errors.js';
import { silentLogger, type Logger } from '../../shared/log.js';
import { POLICIES, delayFor } from '../../shared/retry.js';
import { sleep } from './backoff.js';
import { closeQuietly } from './close.js';
import type { BindingConfig, BusConfig, QueueConfig } from './config.js';
import type { BusConnection } from './connection.js';
import {
  amqpErrorCode,
  BadDeclaration,
  ConsumerCanceled,
  Drop,
  HaltConsumer,
  InvalidMessage,
  Nack,
} from './errors.js';
import { parseDelivery, type ReceivedMessage } from './message.js';

/*
 * Consuming as fedora-messaging's twisted Consumer does (fedora_messaging/twisted/consumer.py):
 *  - returns          -> ack
 *  - throws Nack      -> nack, requeue
 *  - throws Drop      -> nack, no requeue (logged)
 *  - throws HaltConsumer -> the message is requeued (or acked with requeue: false), consuming stops,
 *                        and `done` reports the halt with its exit code
 *  - invalid message  -> nack, no requeue, logged with the reason; consuming goes on
 *  - anything else    -> logged, nack with requeue, and the consumer stops with the error: that is what
 *                        fedora-messaging does (it nacks every outstanding message and fails the
 *                        consumer's result, so `fedora-messaging consume` exits with status 13)
 * Declarations are redone on every connection (the queue may be auto-deleted), passively when
 * passive_declares says so. A lost connection leaves unacked messages to the broker, which redelivers
 * them flagged `redelivered`; consumption resumes only after the handlers still running have finished,
 * so a redelivered copy never runs beside its original.
 */

export type MessageHandler = (message: ReceivedMessage) => Promise<void> | void;

export type ConsumerExit =
  | { reason: 'stopped' }
  | { reason: 'halted'; exitCode: number; message: string | undefined }
  | { reason: 'failed'; error: Error };

export interface ConsumerOptions {
  logger?: Logger;
  /** Handlers running at once. Default 1: fedora-messaging handles one message at a time. */
  concurrency?: number;
  /** Bodies over this size are dropped as invalid. Default 1 MiB. */
  maxBodyBytes?: number;
  /** See ParseOptions.requireProperties; default true. */
  requireProperties?: boolean;
  /** Replace the configuration's [queues], as fedora-messaging's consume(queues=...) does. */
  queues?: Record<string, QueueConfig>;
  /** Replace the configuration's [[bindings]]. */
  bindings?: BindingConfig[];
}

export interface ConsumerStats {
  received: number;
  acked: number;
  requeued: number;
  dropped: number;
  invalid: number;
}

/** One consume channel on one connection; a new one after every loss. */
interface Session {
  model: ChannelModel;
  channel: Channel;
  consumerTags: string[];
  queues: string[];
  dead: boolean;
}

interface Pending {
  session: Session;
  queue: string;
  delivery: ConsumeMessage;
}

type Settlement = 'ack' | 'requeue' | 'drop';

function deferred<T>(): { promise: Promise<T>; resolve: (v: T) => void; reject: (e: Error) => void } {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export class Consumer {
  /** Settles when the consumer has stopped, for whatever reason; never rejects. */
  readonly done: Promise<ConsumerExit>;
  readonly stats: ConsumerStats = { received: 0, acked: 0, requeued: 0, dropped: 0, invalid: 0 };

  private readonly log: Logger;
  private readonly concurrency: number;
  private readonly queueConfig: Record<string, QueueConfig>;
  private readonly bindingConfig: BindingConfig[];
  private readonly doneDeferred = deferred<ConsumerExit>();
  private readonly startedDeferred = deferred<void>();
  private session: Session | undefined;
  private backlog: Pending[] = [];
  private readonly inFlight = new Set<Promise<void>>();
  private started = false;
  private stopping = false;
  private shutdownPromise: Promise<ConsumerExit> | undefined;
  private setupRunning = false;
  private setupFailures = 0;
  private readonly stopController = new AbortController();
  private readonly onConnected = (): void => this.kick();
  private readonly onDisconnected = (): void => {
    if (this.session) this.sessionLost(this.session);
  };

  constructor(
    private readonly connection: BusConnection,
    private readonly config: BusConfig,
    private readonly handler: MessageHandler,
    private readonly opts: ConsumerOptions = {},
  ) {
    this.log = opts.logger ?? silentLogger();
    this.concurrency = Math.max(1, opts.concurrency ?? 1);
    this.queueConfig = opts.queues ?? config.queues;
    this.bindingConfig = opts.bindings ?? config.bindings;
    this.done = this.doneDeferred.promise;
    // start() reports a failure to start; nobody need listen to this copy
    this.startedDeferred.promise.catch(() => undefined);
  }

  /** The queues consumed from in the current session (server-named ones resolved). */
  get queues(): string[] {
    return this.session && !this.session.dead ? [...this.session.queues] : [];
  }

  /**
   * Declare, bind and start consuming; resolves once consuming, rejects if the broker refuses a
   * declaration (BadDeclaration) or the configuration cannot work. Reconnections are handled from then on.
   */
  async start(): Promise<void> {
    if (this.started) throw new Error('a Consumer can be started once');
    this.started = true;
    if (this.config.qos.prefetch_size !== 0) {
      throw new PlumeError(
        'usage',
        `qos.prefetch_size is ${this.config.qos.prefetch_size}; RabbitMQ does not implement prefetch_size`,
        'set qos.prefetch_size to 0 (the default) and bound messages with prefetch_count',
      );
    }
    const queueNames = new Set(Object.keys(this.queueConfig));
    if (queueNames.size === 0)
      throw new PlumeError('usage', 'no queue to consume from', 'declare one in [queues]');
    for (const b of this.bindingConfig) {
      if (!queueNames.has(b.queue)) {
        // fedora-messaging skips such a binding silently; say so at least
        this.log.warn(
          { queue: b.queue, exchange: b.exchange },
          'a binding names a queue that is not in [queues]; ignored',
        );
      }
    }
    this.connection.on('connected', this.onConnected);
    this.connection.on('disconnected', this.onDisconnected);
    this.kick();
    await this.startedDeferred.promise;
  }

  /** Stop gracefully: no new deliveries, unstarted ones requeued, running handlers finished, channel closed. */
  stop(): Promise<ConsumerExit> {
    return this.shutdown({ reason: 'stopped' });
  }

  /** Bring a session up on the live connection unless one is already healthy; one runner at a time. */
  private kick(): void {
    if (this.setupRunning || this.stopping) return;
    this.setupRunning = true;
    void this.setupLoop().finally(() => {
      this.setupRunning = false;
    });
  }

  private async setupLoop(): Promise<void> {
    while (!this.stopping) {
      const model = this.connection.model;
      if (!model) return; // the next 'connected' kicks again
      if (this.session && !this.session.dead && this.session.model === model) return;
      // a redelivered copy must not run beside the original that is still being handled
      if (this.inFlight.size > 0) {
        this.log.info({ running: this.inFlight.size }, 'waiting for running handlers before consuming again');
        await Promise.allSettled([...this.inFlight]);
        continue;
      }
      try {
        this.session = await this.openSession(model);
        this.setupFailures = 0;
        this.startedDeferred.resolve();
        return;
      } catch (err) {
        if (this.stopping) return;
        const error = err instanceof Error ? err : new Error(String(err));
        if (err instanceof PlumeError || amqpErrorCode(err) !== undefined) {
          // the broker said no (or the configuration cannot work): retrying will not change that
          this.log.error({ err: error.message }, 'cannot set up consuming');
          this.startedDeferred.reject(error);
          void this.shutdown({ reason: 'failed', error });
          return;
        }
        this.setupFailures++;
        this.log.warn({ err: error.message }, 'setting up consuming failed; retrying');
        await sleep(delayFor(this.setupFailures, POLICIES.busReconnect), this.stopController.signal);
      }
    }
  }

  private async openSession(model: ChannelModel): Promise<Session> {
    const queues = await this.declare(model);
    const channel = await model.createChannel();
    const session: Session = { model, channel, consumerTags: [], queues, dead: false };
    channel.on('error', (err: Error) => this.log.warn({ err: err.message }, 'consume channel error'));
    channel.on('close', () => this.sessionLost(session));
    try {
      // per consumer, as pika's basic_qos(global_qos=False)
      await channel.prefetch(this.config.qos.prefetch_count);
      for (const queue of queues) {
        const tag = `joystick.${randomUUID()}`;
        try {
          await channel.consume(queue, (msg) => this.onDelivery(session, queue, msg), { consumerTag: tag });
        } catch (err) {
          if (amqpErrorCode(err) === 403) {
            throw new PlumeError(
              'credentials',
              `the broker refuses to let us consume from queue ${queue}`,
              'ask the broker administrators for read permission on it',
              {
                cause: err,
              },
            );
          }
          throw err;
        }
        session.consumerTags.push(tag);
      }
    } catch (err) {
      session.dead = true;
      await closeQuietly(channel);
      throw err;
    }
    this.log.info({ queues }, 'consuming');
    return session;
  }

  /** Exchanges, queues and bindings from the configuration, on a channel of their own (a refusal kills it). */
  private async declare(model: ChannelModel): Promise<string[]> {
    const ch = await model.createChannel();
    ch.on('error', () => undefined); // each refusal also rejects the operation, reported there
    const passiveDefault = this.config.passive_declares;
    try {
      for (const [name, ex] of Object.entries(this.config.exchanges)) {
        const passive = ex.passive ?? passiveDefault;
        try {
          if (passive) await ch.checkExchange(name);
          else
            await ch.assertExchange(name, ex.type, {
              durable: ex.durable,
              autoDelete: ex.auto_delete,
              arguments: ex.arguments,
            });
        } catch (err) {
          throw declarationError('exchange', name, err);
        }
      }
      const actual = new Map<string, string>();
      for (const [name, q] of Object.entries(this.queueConfig)) {
        const passive = q.passive ?? passiveDefault;
        if (passive && name === '') {
          throw new PlumeError(
            'usage',
            'a server-named queue ("") cannot be declared passively',
            'name the queue in [queues], or turn passive_declares off',
          );
        }
        try {
          const ok = passive
            ? await ch.checkQueue(name)
            : await ch.assertQueue(name, {
                durable: q.durable,
                autoDelete: q.auto_delete,
                exclusive: q.exclusive,
                arguments: q.arguments,
              });
          actual.set(name, ok.queue);
        } catch (err) {
          throw declarationError('queue', name === '' ? '(server-named)' : name, err);
        }
      }
      // fedora-messaging binds in passive mode too: bindings cannot be checked passively
      for (const b of this.bindingConfig) {
        const queue = actual.get(b.queue);
        if (queue === undefined) continue;
        for (const key of b.routing_keys) {
          try {
            await ch.bindQueue(queue, b.exchange, key, b.arguments ?? {});
          } catch (err) {
            throw declarationError('binding', `${queue} <- ${b.exchange} (${key})`, err);
          }
        }
      }
      return [...actual.values()];
    } finally {
      await closeQuietly(ch);
    }
  }

  private onDelivery(session: Session, queue: string, msg: ConsumeMessage | null): void {
    if (msg === null) {
      // the broker cancelled us: fedora-messaging treats it as fatal (ConsumerCanceled)
      if (!this.stopping) void this.shutdown({ reason: 'failed', error: new ConsumerCanceled(queue) });
      return;
    }
    if (session.dead) return;
    this.stats.received++;
    this.backlog.push({ session, queue, delivery: msg });
    this.pump();
  }

  private pump(): void {
    while (!this.stopping && this.inFlight.size < this.concurrency) {
      const item = this.backlog.shift();
      if (!item) return;
      if (item.session.dead) continue;
      const run: Promise<void> = this.handle(item)
        .catch((err: unknown) => {
          this.log.error(
            { err: err instanceof Error ? err.message : String(err) },
            'internal error handling a delivery',
          );
        })
        .finally(() => {
          this.inFlight.delete(run);
          this.pump();
        });
      this.inFlight.add(run);
    }
  }

  private async handle(item: Pending): Promise<void> {
    const { delivery } = item;
    const id: unknown = delivery.properties.messageId;
    const ctx = { id, topic: delivery.fields.routingKey, queue: item.queue };
    let message: ReceivedMessage;
    try {
      message = parseDelivery(delivery, item.queue, {
        maxBodyBytes: this.opts.maxBodyBytes,
        requireProperties: this.opts.requireProperties,
        onMissing: (what) =>
          this.log.warn({ ...ctx, missing: what }, 'message lacks a property; the publisher is misbehaving'),
      });
    } catch (err) {
      if (!(err instanceof InvalidMessage)) throw err;
      this.stats.invalid++;
      this.log.warn({ ...ctx, reason: err.reason }, 'dropping a message that is not valid');
      this.settle(item, 'drop');
      return;
    }
    this.log.info({ ...ctx, redelivered: message.redelivered }, 'consuming message');
    try {
      await this.handler(message);
    } catch (err) {
      if (err instanceof Nack) {
        this.log.info({ ...ctx, why: err.message }, 'returning the message to the queue');
        this.settle(item, 'requeue');
      } else if (err instanceof Drop) {
        this.log.warn({ ...ctx, why: err.message }, 'the handler dropped the message');
        this.settle(item, 'drop');
      } else if (err instanceof HaltConsumer) {
        this.log.info(
          { ...ctx, exitCode: err.exitCode, why: err.reason, requeue: err.requeue },
          'the handler asked to halt',
        );
        this.settle(item, err.requeue ? 'requeue' : 'ack');
        void this.shutdown({ reason: 'halted', exitCode: err.exitCode, message: err.reason });
      } else {
        const error = err instanceof Error ? err : new Error(String(err));
        this.log.error(
          { ...ctx, err: error.message, stack: error.stack },
          'unexpected error from the handler; requeueing and stopping',
        );
        this.settle(item, 'requeue');
        void this.shutdown({ reason: 'failed', error });
      }
      return;
    }
    this.settle(item, 'ack');
    this.log.info(ctx, 'consumed message');
  }

  /** Tell the broker; when the channel is gone the broker has already requeued it for redelivery. */
  private settle(item: Pending, how: Settlement): void {
    const { session, delivery } = item;
    if (session.dead) {
      this.log.warn(
        { id: delivery.properties.messageId as unknown, how },
        'the channel is gone; the broker will redeliver the message',
      );
      return;
    }
    try {
      if (how === 'ack') session.channel.ack(delivery);
      else session.channel.nack(delivery, false, how === 'requeue');
    } catch (err) {
      this.log.warn(
        {
          id: delivery.properties.messageId as unknown,
          how,
          err: err instanceof Error ? err.message : String(err),
        },
        'could not settle the message; the broker will redeliver it',
      );
      return;
    }
    if (how === 'ack') this.stats.acked++;
    else if (how === 'requeue') this.stats.requeued++;
    else this.stats.dropped++;
  }

  private sessionLost(session: Session): void {
    if (session.dead) return;
    session.dead = true;
    // their delivery tags died with the channel: the broker redelivers them
    this.backlog = this.backlog.filter((p) => p.session !== session);
    if (this.stopping) return;
    this.log.warn('consume channel lost; consuming resumes once it is reopened');
    if (this.connection.model === session.model) {
      // the connection lives on (the channel alone failed): reopen after a pause, not in a tight loop
      this.setupFailures++;
      void sleep(delayFor(this.setupFailures, POLICIES.busReconnect), this.stopController.signal).then(() =>
        this.kick(),
      );
    }
  }

  private shutdown(exit: ConsumerExit): Promise<ConsumerExit> {
    if (this.shutdownPromise) return this.shutdownPromise;
    this.stopping = true;
    this.stopController.abort();
    this.shutdownPromise = (async () => {
      this.connection.off('connected', this.onConnected);
      this.connection.off('disconnected', this.onDisconnected);
      const session = this.session;
      if (session && !session.dead) {
        for (const tag of session.consumerTags) {
          await session.channel.cancel(tag).catch(() => undefined);
        }
      }
      // never started: give them back now
      for (const item of this.backlog.splice(0)) this.settle(item, 'requeue');
      await Promise.allSettled([...this.inFlight]);
      if (session && !session.dead) {
        session.dead = true;
        await closeQuietly(session.channel);
      }
      const error =
        exit.reason === 'failed'
          ? exit.error
          : new Error(`the consumer stopped (${exit.reason}) before it started`);
      this.startedDeferred.reject(error);
      this.log.info({ exit: exit.reason }, 'consumer stopped');
      this.doneDeferred.resolve(exit);
      return exit;
    })();
    return this.shutdownPromise;
  }
}

function declarationError(type: 'exchange' | 'queue' | 'binding', what: string, err: unknown): Error {
  return amqpErrorCode(err) !== undefined
    ? new BadDeclaration(type, what, err)
    : err instanceof Error
      ? err
      : new Error(String(err));
}
