import { PlumeError } from '../../shared/errors.js';

/*
 * What a message handler throws to steer acknowledgement. The names and meanings are fedora-messaging's
 * (fedora_messaging/exceptions.py), so a consumer written against either library reads the same.
 */

/** The message cannot be handled now: return it to the queue so it is delivered again later. */
export class Nack extends Error {
  constructor(message = 'handler asked for the message to be requeued', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Nack';
  }
}

/** The message will never be handled: reject it without requeueing (the broker drops or dead-letters it). */
export class Drop extends Error {
  constructor(message = 'handler asked for the message to be dropped', options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'Drop';
  }
}

export interface HaltOptions {
  /** The process exit status the caller should use; fedora-messaging's default is 0. */
  exitCode?: number;
  /** Why the consumer stops, for the person reading the log. */
  reason?: string;
  /**
   * Whether the message being handled goes back to the queue. fedora-messaging defaults to false and then
   * acks the message; joystick defaults to true so that halting on a fatal condition never loses the message
   * that revealed it. Pass `requeue: false` to get fedora-messaging's behaviour (the message is acked).
   */
  requeue?: boolean;
}

/** Stop consuming: the consumer finishes what is in flight, closes, and reports the exit to its caller. */
export class HaltConsumer extends Error {
  readonly exitCode: number;
  readonly reason: string | undefined;
  readonly requeue: boolean;

  constructor(opts: HaltOptions = {}, options?: { cause?: unknown }) {
    super(opts.reason ?? 'handler asked the consumer to halt', options);
    this.name = 'HaltConsumer';
    this.exitCode = opts.exitCode ?? 0;
    this.reason = opts.reason;
    this.requeue = opts.requeue ?? true;
  }
}

/** A delivery that is not a fedora-messaging message we can read; it is dropped, never retried. */
export class InvalidMessage extends PlumeError {
  readonly reason: string;

  constructor(reason: string, messageId?: string) {
    super(
      'input',
      messageId ? `invalid message ${messageId}: ${reason}` : `invalid message: ${reason}`,
      'the publisher sent something fedora-messaging cannot read either; it was dropped',
    );
    this.name = 'InvalidMessage';
    this.reason = reason;
  }
}

/** A publish that the broker never confirmed, after every retry. Nothing was silently dropped. */
export class PublishFailed extends PlumeError {
  readonly attempts: number;

  constructor(message: string, hint: string, attempts: number, cause?: unknown) {
    super('provider', message, hint, { cause });
    this.name = 'PublishFailed';
    this.attempts = attempts;
  }
}

/** The broker refused to declare a queue, exchange or binding: permissions or a clash with what exists. */
export class BadDeclaration extends PlumeError {
  readonly objectType: 'exchange' | 'queue' | 'binding';
  readonly code: number | undefined;

  constructor(objectType: 'exchange' | 'queue' | 'binding', what: string, cause: unknown) {
    const code = amqpErrorCode(cause);
    const reason = cause instanceof Error ? cause.message : String(cause);
    super(
      code === 403 ? 'credentials' : 'usage',
      `cannot declare ${objectType} ${what}: ${reason}`,
      code === 403
        ? 'the broker user lacks permission; ask the broker administrators, or set passive_declares'
        : code === 404
          ? 'it does not exist on the broker; create it, or turn passive_declares off so joystick creates it'
          : 'it exists with different settings; make the [queues]/[[bindings]] settings match the broker',
      { cause },
    );
    this.name = 'BadDeclaration';
    this.objectType = objectType;
    this.code = code;
  }
}

/** The broker cancelled our consumer (the queue was deleted, or its node went away). */
export class ConsumerCanceled extends PlumeError {
  constructor(queue: string) {
    super(
      'provider',
      `the broker cancelled the consumer of queue ${queue}`,
      'the queue was probably deleted; check with the broker administrators',
    );
    this.name = 'ConsumerCanceled';
  }
}

/** The AMQP reply code carried by an amqplib error (403 access refused, 404 not found, ...), if any. */
export function amqpErrorCode(err: unknown): number | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err) {
    const code = err.code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}
