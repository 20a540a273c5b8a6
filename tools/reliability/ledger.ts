import { setTimeout as sleep } from 'node:timers/promises';
import amqp from 'amqplib';
import { AMQP_URL } from './broker.js';

/** One delivery of an announcement, as a consumer of joystick's messages sees it. */
export interface Delivery {
  routingKey: string;
  /** Without the topic prefix. */
  topic: string;
  messageId: string;
  severity: number;
  body: Record<string, unknown>;
  redelivered: boolean;
}

/**
 * What a consumer of joystick's announcements received, and the accounting the reliability tests and the
 * soak use:
 *  - a *message* is a distinct message id: joystick stores each announcement once, with its id, in the
 *    outbox, and every copy it ever sends carries that id;
 *  - a *copy* is one delivery; copies beyond the first of a message are re-sends after a lost confirm
 *    (a kill or a connection loss between the broker's confirm and the outbox row being marked sent),
 *    which a consumer recognises by the id;
 *  - a *duplicate* is the same announcement (topic and body) under two different ids: a consumer cannot
 *    recognise it, so it is what must never happen.
 */
export class Ledger {
  readonly deliveries: Delivery[] = [];

  private constructor(
    private readonly conn: amqp.ChannelModel,
    private readonly ch: amqp.Channel,
    readonly prefix: string,
  ) {}

  /** Listen on a private queue to everything published under `prefix` (minus Pungi's own messages). */
  static async open(prefix: string): Promise<Ledger> {
    const conn = await amqp.connect(AMQP_URL);
    conn.on('error', () => undefined);
    const ch = await conn.createChannel();
    const { queue } = await ch.assertQueue('', { exclusive: true, autoDelete: true });
    await ch.bindQueue(queue, 'amq.topic', `${prefix}.#`);
    const ledger = new Ledger(conn, ch, prefix);
    await ch.consume(queue, (m) => {
      if (!m) return;
      ch.ack(m);
      const topic = m.fields.routingKey.slice(prefix.length + 1);
      if (topic.startsWith('pungi.')) return;
      const headers = (m.properties.headers ?? {}) as Record<string, unknown>;
      ledger.deliveries.push({
        routingKey: m.fields.routingKey,
        topic,
        messageId: String(m.properties.messageId),
        severity: Number(headers.fedora_messaging_severity ?? 0),
        body: JSON.parse(m.content.toString('utf8')) as Record<string, unknown>,
        redelivered: m.fields.redelivered,
      });
    });
    return ledger;
  }

  /** Distinct messages (first copy of each id), in arrival order. */
  messages(filter: (d: Delivery) => boolean = () => true): Delivery[] {
    const seen = new Set<string>();
    const out: Delivery[] = [];
    for (const d of this.deliveries)
      if (!seen.has(d.messageId) && filter(d)) {
        seen.add(d.messageId);
        out.push(d);
      }
    return out;
  }

  /** Copies beyond the first, per message id that has them. */
  extraCopies(): Map<string, number> {
    const n = new Map<string, number>();
    for (const d of this.deliveries) n.set(d.messageId, (n.get(d.messageId) ?? 0) + 1);
    return new Map([...n].filter(([, c]) => c > 1).map(([id, c]) => [id, c - 1]));
  }

  /** Announcements sent under more than one message id (what consumers cannot deduplicate). */
  duplicates(): { topic: string; body: Record<string, unknown>; ids: string[] }[] {
    const byContent = new Map<string, { topic: string; body: Record<string, unknown>; ids: Set<string> }>();
    for (const d of this.deliveries) {
      const key = `${d.topic}\0${stableJson(d.body)}`;
      const entry = byContent.get(key) ?? { topic: d.topic, body: d.body, ids: new Set<string>() };
      entry.ids.add(d.messageId);
      byContent.set(key, entry);
    }
    return [...byContent.values()]
      .filter((e) => e.ids.size > 1)
      .map((e) => ({ topic: e.topic, body: e.body, ids: [...e.ids] }));
  }

  async waitFor(pred: (l: Ledger) => boolean, timeoutMs: number, what: string): Promise<void> {
    const end = Date.now() + timeoutMs;
    while (!pred(this)) {
      if (Date.now() > end)
        throw new Error(
          `timed out after ${timeoutMs} ms waiting for ${what}; ${this.messages().length} messages so far: ${this.messages()
            .map((m) => m.topic)
            .join(', ')}`,
        );
      await sleep(50);
    }
  }

  async close(): Promise<void> {
    await this.ch.close().catch(() => undefined);
    await this.conn.close().catch(() => undefined);
  }
}

/** JSON with sorted keys, so equal objects compare equal as strings. */
export function stableJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(stableJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${stableJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** An announcement with the identifiers AWS invents replaced, to compare runs with each other. */
export function normalized(d: Pick<Delivery, 'topic' | 'body'>): string {
  return `${d.topic} ${stableJson(d.body).replace(/\b(ami|snap)-[0-9a-f]+/g, '$1-*')}`;
}
