import type { Logger } from '../../shared/log.js';
import type { Backoff } from '../../shared/retry.js';
import type { BusConfig } from './config.js';
import { BusConnection } from './connection.js';
import { Consumer, type ConsumerOptions, type MessageHandler } from './consumer.js';
import type { Message } from './message.js';
import { Publisher, type PublisherOptions, type PublishOptions } from './publisher.js';

/*
 * The short way in, like fedora_messaging/api.py: one connection shared by a publisher (its own confirm
 * channel) and any number of consumers (a channel each), closed together.
 */

export interface BusOptions {
  logger?: Logger;
  /** Shown by RabbitMQ as the connection's name; defaults to the configuration's client_properties app. */
  connectionName?: string;
  /** Pacing of reconnections after the connection is lost (default `POLICIES.busReconnect`). */
  reconnect?: Backoff;
  publisher?: Omit<PublisherOptions, 'logger'>;
}

export class Bus {
  private readonly consumers = new Set<Consumer>();

  private constructor(
    readonly connection: BusConnection,
    readonly publisher: Publisher,
    private readonly config: BusConfig,
    private readonly logger: Logger | undefined,
  ) {}

  static async open(config: BusConfig, opts: BusOptions = {}): Promise<Bus> {
    const app = config.client_properties.app;
    const connection = await BusConnection.open(config, {
      logger: opts.logger,
      connectionName: opts.connectionName ?? (typeof app === 'string' ? app : undefined),
      backoff: opts.reconnect,
    });
    const publisher = new Publisher(connection, config, { ...opts.publisher, logger: opts.logger });
    return new Bus(connection, publisher, config, opts.logger);
  }

  /** Publish and wait for the broker's confirmation (see Publisher.publish). */
  publish(message: Message, opts?: PublishOptions): Promise<void> {
    return this.publisher.publish(message, opts);
  }

  /** Start a consumer on the configuration's queues and bindings; watch its `done` for the exit. */
  async consume(handler: MessageHandler, opts: ConsumerOptions = {}): Promise<Consumer> {
    const consumer = new Consumer(this.connection, this.config, handler, { logger: this.logger, ...opts });
    this.consumers.add(consumer);
    void consumer.done.then(() => this.consumers.delete(consumer));
    try {
      await consumer.start();
    } catch (err) {
      this.consumers.delete(consumer);
      throw err;
    }
    return consumer;
  }

  /** Stop consumers gracefully (running handlers finish), stop publishing, close the connection. */
  async close(): Promise<void> {
    await Promise.all([...this.consumers].map((c) => c.stop()));
    await this.publisher.close();
    await this.connection.close();
  }
}
