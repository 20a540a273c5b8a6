import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  BadDeclaration,
  BusConnection,
  Consumer,
  createMessage,
  Drop,
  HaltConsumer,
  Nack,
  Publisher,
  type BusConfig,
  type ConsumerOptions,
  type MessageHandler,
  type ReceivedMessage,
} from '../../../src/joystick/bus/index.js';
import { PlumeError } from '../../../src/shared/errors.js';
import { Raw, testConfig, testNames, waitFor, type TestNames } from './helpers.js';

let names: TestNames;
let raw: Raw;
let config: BusConfig;
let connection: BusConnection;
let publisher: Publisher;
const consumers: Consumer[] = [];

beforeEach(async () => {
  names = testNames();
  raw = await Raw.open();
  config = testConfig(names);
  connection = await BusConnection.open(config, { connectionName: names.connectionName });
  publisher = new Publisher(connection, config);
});

afterEach(async () => {
  for (const c of consumers.splice(0)) await c.stop();
  await publisher.close();
  await connection.close();
  await raw.cleanup(names);
  await raw.close();
});

async function startConsumer(
  handler: MessageHandler,
  opts: ConsumerOptions = {},
  cfg: BusConfig = config,
): Promise<Consumer> {
  const consumer = new Consumer(connection, cfg, handler, opts);
  consumers.push(consumer);
  await consumer.start();
  return consumer;
}

function publish(topic: string, body: Record<string, unknown> = {}) {
  const m = createMessage({ topic, body });
  return publisher.publish(m).then(() => m);
}

describe('consuming', () => {
  it('declares from the configuration, round-trips a message and acks it', async () => {
    const seen: ReceivedMessage[] = [];
    const consumer = await startConsumer((m) => {
      seen.push(m);
    });
    expect(consumer.queues).toEqual([names.queue]);
    const sent = createMessage({
      topic: 'pungi.compose.status.change',
      body: { status: 'FINISHED', compose_id: 'Fedora-40-20240414.0' },
      severity: 30,
      schema: 'pungi.compose.status.change.v1',
    });
    await publisher.publish(sent);
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(seen[0]).toEqual({
      id: sent.id,
      topic: `${names.topicPrefix}.pungi.compose.status.change`,
      headers: sent.headers,
      body: sent.body,
      severity: 30,
      schema: 'pungi.compose.status.change.v1',
      queue: names.queue,
      redelivered: false,
      exchange: names.exchange,
    });
    await waitFor(() => (consumer.stats.acked === 1 ? true : undefined));
    await consumer.stop();
    expect(await raw.messageCount(names.queue)).toBe(0);
  });

  it('Nack requeues: the message comes back, flagged redelivered', async () => {
    const seen: boolean[] = [];
    const consumer = await startConsumer((m) => {
      seen.push(m.redelivered);
      if (seen.length === 1) throw new Nack('try later');
    });
    await publish('retry.me');
    await waitFor(() => (seen.length === 2 ? true : undefined));
    expect(seen).toEqual([false, true]);
    await waitFor(() => (consumer.stats.acked === 1 ? true : undefined));
    expect(consumer.stats).toMatchObject({ received: 2, requeued: 1, acked: 1 });
  });

  it('Drop rejects without requeue: the message is gone, handled once', async () => {
    let calls = 0;
    const consumer = await startConsumer(() => {
      calls++;
      throw new Drop('never valid');
    });
    await publish('drop.me');
    await waitFor(() => (consumer.stats.dropped === 1 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(1);
    await consumer.stop();
    expect(await raw.messageCount(names.queue)).toBe(0);
  });

  it('HaltConsumer stops consuming, requeues the message, and reports the exit', async () => {
    let calls = 0;
    const consumer = await startConsumer(() => {
      calls++;
      throw new HaltConsumer({ exitCode: 3, reason: 'disk full' });
    });
    await publish('halt.here');
    expect(await consumer.done).toEqual({ reason: 'halted', exitCode: 3, message: 'disk full' });
    expect(calls).toBe(1);
    expect(await raw.messageCount(names.queue)).toBe(1); // requeued, not lost
    await publish('after.halt');
    await new Promise((r) => setTimeout(r, 300));
    expect(calls).toBe(1); // no longer consuming
  });

  it('HaltConsumer with requeue: false acks the message, as fedora-messaging does', async () => {
    const consumer = await startConsumer(() => {
      throw new HaltConsumer({ requeue: false });
    });
    await publish('halt.ack');
    expect(await consumer.done).toEqual({ reason: 'halted', exitCode: 0, message: undefined });
    expect(await raw.messageCount(names.queue)).toBe(0);
  });

  it('drops a malformed message with the reason and goes on with the next', async () => {
    const seen: string[] = [];
    const consumer = await startConsumer((m) => {
      seen.push(m.topic);
    });
    const props = {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      messageId: 'bad-1',
      headers: { fedora_messaging_schema: 'base.message', fedora_messaging_severity: 20 },
    };
    await raw.publishRaw(
      names.exchange,
      `${names.topicPrefix}.bad.json`,
      Buffer.from('{"truncated": '),
      props,
    );
    await raw.publishRaw(
      names.exchange,
      `${names.topicPrefix}.bad.utf8`,
      Buffer.from([0x7b, 0xc3, 0x28, 0x7d]),
      props,
    );
    await raw.publishRaw(names.exchange, `${names.topicPrefix}.bad.noid`, Buffer.from('{}'), {
      ...props,
      messageId: undefined,
    });
    await publish('good.one');
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(seen).toEqual([`${names.topicPrefix}.good.one`]);
    expect(consumer.stats).toMatchObject({ received: 4, invalid: 3, dropped: 3, acked: 1 });
    await consumer.stop();
    expect(await raw.messageCount(names.queue)).toBe(0);
  });

  it('drops a body over the size limit', async () => {
    const seen: string[] = [];
    const consumer = await startConsumer((m) => void seen.push(m.topic), { maxBodyBytes: 64 });
    await publish('too.big', { pad: 'x'.repeat(100) });
    await publish('small');
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(seen).toEqual([`${names.topicPrefix}.small`]);
    expect(consumer.stats.invalid).toBe(1);
  });

  it('on an unexpected error requeues the message and stops, as fedora-messaging does', async () => {
    let calls = 0;
    const consumer = await startConsumer(() => {
      calls++;
      throw new TypeError('bug in the handler');
    });
    await publish('boom');
    const exit = await consumer.done;
    expect(exit.reason).toBe('failed');
    expect(exit.reason === 'failed' && exit.error.message).toBe('bug in the handler');
    expect(calls).toBe(1);
    expect(await raw.messageCount(names.queue)).toBe(1);
  });

  it('stops gracefully: the running handler finishes and is acked, the backlog is requeued', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const started: string[] = [];
    const finished: string[] = [];
    const consumer = await startConsumer(async (m) => {
      started.push(m.id);
      await gate;
      finished.push(m.id);
    });
    const first = await publish('slow.1');
    await publish('slow.2');
    await publish('slow.3');
    await waitFor(() => (started.length === 1 && consumer.stats.received === 3 ? true : undefined));
    const stopping = consumer.stop();
    await new Promise((r) => setTimeout(r, 200));
    expect(finished).toEqual([]); // stop() waits for the handler
    release();
    expect(await stopping).toEqual({ reason: 'stopped' });
    expect(started).toEqual([first.id]);
    expect(finished).toEqual([first.id]);
    expect(consumer.stats).toMatchObject({ acked: 1, requeued: 2 });
    expect(await raw.messageCount(names.queue)).toBe(2);
  });

  it('runs handlers concurrently up to the limit when asked', async () => {
    let running = 0;
    let peak = 0;
    const consumer = await startConsumer(
      async () => {
        running++;
        peak = Math.max(peak, running);
        await new Promise((r) => setTimeout(r, 100));
        running--;
      },
      { concurrency: 3 },
    );
    await Promise.all(Array.from({ length: 9 }, (_, i) => publish(`c.${i}`)));
    await waitFor(() => (consumer.stats.acked === 9 ? true : undefined));
    expect(peak).toBe(3);
  });
});

describe('declarations', () => {
  it('with passive_declares, fail clearly on a queue that does not exist', async () => {
    const passive = { ...config, passive_declares: true, exchanges: {} };
    await raw.channel.assertExchange(names.exchange, 'topic', { durable: false });
    const consumer = new Consumer(connection, passive, () => undefined);
    consumers.push(consumer);
    const err = (await consumer.start().catch((e: unknown) => e)) as BadDeclaration;
    expect(err).toBeInstanceOf(BadDeclaration);
    expect(err.objectType).toBe('queue');
    expect(err.code).toBe(404);
    expect(err.message).toMatch(
      new RegExp(`^cannot declare queue ${names.queue.replace(/\./g, '\\.')}: .*NOT_FOUND`),
    );
    expect(err.hint).toMatch(/passive_declares/);
    expect((await consumer.done).reason).toBe('failed');
  });

  it('with passive_declares, consume from what exists without creating anything', async () => {
    await raw.declareTopology(names);
    const passive = { ...config, passive_declares: true };
    const seen: string[] = [];
    await startConsumer((m) => void seen.push(m.topic), {}, passive);
    await publish('passive.ok');
    await waitFor(() => (seen.length === 1 ? true : undefined));
  });

  it('refuse a queue that exists with other settings', async () => {
    await raw.channel.assertQueue(names.queue, { durable: false });
    const err = await new Consumer(connection, config, () => undefined).start().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadDeclaration);
    expect((err as BadDeclaration).code).toBe(406);
    expect((err as BadDeclaration).message).toMatch(/PRECONDITION_FAILED/);
  });

  it('consume from a server-named queue (the fedora-messaging default)', async () => {
    const cfg = {
      ...config,
      queues: { '': { durable: false, auto_delete: true, exclusive: true, arguments: {} } },
      bindings: [{ queue: '', exchange: names.exchange, routing_keys: [`${names.topicPrefix}.#`] }],
    };
    const seen: string[] = [];
    const consumer = await startConsumer((m) => void seen.push(m.queue), {}, cfg);
    expect(consumer.queues[0]).toMatch(/^amq\.gen-/);
    await publish('anon');
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(seen).toEqual(consumer.queues);
  });

  it('refuse prefetch_size, which RabbitMQ does not implement', async () => {
    const cfg = { ...config, qos: { prefetch_count: 10, prefetch_size: 1024 } };
    await expect(new Consumer(connection, cfg, () => undefined).start()).rejects.toThrow(/prefetch_size/);
  });

  it('report a cancellation by the broker (queue deleted) as a failure', async () => {
    const consumer = await startConsumer(() => undefined);
    await raw.channel.deleteQueue(names.queue);
    const exit = await consumer.done;
    expect(exit.reason).toBe('failed');
    expect(exit.reason === 'failed' && exit.error).toBeInstanceOf(PlumeError);
    expect(exit.reason === 'failed' && exit.error.message).toMatch(/cancelled the consumer of queue/);
  });
});
