import { randomUUID } from 'node:crypto';
import type { ConsumeMessage, Options } from 'amqplib';
import { InvalidMessage } from './errors.js';

/*
 * A fedora-messaging message and its AMQP form, as fedora_messaging/message.py builds and reads it and
 * docs/wire-format.rst describes it: a JSON object body in UTF-8, content_type application/json,
 * content_encoding utf-8, delivery_mode 2, a v4 UUID message_id, and the fedora_messaging_* headers.
 */

/** fedora-messaging's severities (message.DEBUG ... message.ERROR). */
export const DEBUG = 10;
export const INFO = 20;
export const WARNING = 30;
export const ERROR = 40;
export const SEVERITIES = [DEBUG, INFO, WARNING, ERROR] as const;
export type Severity = (typeof SEVERITIES)[number];

/** The schema name of fedora-messaging's base Message class. */
export const BASE_SCHEMA = 'base.message';

/** fedora-messaging caps nothing; this keeps one hostile or broken message from eating the consumer's memory. */
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

export type JsonObject = Record<string, unknown>;

/**
 * A header value pika can put on the wire: fedora-messaging's headers are strings, integers and booleans;
 * null, lists and tables are allowed because pika encodes them too. Floats are not (pika refuses them).
 */
export type HeaderValue = string | number | boolean | null | HeaderValue[] | { [key: string]: HeaderValue };

export interface Message {
  /** The message_id property: a v4 UUID. */
  id: string;
  /** Outgoing: the topic without prefix. Incoming: the routing key it arrived with (prefix included). */
  topic: string;
  /** Every header, the fedora_messaging_* ones included. */
  headers: Record<string, unknown>;
  body: JsonObject;
  severity: Severity;
  /** The fedora_messaging_schema header, e.g. base.message or pungi.compose.status.change.v1. */
  schema: string;
  /** The AMQP priority property; unset means none (RabbitMQ reads it as 0). */
  priority?: number;
  /** The queue it arrived through, for received messages and dumps. */
  queue?: string | null;
}

/** The objects a message is about; each becomes a fedora_messaging_<kind>_<name>: true header. */
export interface MessageSubjects {
  usernames?: readonly string[];
  groups?: readonly string[];
  packages?: readonly string[];
  containers?: readonly string[];
  modules?: readonly string[];
  flatpaks?: readonly string[];
}

export interface NewMessage extends MessageSubjects {
  topic: string;
  body: JsonObject;
  /** INFO unless said otherwise, as fedora-messaging's Message class. */
  severity?: Severity;
  schema?: string;
  /** Extra headers; the fedora_messaging_* ones computed here win over same-named entries. */
  headers?: Record<string, HeaderValue>;
  priority?: number;
  /** Normally generated; set only to replay a message under its original id. */
  id?: string;
  /** Normally now. */
  sentAt?: Date;
}

/** The filter header prefixes, in the order fedora-messaging's Message._filter_headers writes them. */
const SUBJECT_HEADERS: readonly [keyof MessageSubjects, string][] = [
  ['usernames', 'user'],
  ['groups', 'group'],
  ['packages', 'rpm'],
  ['containers', 'container'],
  ['modules', 'module'],
  ['flatpaks', 'flatpak'],
];

export function isSeverity(value: unknown): value is Severity {
  return typeof value === 'number' && (SEVERITIES as readonly number[]).includes(value);
}

/** The sent-at header: UTC, whole seconds, "+00:00" (Python's datetime.isoformat()), e.g. 2019-07-30T19:12:22+00:00. */
export function formatSentAt(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, '+00:00');
}

function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Build an outgoing message with the headers fedora-messaging's Message._build_properties sets. */
export function createMessage(input: NewMessage): Message {
  if (!isJsonObject(input.body)) throw new TypeError('a fedora-messaging message body must be a JSON object');
  // fails now, with a stack pointing at the caller, rather than at publish time
  JSON.stringify(input.body);
  const severity = input.severity ?? INFO;
  if (!isSeverity(severity))
    throw new TypeError(`severity must be one of ${SEVERITIES.join(', ')}, got ${String(severity)}`);
  if (input.priority !== undefined) checkPriority(input.priority);
  const schema = input.schema ?? BASE_SCHEMA;
  const headers: Record<string, unknown> = { ...(input.headers ?? {}) };
  headers.fedora_messaging_schema = schema;
  headers['sent-at'] = formatSentAt(input.sentAt ?? new Date());
  headers.fedora_messaging_severity = severity;
  // "Mirror the priority in the headers for debugging purposes" (fedora-messaging); the publisher
  // rewrites it if the configuration supplies the priority.
  headers.priority = input.priority ?? 0;
  for (const [prop, kind] of SUBJECT_HEADERS) {
    for (const name of input[prop] ?? []) headers[`fedora_messaging_${kind}_${name}`] = true;
  }
  toAmqpTable(headers); // reject unencodable header values at construction
  const message: Message = {
    id: input.id ?? randomUUID(),
    topic: input.topic,
    headers,
    body: input.body,
    severity,
    schema,
  };
  if (input.priority !== undefined) message.priority = input.priority;
  return message;
}

function checkPriority(priority: number): void {
  if (!Number.isInteger(priority) || priority < 0 || priority > 255) {
    throw new TypeError(`priority must be an integer from 0 to 255, got ${String(priority)}`);
  }
}

/**
 * The routing key fedora-messaging publishes under: `topic_prefix` (trailing dots removed) + "." + topic,
 * or the bare topic when there is no prefix (Message._encoded_routing_key).
 */
export function routingKeyFor(topicPrefix: string, topic: string): string {
  const prefix = topicPrefix.replace(/\.+$/, '');
  return topicPrefix ? `${prefix}.${topic}` : topic;
}

type AmqpFieldValue = unknown;

/**
 * Encode header values the way pika does, so a consumer sees the same AMQP field types from joystick as
 * from fedora-messaging: integers as signed 32-bit ('I', 64-bit 'l' beyond), booleans 't', strings 'S'.
 * amqplib would otherwise pick the smallest integer type (20 becomes a signed byte).
 */
export function toAmqpTable(headers: Record<string, unknown>): Record<string, AmqpFieldValue> {
  const out: Record<string, AmqpFieldValue> = {};
  for (const [key, value] of Object.entries(headers)) out[key] = toAmqpValue(value, key);
  return out;
}

function toAmqpValue(value: unknown, where: string): AmqpFieldValue {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return value;
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value)) {
      throw new TypeError(
        `header ${where}: ${String(value)} is not an integer; pika cannot encode floats in headers`,
      );
    }
    return { '!': value >= -0x80000000 && value <= 0x7fffffff ? 'int' : 'long', value };
  }
  if (Array.isArray(value)) return value.map((v, i) => toAmqpValue(v, `${where}[${i}]`));
  if (isJsonObject(value)) {
    const out: Record<string, AmqpFieldValue> = {};
    for (const [k, v] of Object.entries(value)) out[k] = toAmqpValue(v, `${where}.${k}`);
    return out;
  }
  throw new TypeError(`header ${where}: cannot encode a ${typeof value} in an AMQP header`);
}

export interface PublishSettings {
  topicPrefix: string;
  /** publish_priority from the configuration: used when the message has none of its own. */
  defaultPriority?: number | null;
}

export interface AmqpPublish {
  routingKey: string;
  content: Buffer;
  options: Options.Publish;
}

/** The routing key, body and AMQP properties fedora-messaging would send for this message. */
export function toAmqp(message: Message, settings: PublishSettings): AmqpPublish {
  const priority = message.priority ?? settings.defaultPriority ?? undefined;
  if (priority !== undefined) checkPriority(priority);
  const headers = { ...message.headers, priority: priority ?? 0 };
  const routingKey = routingKeyFor(settings.topicPrefix, message.topic);
  // AMQP short string; fedora-messaging documents the same 255-byte limit for topics
  if (Buffer.byteLength(routingKey, 'utf8') > 255) {
    throw new TypeError(`the routing key ${routingKey.slice(0, 60)}... is over 255 bytes; shorten the topic`);
  }
  const options: Options.Publish = {
    contentType: 'application/json',
    contentEncoding: 'utf-8',
    deliveryMode: 2,
    messageId: message.id,
    headers: toAmqpTable(headers),
  };
  if (priority !== undefined) options.priority = priority;
  return {
    routingKey,
    content: Buffer.from(JSON.stringify(message.body), 'utf8'),
    options,
  };
}

/** A message as the consumer hands it to a handler. */
export interface ReceivedMessage extends Message {
  queue: string;
  /** The broker delivered it before and it was not acked then: the handler may have seen it already. */
  redelivered: boolean;
  exchange: string;
}

export interface ParseOptions {
  /** Bodies larger than this are rejected. Default 1 MiB. */
  maxBodyBytes?: number;
  /**
   * Reject a delivery without message_id, headers, fedora_messaging_schema or fedora_messaging_severity
   * (default). When false, fill them in the way fedora-messaging's get_message does (base.message, INFO,
   * an empty id) and report what was missing through `onMissing`.
   */
  requireProperties?: boolean;
  onMissing?: (what: string) => void;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Read a delivery back into a Message, rejecting with InvalidMessage (and a reason a person can act on)
 * what fedora-messaging's get_message would reject, plus oversized bodies and, unless told otherwise,
 * deliveries missing the properties a fedora-messaging publisher always sets.
 */
export function parseDelivery(
  delivery: ConsumeMessage,
  queue: string,
  opts: ParseOptions = {},
): ReceivedMessage {
  const props = delivery.properties;
  const strict = opts.requireProperties ?? true;
  const maxBytes = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  const rawId: unknown = props.messageId;
  const id = typeof rawId === 'string' ? rawId : undefined;
  const reject = (reason: string): never => {
    throw new InvalidMessage(reason, id);
  };
  const missing = (what: string): void => {
    if (strict) reject(`no ${what}`);
    opts.onMissing?.(what);
  };

  if (delivery.content.length > maxBytes) {
    reject(`the body is ${delivery.content.length} bytes, over the limit of ${maxBytes}`);
  }
  if (id === undefined) {
    if (rawId !== undefined && rawId !== null) reject('message_id is not a string');
    missing('message_id property');
  }
  const rawHeaders: unknown = props.headers;
  let headers: Record<string, unknown> = {};
  if (isJsonObject(rawHeaders)) headers = { ...rawHeaders };
  else missing('headers');

  let schema = BASE_SCHEMA;
  const rawSchema = headers.fedora_messaging_schema;
  if (rawSchema === undefined) missing('fedora_messaging_schema header');
  else if (typeof rawSchema !== 'string') reject('the fedora_messaging_schema header is not a string');
  else schema = rawSchema;

  let severity: Severity = INFO;
  const rawSeverity = headers.fedora_messaging_severity;
  if (rawSeverity === undefined) missing('fedora_messaging_severity header');
  else if (!isSeverity(rawSeverity)) {
    reject(
      `the fedora_messaging_severity header is ${JSON.stringify(rawSeverity)}, not one of ${SEVERITIES.join(', ')}`,
    );
  } else severity = rawSeverity;

  if (headers['sent-at'] !== undefined && typeof headers['sent-at'] !== 'string') {
    reject('the sent-at header is not a string');
  }

  // fedora-messaging decodes with the declared encoding and assumes utf-8 when there is none
  const encoding: unknown = props.contentEncoding;
  if (encoding === undefined || encoding === null)
    opts.onMissing?.('content_encoding property (assumed utf-8)');
  else if (typeof encoding !== 'string' || !/^utf-?8$/i.test(encoding)) {
    reject(`the content encoding is ${JSON.stringify(encoding)}; only utf-8 is supported`);
  }

  let text = '';
  try {
    text = UTF8.decode(delivery.content);
  } catch {
    reject('the body is not valid UTF-8');
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (err) {
    reject(`the body is not JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (!isJsonObject(body)) {
    reject(
      `the body is ${Array.isArray(body) ? 'a JSON array' : `JSON ${body === null ? 'null' : typeof body}`}, not an object`,
    );
  }

  const message: ReceivedMessage = {
    id: id ?? '',
    topic: delivery.fields.routingKey,
    headers,
    body: body as JsonObject,
    severity,
    schema,
    queue,
    redelivered: delivery.fields.redelivered,
    exchange: delivery.fields.exchange,
  };
  const priority: unknown = props.priority;
  if (typeof priority === 'number') message.priority = priority;
  return message;
}
