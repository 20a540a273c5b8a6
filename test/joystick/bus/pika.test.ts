import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  BusConnection,
  Consumer,
  createMessage,
  Publisher,
  type ReceivedMessage,
} from '../../../src/joystick/bus/index.js';
import { RABBIT_URL, Raw, testConfig, testNames, waitFor, type TestNames } from './helpers.js';

/*
 * The other side of the wire, for real: pika (the AMQP library under fedora-messaging) reads what joystick
 * publishes and publishes what joystick reads. Needs Debian's Python with pika (python3-pika): without it
 * the tests fail, naming the command that installs it, and are never skipped.
 */

const run = promisify(execFile);
const PROBE = fileURLToPath(new URL('./fixtures/pika_probe.py', import.meta.url));

function pythonWithPika(): string {
  for (const python of ['python3', '/usr/bin/python3']) {
    try {
      execFileSync(python, ['-c', 'import pika'], { stdio: 'ignore' });
      return python;
    } catch {
      // try the next one
    }
  }
  throw new Error('no Python with pika: run scripts/setup.sh (or: apt-get install python3-pika)');
}

let python: string;

describe('wire compatibility with pika', () => {
  beforeAll(() => {
    python = pythonWithPika();
  });

  let names: TestNames;
  let raw: Raw;
  let connection: BusConnection;

  beforeEach(async () => {
    names = testNames();
    raw = await Raw.open();
    await raw.declareTopology(names);
    connection = await BusConnection.open(testConfig(names));
  });

  afterEach(async () => {
    await connection.close();
    await raw.cleanup(names);
    await raw.close();
  });

  it('pika reads what joystick publishes, with the AMQP types fedora-messaging writes', async () => {
    const config = testConfig(names);
    const publisher = new Publisher(connection, config);
    const m = createMessage({
      topic: 'fedimg.image.upload',
      body: { status: 'completed', ünï: 'cödé' },
      severity: 40,
      usernames: ['jcline'],
    });
    await publisher.publish(m);
    await publisher.close();
    const { stdout } = await run(python, [PROBE, 'get', RABBIT_URL, names.queue]);
    const got = JSON.parse(stdout) as Record<string, unknown>;
    expect(got).toEqual({
      routing_key: `${names.topicPrefix}.fedimg.image.upload`,
      content_type: 'application/json',
      content_encoding: 'utf-8',
      delivery_mode: 2,
      message_id: m.id,
      priority: null,
      headers: m.headers,
      // what pika itself encodes for str, int and bool
      tags: {
        fedora_messaging_schema: 'S',
        'sent-at': 'S',
        fedora_messaging_severity: 'I',
        priority: 'I',
        fedora_messaging_user_jcline: 't',
      },
      body: m.body,
    });
  });

  it('joystick reads what pika publishes the way fedora-messaging does', async () => {
    const seen: ReceivedMessage[] = [];
    const consumer = new Consumer(connection, testConfig(names), (msg) => void seen.push(msg));
    await consumer.start();
    try {
      const { stdout } = await run(python, [
        PROBE,
        'publish',
        RABBIT_URL,
        names.exchange,
        `${names.topicPrefix}.pungi.compose.status.change`,
      ]);
      const sent = JSON.parse(stdout) as {
        id: string;
        headers: Record<string, unknown>;
        body: Record<string, unknown>;
      };
      await waitFor(() => (seen.length === 1 ? true : undefined));
      expect(seen[0]).toMatchObject({
        id: sent.id,
        headers: sent.headers,
        body: sent.body,
        severity: 20,
        schema: 'base.message',
        redelivered: false,
      });
      await waitFor(() => (consumer.stats.acked === 1 ? true : undefined));
    } finally {
      await consumer.stop();
    }
  });
});
