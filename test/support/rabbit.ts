import { randomBytes, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';

export const AMQP_URL = process.env.JOYSTICK_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672/%2F';

export interface Received {
  routingKey: string;
  properties: amqp.MessageProperties;
  headers: Record<string, unknown>;
  body: Record<string, unknown>;
}

/** A raw amqplib consumer on a private queue, collecting what is published under some routing keys. */
export async function collect(keys: string[]) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
  for (const k of keys) await ch.bindQueue(queue, 'amq.topic', k);
  const got: Received[] = [];
  await ch.consume(queue, (m) => {
    if (!m) return;
    got.push({
      routingKey: m.fields.routingKey,
      properties: m.properties,
      headers: m.properties.headers ?? {},
      body: JSON.parse(m.content.toString()) as Record<string, unknown>,
    });
    ch.ack(m);
  });
  return {
    got,
    async waitFor(pred: (got: Received[]) => boolean, timeoutMs = 120_000, what = 'messages'): Promise<void> {
      const end = Date.now() + timeoutMs;
      while (!pred(got)) {
        if (Date.now() > end)
          throw new Error(
            `timed out waiting for ${what}; got ${got.length}: ${got.map((g) => g.routingKey).join(', ')}`,
          );
        await sleep(50);
      }
    },
    async close() {
      await ch.close().catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}

/** Publish a message the way fedora-messaging does (properties and headers), or raw bytes for bad input. */
export async function publishRaw(
  routingKey: string,
  body: unknown,
  opts: { raw?: Buffer; headers?: Record<string, unknown> } = {},
): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  const content = opts.raw ?? Buffer.from(JSON.stringify(body));
  await new Promise<void>((resolve, reject) =>
    ch.publish(
      'amq.topic',
      routingKey,
      content,
      {
        contentType: 'application/json',
        contentEncoding: 'utf-8',
        deliveryMode: 2,
        messageId: randomUUID(),
        headers: {
          fedora_messaging_schema: 'base.message',
          fedora_messaging_severity: 20,
          'sent-at': new Date().toISOString().replace(/\.\d+Z$/, '+00:00'),
          ...opts.headers,
        },
      },
      (err: Error | null) => (err ? reject(err) : resolve()),
    ),
  );
  await ch.close();
  await conn.close();
}

export function uniquePrefix(): string {
  return `org.fedoraproject.test${randomBytes(4).toString('hex')}`;
}

/** Delete a queue left by a test (durable queues outlive their consumers). */
export async function deleteQueue(name: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createChannel();
  await ch.deleteQueue(name).catch(() => undefined);
  await conn.close().catch(() => undefined);
}
