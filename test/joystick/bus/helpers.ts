import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { connect, type Channel, type ChannelModel, type GetMessage } from 'amqplib';
import { defaultBusConfig, type BusConfig } from '../../../src/joystick/bus/index.js';
import { connectionPids } from '../../../tools/reliability/broker.js';

export { connectionPids };

const run = promisify(execFile);

/** The machine's RabbitMQ; tests never mock amqplib. */
export const RABBIT_URL = 'amqp://guest:guest@127.0.0.1:5672/%2F';

export function unique(prefix: string): string {
  return `${prefix}.${randomBytes(5).toString('hex')}`;
}

export interface TestNames {
  exchange: string;
  queue: string;
  topicPrefix: string;
  connectionName: string;
}

export function testNames(): TestNames {
  const id = randomBytes(5).toString('hex');
  return {
    exchange: `test.bus.${id}`,
    queue: `test.bus.${id}.q`,
    topicPrefix: `org.test.${id}`,
    connectionName: `joystick-bus-test-${id}`,
  };
}

/** A configuration with its own topic exchange and durable queue, so tests never see each other's messages. */
export function testConfig(names: TestNames, extra: Partial<BusConfig> = {}): BusConfig {
  const config = defaultBusConfig();
  config.amqp_url = `${RABBIT_URL}?connection_attempts=2&retry_delay=0.2`;
  config.topic_prefix = names.topicPrefix;
  config.publish_exchange = names.exchange;
  config.exchanges = {
    [names.exchange]: { type: 'topic', durable: false, auto_delete: false, arguments: {} },
  };
  config.queues = { [names.queue]: { durable: true, auto_delete: false, exclusive: false, arguments: {} } };
  config.bindings = [
    { queue: names.queue, exchange: names.exchange, routing_keys: [`${names.topicPrefix}.#`] },
  ];
  config.client_properties = { ...config.client_properties, app: 'joystick-tests' };
  return { ...config, ...extra };
}

/** A plain amqplib connection for looking at what the broker holds, and for cleaning up. */
export class Raw {
  private constructor(
    readonly model: ChannelModel,
    readonly channel: Channel,
  ) {}

  static async open(): Promise<Raw> {
    const model = await connect(RABBIT_URL);
    model.on('error', () => undefined);
    const channel = await model.createChannel();
    channel.on('error', () => undefined);
    return new Raw(model, channel);
  }

  /** A fresh channel (a failed declaration kills the one it ran on). */
  async freshChannel(): Promise<Channel> {
    const ch = await this.model.createChannel();
    ch.on('error', () => undefined);
    return ch;
  }

  async declareTopology(names: TestNames): Promise<void> {
    await this.channel.assertExchange(names.exchange, 'topic', { durable: false, autoDelete: false });
    await this.channel.assertQueue(names.queue, { durable: true, autoDelete: false, exclusive: false });
    await this.channel.bindQueue(names.queue, names.exchange, `${names.topicPrefix}.#`);
  }

  async messageCount(queue: string): Promise<number> {
    const ch = await this.freshChannel();
    try {
      return (await ch.checkQueue(queue)).messageCount;
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** Publish raw bytes and properties, to play a misbehaving publisher. */
  async publishRaw(
    exchange: string,
    routingKey: string,
    content: Buffer,
    options: Record<string, unknown>,
  ): Promise<void> {
    const ch = await this.model.createConfirmChannel();
    try {
      await new Promise<void>((resolve, reject) => {
        ch.publish(exchange, routingKey, content, options, (err: unknown) =>
          err ? reject(new Error('nacked')) : resolve(),
        );
      });
    } finally {
      await ch.close().catch(() => undefined);
    }
  }

  /** Take one message off a queue (acking it), or null when the queue is empty. */
  async take(queue: string): Promise<GetMessage | null> {
    const msg = await this.channel.get(queue, { noAck: true });
    return msg === false ? null : msg;
  }

  async cleanup(names: TestNames): Promise<void> {
    const ch = await this.freshChannel();
    await ch.deleteQueue(names.queue).catch(() => undefined);
    await ch.deleteExchange(names.exchange).catch(() => undefined);
    await ch.close().catch(() => undefined);
  }

  async close(): Promise<void> {
    await this.model.close().catch(() => undefined);
  }
}

/** Make the broker drop our connection, the way an operator or a broker restart would. */
export async function forceCloseConnection(name: string): Promise<void> {
  const pids = await waitFor(async () => {
    const found = await connectionPids(name);
    return found.length > 0 ? found : undefined;
  }, 15_000);
  for (const pid of pids)
    await run('rabbitmqctl', ['close_connection', pid, 'joystick bus test: forced close']);
}

export async function waitFor<T>(
  probe: () => Promise<T | undefined> | T | undefined,
  timeoutMs = 10_000,
  everyMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
