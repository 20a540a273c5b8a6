import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  Bus,
  BusConnection,
  Consumer,
  createMessage,
  Publisher,
  type BusConfig,
  type ReceivedMessage,
} from '../../../src/joystick/bus/index.js';
import { PlumeError } from '../../../src/shared/errors.js';
import {
  connectionPids,
  forceCloseConnection,
  Raw,
  testConfig,
  testNames,
  waitFor,
  type TestNames,
} from './helpers.js';

/* The broker drops the connection (rabbitmqctl close_connection), as a restart or an operator would. */

const FAST = { baseMs: 100, maxMs: 1000 };

let names: TestNames;
let raw: Raw;
let config: BusConfig;
const cleanups: (() => Promise<unknown>)[] = [];

beforeEach(async () => {
  names = testNames();
  raw = await Raw.open();
  config = testConfig(names);
});

afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
  await raw.cleanup(names);
  await raw.close();
});

async function open(): Promise<{ connection: BusConnection; publisher: Publisher }> {
  const connection = await BusConnection.open(config, {
    connectionName: names.connectionName,
    backoff: FAST,
  });
  const publisher = new Publisher(connection, config, { timeoutMs: 60_000, maxAttempts: 50 });
  cleanups.push(
    () => connection.close(),
    () => publisher.close(),
  );
  return { connection, publisher };
}

describe('the connection', () => {
  it('reports disconnected, reconnecting and connected, and stays closed after close()', async () => {
    const { connection } = await open();
    const events: string[] = [];
    connection.on('disconnected', () => events.push('disconnected'));
    connection.on('reconnecting', ({ attempt }) => events.push(`reconnecting ${attempt}`));
    connection.on('connected', () => events.push('connected'));
    connection.on('closed', () => events.push('closed'));
    await forceCloseConnection(names.connectionName);
    await waitFor(() => (events.includes('connected') ? true : undefined));
    expect(events).toEqual(['disconnected', 'reconnecting 1', 'connected']);
    expect(connection.isConnected).toBe(true);
    await connection.close();
    expect(events.at(-1)).toBe('closed');
    await new Promise((r) => setTimeout(r, 500));
    expect(await connectionPids(names.connectionName)).toEqual([]);
    await expect(connection.waitForConnection()).rejects.toThrow(/closed/);
  });

  it('gives up on the first connection after connection_attempts, saying why', async () => {
    const refused = {
      ...config,
      amqp_url: 'amqp://guest:guest@127.0.0.1:1/?connection_attempts=2&retry_delay=0.1',
    };
    const err = (await BusConnection.open(refused).catch((e: unknown) => e)) as PlumeError;
    expect(err).toBeInstanceOf(PlumeError);
    expect(err.kind).toBe('provider');
    expect(err.message).toMatch(
      /^cannot connect to the AMQP broker amqp:\/\/guest:redacted@127\.0\.0\.1:1\/.* after 2 attempts: .*ECONNREFUSED/,
    );
  });

  it('reports refused credentials without the password', async () => {
    const bad = { ...config, amqp_url: 'amqp://guest:not-the-password@127.0.0.1:5672/' };
    const err = (await BusConnection.open(bad).catch((e: unknown) => e)) as PlumeError;
    expect(err.kind).toBe('credentials');
    expect(err.message).toMatch(/refused the login/);
    expect(err.message).not.toContain('not-the-password');
    expect(err.hint).toMatch(/user and password/);
  });
});

describe('publishing across a lost connection', () => {
  it('confirms every message; none is dropped', async () => {
    await raw.declareTopology(names);
    const { connection, publisher } = await open();
    // A message every 10 ms until 100 after the connection was lost, however long the broker takes to
    // close it (rabbitmqctl is slow on a busy machine): the loss always falls mid-stream. Bounded.
    const messages: ReturnType<typeof createMessage>[] = [];
    const confirms: Promise<void>[] = [];
    let confirmed = 0;
    let confirmedAtLoss = -1;
    let sentAtLoss = -1;
    connection.once('disconnected', () => {
      confirmedAtLoss = confirmed;
      sentAtLoss = messages.length;
    });
    const closing = new Promise((r) => setTimeout(r, 200)).then(() =>
      forceCloseConnection(names.connectionName),
    );
    for (let i = 0; i < 6000 && (sentAtLoss < 0 || messages.length < sentAtLoss + 100); i++) {
      const m = createMessage({ topic: 'burst', body: { i } });
      messages.push(m);
      confirms.push(publisher.publish(m).then(() => void confirmed++));
      await new Promise((r) => setTimeout(r, 10));
    }
    await closing;
    await Promise.all(confirms);
    // the loss happened mid-stream: some were confirmed before it, the rest after the reconnection
    expect(confirmedAtLoss).toBeGreaterThan(0);
    expect(confirmedAtLoss).toBeLessThan(messages.length);
    expect(confirmed).toBe(messages.length);
    // a message whose confirm was lost is published again: duplicates are allowed, gaps are not
    const ids = new Set<string>();
    for (let m = await raw.take(names.queue); m !== null; m = await raw.take(names.queue))
      ids.add(m.properties.messageId as string);
    expect([...ids].sort()).toEqual(messages.map((m) => m.id).sort());
  });
});

describe('consuming across a lost connection', () => {
  it('resumes; no message is lost, and none is handled again once acked', async () => {
    const { connection, publisher } = await open();
    const handled: ReceivedMessage[] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let gateId: string | undefined;
    const consumer = new Consumer(connection, config, async (m) => {
      handled.push(m);
      if (handled.length === 10) {
        gateId = m.id;
        await gate; // in flight when the connection goes
      }
    });
    cleanups.push(() => consumer.stop());
    await consumer.start();
    const sent = [];
    for (let i = 0; i < 30; i++) {
      const m = createMessage({ topic: 'work', body: { i } });
      await publisher.publish(m);
      sent.push(m);
    }
    await waitFor(() => (gateId !== undefined ? true : undefined));
    await waitFor(() => (consumer.stats.acked === 9 ? true : undefined));
    await new Promise((r) => setTimeout(r, 300)); // let the nine acks reach the broker
    const back = new Promise((resolve) => connection.once('connected', resolve));
    await forceCloseConnection(names.connectionName);
    await back;
    await new Promise((r) => setTimeout(r, 300));
    // consumption waits for the handler still running, so its redelivered copy cannot run beside it
    expect(handled).toHaveLength(10);
    release();
    await waitFor(() => (consumer.stats.acked === 30 ? true : undefined), 20_000);
    await new Promise((r) => setTimeout(r, 300));

    const counts = new Map<string, number>();
    for (const m of handled) counts.set(m.id, (counts.get(m.id) ?? 0) + 1);
    expect(new Set(counts.keys())).toEqual(new Set(sent.map((m) => m.id)));
    // only the message in flight at the loss (never acked) is handled twice, the second time redelivered
    expect([...counts].filter(([, n]) => n > 1)).toEqual([[gateId, 2]]);
    const again = handled.filter((m) => m.id === gateId);
    expect(again.map((m) => m.redelivered)).toEqual([false, true]);
    // the nine acked before the loss came once and never again
    for (const m of sent.slice(0, 9)) expect(counts.get(m.id)).toBe(1);
    expect(handled.slice(0, 9).every((m) => !m.redelivered)).toBe(true);
    expect(await raw.messageCount(names.queue)).toBe(0);
  });

  it('redeclares on reconnection: a server-named exclusive queue is recreated and bound', async () => {
    config = {
      ...config,
      queues: { '': { durable: false, auto_delete: true, exclusive: true, arguments: {} } },
      bindings: [{ queue: '', exchange: names.exchange, routing_keys: [`${names.topicPrefix}.#`] }],
    };
    const { connection, publisher } = await open();
    const seen: string[] = [];
    const consumer = new Consumer(connection, config, (m) => void seen.push(m.queue));
    cleanups.push(() => consumer.stop());
    await consumer.start();
    const firstQueue = consumer.queues[0];
    await publisher.publish(createMessage({ topic: 'one', body: {} }));
    await waitFor(() => (seen.length === 1 ? true : undefined));
    await forceCloseConnection(names.connectionName);
    await waitFor(() =>
      consumer.queues.length === 1 && consumer.queues[0] !== firstQueue ? true : undefined,
    );
    await publisher.publish(createMessage({ topic: 'two', body: {} }));
    await waitFor(() => (seen.length === 2 ? true : undefined));
    expect(seen[1]).toBe(consumer.queues[0]);
    expect(seen[1]).not.toBe(firstQueue);
  });
});

describe('the Bus', () => {
  it('publishes, consumes and closes everything gracefully', async () => {
    const bus = await Bus.open(config, { connectionName: names.connectionName, reconnect: FAST });
    cleanups.push(() => bus.close());
    const seen: string[] = [];
    const consumer = await bus.consume((m) => void seen.push(m.id));
    const m = createMessage({ topic: 'bus', body: {} });
    await bus.publish(m);
    await waitFor(() => (seen.length === 1 ? true : undefined));
    expect(seen).toEqual([m.id]);
    await bus.close();
    expect(await consumer.done).toEqual({ reason: 'stopped' });
    expect(bus.connection.isClosed).toBe(true);
  });
});
