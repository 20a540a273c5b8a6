import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { BusConnection, createMessage, PublishFailed, Publisher } from '../../../src/joystick/bus/index.js';
import { forceCloseConnection, Raw, testConfig, testNames, waitFor, type TestNames } from './helpers.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

let names: TestNames;
let raw: Raw;
let connection: BusConnection | undefined;
let publisher: Publisher | undefined;

beforeEach(async () => {
  names = testNames();
  raw = await Raw.open();
  await raw.declareTopology(names);
});

afterEach(async () => {
  await publisher?.close();
  await connection?.close();
  publisher = undefined;
  connection = undefined;
  await raw.cleanup(names);
  await raw.close();
});

async function openPublisher(
  extra: Parameters<typeof testConfig>[1] = {},
  opts: ConstructorParameters<typeof Publisher>[2] = {},
) {
  const config = testConfig(names, extra);
  connection = await BusConnection.open(config, {
    connectionName: names.connectionName,
    backoff: { baseMs: 100, maxMs: 500 },
  });
  publisher = new Publisher(connection, config, opts);
  return publisher;
}

describe('a published message, as a raw amqplib consumer sees it', () => {
  it('carries fedora-messaging properties and headers, field by field', async () => {
    const p = await openPublisher();
    const before = Math.floor(Date.now() / 1000) * 1000;
    const m = createMessage({
      topic: 'fedimg.image.publish',
      body: {
        image_name: 'Fedora-Cloud-Base-40-1.14.x86_64',
        extra: { id: 'ami-1', vol_type: 'gp3' },
        ünï: 'cödé',
      },
      severity: 40,
      schema: 'fedimg.image.publish.v1',
      usernames: ['jcline'],
      packages: ['python-requests'],
    });
    await p.publish(m);
    const got = await raw.take(names.queue);
    expect(got).not.toBeNull();
    const { fields, properties, content } = got!;
    expect(fields.exchange).toBe(names.exchange);
    expect(fields.routingKey).toBe(`${names.topicPrefix}.fedimg.image.publish`);
    expect(fields.redelivered).toBe(false);
    expect(properties.contentType).toBe('application/json');
    expect(properties.contentEncoding).toBe('utf-8');
    expect(properties.deliveryMode).toBe(2);
    expect(properties.messageId).toBe(m.id);
    expect(properties.messageId).toMatch(UUID_V4);
    // fedora-messaging sets no priority property unless publish_priority is configured
    expect(properties.priority).toBeUndefined();
    for (const unset of [
      'correlationId',
      'replyTo',
      'expiration',
      'timestamp',
      'type',
      'userId',
      'appId',
      'clusterId',
    ] as const) {
      expect(properties[unset], unset).toBeUndefined();
    }
    const headers = properties.headers as Record<string, unknown>;
    expect(Object.keys(headers).sort()).toEqual([
      'fedora_messaging_rpm_python-requests',
      'fedora_messaging_schema',
      'fedora_messaging_severity',
      'fedora_messaging_user_jcline',
      'priority',
      'sent-at',
    ]);
    expect(headers.fedora_messaging_schema).toBe('fedimg.image.publish.v1');
    expect(headers.fedora_messaging_severity).toBe(40);
    expect(headers.priority).toBe(0);
    expect(headers.fedora_messaging_user_jcline).toBe(true);
    expect(headers['fedora_messaging_rpm_python-requests']).toBe(true);
    const sentAt = headers['sent-at'] as string;
    expect(sentAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/);
    expect(Date.parse(sentAt)).toBeGreaterThanOrEqual(before);
    expect(Date.parse(sentAt)).toBeLessThanOrEqual(Date.now());
    expect(content.toString('utf8')).toBe(JSON.stringify(m.body));
    expect(JSON.parse(content.toString('utf8'))).toEqual(m.body);
  });

  it('carries publish_priority as the priority property, mirrored in the headers', async () => {
    const p = await openPublisher({ publish_priority: 5 });
    await p.publish(createMessage({ topic: 'a', body: {} }));
    const got = await raw.take(names.queue);
    expect(got!.properties.priority).toBe(5);
    expect((got!.properties.headers as Record<string, unknown>).priority).toBe(5);
  });

  it('uses the bare topic as routing key when there is no topic_prefix', async () => {
    await raw.channel.bindQueue(names.queue, names.exchange, 'bare.#');
    const p = await openPublisher({ topic_prefix: '' });
    await p.publish(createMessage({ topic: 'bare.topic', body: {} }));
    expect((await raw.take(names.queue))!.fields.routingKey).toBe('bare.topic');
  });
});

describe('publisher confirms', () => {
  it('resolve only once the broker holds the message', async () => {
    const p = await openPublisher();
    for (let i = 0; i < 20; i++) await p.publish(createMessage({ topic: 'n', body: { i } }));
    // no waiting: a confirmed message is already in the queue
    expect(await raw.messageCount(names.queue)).toBe(20);
  });

  it('are retried when the broker nacks, and succeed once it accepts', async () => {
    // a full queue that rejects publishes makes RabbitMQ nack
    const full = `${names.queue}.full`;
    await raw.channel.assertQueue(full, {
      durable: false,
      arguments: { 'x-max-length': 1, 'x-overflow': 'reject-publish' },
    });
    await raw.channel.bindQueue(full, names.exchange, `${names.topicPrefix}.full`);
    try {
      const p = await openPublisher(
        {},
        { maxAttempts: 50, timeoutMs: 20_000, backoff: { baseMs: 50, maxMs: 200 } },
      );
      await p.publish(createMessage({ topic: 'full', body: { n: 1 } }));
      const second = createMessage({ topic: 'full', body: { n: 2 } });
      const publishing = p.publish(second);
      let settled = false;
      void publishing.then(
        () => (settled = true),
        () => (settled = true),
      );
      await new Promise((r) => setTimeout(r, 500));
      expect(settled).toBe(false); // nacked and being retried, not reported as published
      expect((await raw.take(full))!.properties.messageId).not.toBe(second.id); // make room
      await publishing;
      expect((await raw.take(full))!.properties.messageId).toBe(second.id);
    } finally {
      await raw.channel.deleteQueue(full);
    }
  });

  it('fail with a clear error when the broker keeps nacking', async () => {
    const full = `${names.queue}.full`;
    await raw.channel.assertQueue(full, {
      durable: false,
      arguments: { 'x-max-length': 0, 'x-overflow': 'reject-publish' },
    });
    await raw.channel.bindQueue(full, names.exchange, `${names.topicPrefix}.full`);
    try {
      const p = await openPublisher({}, { maxAttempts: 3, backoff: { baseMs: 20, maxMs: 50 } });
      const m = createMessage({ topic: 'full', body: {} });
      const err = (await p.publish(m).catch((e: unknown) => e)) as PublishFailed;
      expect(err).toBeInstanceOf(PublishFailed);
      expect(err.attempts).toBe(3);
      expect(err.message).toBe(
        `could not publish message ${m.id} to ${names.exchange} with routing key ${names.topicPrefix}.full after 3 attempts: message nacked`,
      );
      // the channel survives a nack: the next publish works
      await p.publish(createMessage({ topic: 'ok', body: {} }));
    } finally {
      await raw.channel.deleteQueue(full);
    }
  });

  it('fail at once, without retrying, when the exchange does not exist', async () => {
    const p = await openPublisher({ publish_exchange: `${names.exchange}.missing` });
    const started = Date.now();
    const err = (await p
      .publish(createMessage({ topic: 'x', body: {} }))
      .catch((e: unknown) => e)) as PublishFailed;
    expect(err).toBeInstanceOf(PublishFailed);
    expect(err.attempts).toBe(1);
    expect(err.message).toMatch(/NOT_FOUND - no exchange/);
    expect(err.hint).toMatch(/publish_exchange/);
    expect(Date.now() - started).toBeLessThan(2000);
    // and the publisher recovers its channel for the next message
    await p.publish(createMessage({ topic: 'x', body: {} }), { exchange: names.exchange });
    expect(await raw.messageCount(names.queue)).toBe(1);
  });

  it('fail at once on what cannot be encoded, and keep the channel', async () => {
    const p = await openPublisher();
    const huge = createMessage({ topic: 'x', body: {}, headers: { blob: 'x'.repeat(70_000) } });
    const err = (await p.publish(huge).catch((e: unknown) => e)) as PublishFailed;
    expect(err).toBeInstanceOf(PublishFailed);
    expect(err.attempts).toBe(1);
    expect(err.message).toMatch(/the message cannot be sent/);
    await expect(p.publish(createMessage({ topic: 'y'.repeat(300), body: {} }))).rejects.toThrow(
      /over 255 bytes/,
    );
    await p.publish(createMessage({ topic: 'fine', body: {} }));
    expect(await raw.messageCount(names.queue)).toBe(1);
  });

  it('with passive_declares, publishing does not declare the exchange', async () => {
    const p = await openPublisher({ passive_declares: true, publish_exchange: `${names.exchange}.absent` });
    await expect(p.publish(createMessage({ topic: 'x', body: {} }))).rejects.toThrow(/NOT_FOUND/);
    const ch = await raw.freshChannel();
    await expect(ch.checkExchange(`${names.exchange}.absent`)).rejects.toThrow(/NOT_FOUND/);
  });

  it('survive the broker closing the connection, across the reconnection', async () => {
    const p = await openPublisher({}, { maxAttempts: 20, timeoutMs: 30_000 });
    await p.publish(createMessage({ topic: 'before', body: {} }));
    const disconnected = new Promise((resolve) => connection!.once('disconnected', resolve));
    await forceCloseConnection(names.connectionName);
    await disconnected;
    expect(connection!.isConnected).toBe(false);
    // published while the connection is down: waits for the reconnection, then is confirmed
    await p.publish(createMessage({ topic: 'during', body: {} }));
    expect(connection!.isConnected).toBe(true);
    await waitFor(async () => ((await raw.messageCount(names.queue)) === 2 ? true : undefined));
  });

  it('reject after the publisher is closed', async () => {
    const p = await openPublisher();
    await p.close();
    await expect(p.publish(createMessage({ topic: 'x', body: {} }))).rejects.toBeInstanceOf(PublishFailed);
  });
});
