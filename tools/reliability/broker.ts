import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { promisify } from 'node:util';
import amqp from 'amqplib';

const run = promisify(execFile);

/** The machine's RabbitMQ, as the tests use it. */
export const AMQP_URL = process.env.JOYSTICK_TEST_AMQP ?? 'amqp://guest:guest@127.0.0.1:5672/%2F';

/** RabbitMQ's pids of the connections whose client-provided name is `name` (argv, never a shell string). */
export async function connectionPids(name: string): Promise<string[]> {
  const { stdout } = await run('rabbitmqctl', [
    'list_connections',
    'pid',
    'name',
    'client_properties',
    '-q',
    '--no-table-headers',
  ]);
  return stdout
    .split('\n')
    .filter((line) => line.includes(`{"connection_name","${name}"}`))
    .map((line) => line.split('\t')[0] ?? '')
    .filter((pid) => pid !== '');
}

/**
 * Make the broker close every connection named `name`, as an operator's `rabbitmqctl close_connection`
 * or a broker restart does. Returns how many were closed (0 when the client is not connected right now).
 */
export async function closeConnections(
  name: string,
  reason = 'reliability test: forced close',
): Promise<number> {
  const pids = await connectionPids(name);
  let closed = 0;
  for (const pid of pids) {
    try {
      await run('rabbitmqctl', ['close_connection', pid, reason]);
      closed++;
    } catch {
      // it went away by itself between the listing and the close
    }
  }
  return closed;
}

/** Messages ready in a queue (not delivered, or returned by a consumer that died or nacked them). */
export async function queueReady(queue: string): Promise<number> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    const { messageCount } = await ch.checkQueue(queue);
    await ch.close();
    return messageCount;
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** Ready plus delivered-but-unacknowledged: every message the broker still holds for the queue. */
export async function queueHeld(queue: string): Promise<{ ready: number; unacked: number }> {
  const { stdout } = await run('rabbitmqctl', [
    'list_queues',
    'name',
    'messages_ready',
    'messages_unacknowledged',
    '-q',
    '--no-table-headers',
  ]);
  for (const line of stdout.split('\n')) {
    const [name, ready, unacked] = line.split('\t');
    if (name === queue) return { ready: Number(ready), unacked: Number(unacked) };
  }
  throw new Error(`no queue ${queue} on the broker`);
}

export async function deleteQueue(name: string): Promise<void> {
  const conn = await amqp.connect(AMQP_URL);
  try {
    const ch = await conn.createChannel();
    await ch.deleteQueue(name).catch(() => undefined);
  } finally {
    await conn.close().catch(() => undefined);
  }
}

/** A publisher for Pungi's messages, as fedora-messaging sends them (one connection, confirms). */
export async function openPungiPublisher(prefix: string) {
  const conn = await amqp.connect(AMQP_URL);
  const ch = await conn.createConfirmChannel();
  return {
    async publish(body: unknown, topic = 'pungi.compose.status.change'): Promise<string> {
      const id = randomUUID();
      await new Promise<void>((resolve, reject) =>
        ch.publish(
          'amq.topic',
          `${prefix}.${topic}`,
          Buffer.from(JSON.stringify(body)),
          {
            contentType: 'application/json',
            contentEncoding: 'utf-8',
            deliveryMode: 2,
            messageId: id,
            headers: {
              fedora_messaging_schema: 'base.message',
              fedora_messaging_severity: 20,
              'sent-at': new Date().toISOString().replace(/\.\d+Z$/, '+00:00'),
            },
          },
          (err: unknown) =>
            err ? reject(err instanceof Error ? err : new Error('publish nacked')) : resolve(),
        ),
      );
      return id;
    },
    async close(): Promise<void> {
      await ch.close().catch(() => undefined);
      await conn.close().catch(() => undefined);
    },
  };
}
