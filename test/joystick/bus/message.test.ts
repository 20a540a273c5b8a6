import type { ConsumeMessage } from 'amqplib';
import { describe, expect, it } from 'vitest';
import {
  createMessage,
  formatSentAt,
  InvalidMessage,
  parseDelivery,
  routingKeyFor,
  toAmqp,
  toAmqpTable,
  WARNING,
  type Severity,
} from '../../../src/joystick/bus/index.js';

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('createMessage', () => {
  it('sets the headers fedora-messaging sets, in its way', () => {
    const m = createMessage({
      topic: 'fedimg.image.publish',
      body: { image_name: 'Fedora-Cloud-Base-40-1.14.x86_64' },
      severity: WARNING,
      schema: 'fedimg.image.publish.v1',
      usernames: ['jcline'],
      packages: ['python-requests'],
      groups: ['cloud'],
      containers: ['c1'],
      modules: ['m1'],
      flatpaks: ['f1'],
      headers: { 'x-extra': 'kept', fedora_messaging_severity: 40 },
      sentAt: new Date('2019-07-30T19:12:22.789Z'),
    });
    expect(m.id).toMatch(UUID_V4);
    expect(m.severity).toBe(30);
    expect(m.schema).toBe('fedimg.image.publish.v1');
    expect(m.headers).toEqual({
      'x-extra': 'kept',
      fedora_messaging_schema: 'fedimg.image.publish.v1',
      'sent-at': '2019-07-30T19:12:22+00:00',
      fedora_messaging_severity: 30, // the computed header wins over a caller's
      priority: 0,
      fedora_messaging_user_jcline: true,
      fedora_messaging_group_cloud: true,
      'fedora_messaging_rpm_python-requests': true,
      fedora_messaging_container_c1: true,
      fedora_messaging_module_m1: true,
      fedora_messaging_flatpak_f1: true,
    });
    expect(m.priority).toBeUndefined();
  });

  it('defaults to base.message and INFO, and mirrors a priority', () => {
    const m = createMessage({ topic: 't', body: {}, priority: 3 });
    expect(m).toMatchObject({ schema: 'base.message', severity: 20, priority: 3, headers: { priority: 3 } });
    expect(createMessage({ topic: 't', body: {} }).id).not.toBe(m.id);
  });

  it('formats sent-at as Python isoformat of a whole-second UTC time', () => {
    expect(formatSentAt(new Date('2024-02-29T00:00:00.999Z'))).toBe('2024-02-29T00:00:00+00:00');
    expect(createMessage({ topic: 't', body: {} }).headers['sent-at']).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$/,
    );
  });

  it('refuses what fedora-messaging could not send', () => {
    expect(() => createMessage({ topic: 't', body: [] as unknown as Record<string, unknown> })).toThrow(
      /JSON object/,
    );
    expect(() => createMessage({ topic: 't', body: {}, severity: 25 as Severity })).toThrow(
      /severity must be one of 10, 20, 30, 40/,
    );
    expect(() => createMessage({ topic: 't', body: {}, priority: 256 })).toThrow(/priority/);
    expect(() => createMessage({ topic: 't', body: {}, headers: { ratio: 0.5 } })).toThrow(
      /header ratio: 0.5 is not an integer/,
    );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(() => createMessage({ topic: 't', body: cyclic })).toThrow(/circular/);
  });
});

describe('routing keys', () => {
  it('join topic_prefix and topic as fedora-messaging does', () => {
    expect(routingKeyFor('org.fedoraproject.prod', 'fedimg.image.upload')).toBe(
      'org.fedoraproject.prod.fedimg.image.upload',
    );
    expect(routingKeyFor('org.fedoraproject.stg.', 'x')).toBe('org.fedoraproject.stg.x');
    expect(routingKeyFor('org..', 'x')).toBe('org.x');
    expect(routingKeyFor('', 'fedimg.image.upload')).toBe('fedimg.image.upload');
  });
});

describe('toAmqp', () => {
  const m = createMessage({ topic: 'a.b', body: { é: 'ü', n: 1 }, severity: 40, sentAt: new Date(0) });

  it('builds fedora-messaging properties', () => {
    const out = toAmqp(m, { topicPrefix: 'org.x' });
    expect(out.routingKey).toBe('org.x.a.b');
    expect(JSON.parse(out.content.toString('utf8'))).toEqual({ é: 'ü', n: 1 });
    expect(out.options).toMatchObject({
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      deliveryMode: 2,
      messageId: m.id,
    });
    expect(out.options.priority).toBeUndefined();
    expect(out.options.headers).toMatchObject({ priority: { '!': 'int', value: 0 } });
  });

  it('takes publish_priority from the configuration unless the message has its own', () => {
    expect(toAmqp(m, { topicPrefix: '', defaultPriority: 4 }).options).toMatchObject({
      priority: 4,
      headers: { priority: { value: 4 } },
    });
    const own = { ...m, priority: 7 };
    expect(toAmqp(own, { topicPrefix: '', defaultPriority: 4 }).options).toMatchObject({ priority: 7 });
  });

  it('encodes header values with the AMQP types pika uses', () => {
    expect(toAmqpTable({ s: 'x', b: true, i: 20, big: 2 ** 40, n: null, l: [1, 'a'], t: { k: -5 } })).toEqual(
      {
        s: 'x',
        b: true,
        i: { '!': 'int', value: 20 },
        big: { '!': 'long', value: 2 ** 40 },
        n: null,
        l: [{ '!': 'int', value: 1 }, 'a'],
        t: { k: { '!': 'int', value: -5 } },
      },
    );
    expect(() => toAmqpTable({ f: 1.5 })).toThrow(/pika cannot encode floats/);
  });
});

function delivery(
  content: Buffer | string,
  properties: Record<string, unknown> = {},
  fields: Record<string, unknown> = {},
): ConsumeMessage {
  return {
    content: typeof content === 'string' ? Buffer.from(content, 'utf8') : content,
    fields: {
      deliveryTag: 1,
      redelivered: false,
      exchange: 'amq.topic',
      routingKey: 'org.x.t',
      consumerTag: 'c',
      ...fields,
    },
    properties: {
      contentType: 'application/json',
      contentEncoding: 'utf-8',
      headers: {
        fedora_messaging_schema: 'base.message',
        fedora_messaging_severity: 20,
        'sent-at': '2019-07-30T19:12:22+00:00',
      },
      deliveryMode: 2,
      priority: undefined,
      correlationId: undefined,
      replyTo: undefined,
      expiration: undefined,
      messageId: '6b0b9d4e-5b5e-4e1b-9d39-8a6b5a0a8b11',
      timestamp: undefined,
      type: undefined,
      userId: undefined,
      appId: undefined,
      clusterId: undefined,
      ...properties,
    },
  };
}

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidMessage);
    return (err as InvalidMessage).reason;
  }
  throw new Error('expected InvalidMessage');
}

describe('parseDelivery', () => {
  it('reads a fedora-messaging delivery', () => {
    const m = parseDelivery(delivery('{"status": "FINISHED"}', { priority: 2 }, { redelivered: true }), 'q1');
    expect(m).toEqual({
      id: '6b0b9d4e-5b5e-4e1b-9d39-8a6b5a0a8b11',
      topic: 'org.x.t',
      headers: {
        fedora_messaging_schema: 'base.message',
        fedora_messaging_severity: 20,
        'sent-at': '2019-07-30T19:12:22+00:00',
      },
      body: { status: 'FINISHED' },
      severity: 20,
      schema: 'base.message',
      priority: 2,
      queue: 'q1',
      redelivered: true,
      exchange: 'amq.topic',
    });
  });

  it('rejects a body that is not JSON', () => {
    expect(reasonOf(() => parseDelivery(delivery('{not json'), 'q'))).toMatch(/^the body is not JSON \(/);
  });

  it('rejects JSON that is not an object', () => {
    expect(reasonOf(() => parseDelivery(delivery('[1]'), 'q'))).toBe(
      'the body is a JSON array, not an object',
    );
    expect(reasonOf(() => parseDelivery(delivery('null'), 'q'))).toBe('the body is JSON null, not an object');
    expect(reasonOf(() => parseDelivery(delivery('"s"'), 'q'))).toBe(
      'the body is JSON string, not an object',
    );
  });

  it('rejects a body that is not UTF-8', () => {
    expect(reasonOf(() => parseDelivery(delivery(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), 'q'))).toBe(
      'the body is not valid UTF-8',
    );
  });

  it('rejects an encoding other than utf-8, and assumes utf-8 when none is given', () => {
    expect(reasonOf(() => parseDelivery(delivery('{}', { contentEncoding: 'latin-1' }), 'q'))).toMatch(
      /content encoding is "latin-1"/,
    );
    expect(parseDelivery(delivery('{}', { contentEncoding: 'UTF8' }), 'q').body).toEqual({});
    const missing: string[] = [];
    parseDelivery(delivery('{}', { contentEncoding: undefined }), 'q', { onMissing: (w) => missing.push(w) });
    expect(missing).toEqual(['content_encoding property (assumed utf-8)']);
  });

  it('rejects a body over the size limit (1 MiB by default)', () => {
    const big = `{"x": "${'a'.repeat(1024 * 1024)}"}`;
    expect(reasonOf(() => parseDelivery(delivery(big), 'q'))).toMatch(
      /^the body is 1048585 bytes, over the limit of 1048576$/,
    );
    expect(reasonOf(() => parseDelivery(delivery('{"a": 1}'), 'q', { maxBodyBytes: 4 }))).toMatch(
      /over the limit of 4/,
    );
  });

  it('rejects missing properties, saying which', () => {
    expect(reasonOf(() => parseDelivery(delivery('{}', { messageId: undefined }), 'q'))).toBe(
      'no message_id property',
    );
    expect(reasonOf(() => parseDelivery(delivery('{}', { headers: undefined }), 'q'))).toBe('no headers');
    expect(
      reasonOf(() => parseDelivery(delivery('{}', { headers: { fedora_messaging_severity: 20 } }), 'q')),
    ).toBe('no fedora_messaging_schema header');
    expect(
      reasonOf(() =>
        parseDelivery(delivery('{}', { headers: { fedora_messaging_schema: 'base.message' } }), 'q'),
      ),
    ).toBe('no fedora_messaging_severity header');
  });

  it('rejects headers fedora-messaging schema validation rejects', () => {
    const headers = (h: Record<string, unknown>) => ({
      headers: { fedora_messaging_schema: 'base.message', fedora_messaging_severity: 20, ...h },
    });
    expect(
      reasonOf(() => parseDelivery(delivery('{}', headers({ fedora_messaging_severity: 25 })), 'q')),
    ).toMatch(/severity header is 25/);
    expect(
      reasonOf(() => parseDelivery(delivery('{}', headers({ fedora_messaging_schema: 1 })), 'q')),
    ).toMatch(/schema header is not a string/);
    expect(reasonOf(() => parseDelivery(delivery('{}', headers({ 'sent-at': 5 })), 'q'))).toMatch(
      /sent-at header is not a string/,
    );
  });

  it('can fill in missing properties the way fedora-messaging does', () => {
    const missing: string[] = [];
    const m = parseDelivery(delivery('{}', { messageId: undefined, headers: undefined }), 'q', {
      requireProperties: false,
      onMissing: (w) => missing.push(w),
    });
    expect(m).toMatchObject({ id: '', schema: 'base.message', severity: 20, headers: {} });
    expect(missing).toEqual([
      'message_id property',
      'headers',
      'fedora_messaging_schema header',
      'fedora_messaging_severity header',
    ]);
  });

  it('names the message in the error', () => {
    expect(() => parseDelivery(delivery('x'), 'q')).toThrow(
      /^invalid message 6b0b9d4e-5b5e-4e1b-9d39-8a6b5a0a8b11: the body is not JSON/,
    );
  });
});
