import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { PlumeError } from '../../shared/errors.js';
import { BASE_SCHEMA, formatSentAt, INFO, isSeverity, type Message } from './message.js';

/*
 * The one-JSON-object-per-line format of fedora-messaging's message.dumps/loads (SERIALIZED_MESSAGE_SCHEMA:
 * topic and body required; headers, id, queue, priority optional), which its `publish` and `record`
 * commands read and write and which datagrepper's as_fedora_message_dict serves. Used for replay.
 */

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * JSON the way Python's json.dumps(sort_keys=True, ensure_ascii=False) writes it (", " and ": "
 * separators, keys sorted at every level), so lines diff cleanly against fedora-messaging's own.
 */
function pythonJson(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  if (Array.isArray(value)) return `[${value.map(pythonJson).join(', ')}]`;
  if (isObject(value)) {
    const keys = Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}: ${pythonJson(value[k])}`).join(', ')}}`;
  }
  if (typeof value === 'number' && !Number.isFinite(value))
    throw new TypeError(`${value} cannot be written as JSON`);
  return JSON.stringify(value);
}

/** One line (without the newline) in fedora-messaging's dump format. */
export function toDumpLine(message: Message): string {
  return pythonJson({
    body: message.body,
    headers: message.headers,
    id: message.id,
    priority: message.priority ?? 0,
    queue: message.queue ?? null,
    topic: message.topic,
  });
}

/** Why a dump line is unusable; null when it is fine. Mirrors SERIALIZED_MESSAGE_SCHEMA. */
function dumpProblem(value: unknown): string | null {
  if (!isObject(value)) return 'expected a JSON object';
  if (typeof value.topic !== 'string')
    return value.topic === undefined ? 'no "topic"' : '"topic" is not a string';
  if (!isObject(value.body)) return value.body === undefined ? 'no "body"' : '"body" is not a JSON object';
  if (value.id !== undefined && typeof value.id !== 'string') return '"id" is not a string';
  if (value.queue !== undefined && value.queue !== null && typeof value.queue !== 'string') {
    return '"queue" is not a string or null';
  }
  const p = value.priority;
  if (
    p !== undefined &&
    p !== null &&
    !(typeof p === 'number' && Number.isInteger(p) && p >= 0 && p <= 255)
  ) {
    return '"priority" is not an integer from 0 to 255';
  }
  const headers = value.headers;
  if (headers === undefined) return null;
  if (!isObject(headers)) return '"headers" is not a JSON object';
  const severity = headers.fedora_messaging_severity;
  if (severity !== undefined && !isSeverity(severity))
    return 'headers.fedora_messaging_severity is not 10, 20, 30 or 40';
  for (const key of ['fedora_messaging_schema', 'fedora_messaging_schema_package', 'sent-at']) {
    if (headers[key] !== undefined && typeof headers[key] !== 'string')
      return `headers.${key} is not a string`;
  }
  return null;
}

export interface DumpLocation {
  /** The file, for error messages. */
  source?: string;
  line?: number;
}

function dumpError(reason: string, where: DumpLocation): PlumeError {
  const at = where.source
    ? `${where.source}${where.line ? `:${where.line}` : ''}`
    : where.line
      ? `line ${where.line}`
      : 'dump line';
  return new PlumeError(
    'input',
    `${at}: ${reason}`,
    'each line must be one message as fedora-messaging dumps it',
  );
}

/**
 * Read one dump line into a Message, filling what fedora-messaging's load_message fills: a fresh id when
 * there is none, base.message and INFO when the headers say nothing, sent-at of now, priority mirrored.
 */
export function parseDumpLine(line: string, where: DumpLocation = {}): Message {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    throw dumpError(`not JSON (${err instanceof Error ? err.message : String(err)})`, where);
  }
  const problem = dumpProblem(value);
  if (problem !== null) throw dumpError(problem, where);
  const dumped = value as {
    topic: string;
    body: Record<string, unknown>;
    headers?: Record<string, unknown>;
    id?: string;
    queue?: string | null;
    priority?: number | null;
  };
  const headers: Record<string, unknown> = { ...(dumped.headers ?? {}) };
  const schema =
    typeof headers.fedora_messaging_schema === 'string' ? headers.fedora_messaging_schema : BASE_SCHEMA;
  const severity = isSeverity(headers.fedora_messaging_severity) ? headers.fedora_messaging_severity : INFO;
  headers.fedora_messaging_schema = schema;
  headers.fedora_messaging_severity = severity;
  if (headers['sent-at'] === undefined) headers['sent-at'] = formatSentAt(new Date());
  headers.priority = dumped.priority ?? 0;
  const message: Message = {
    id: dumped.id ?? randomUUID(),
    topic: dumped.topic,
    headers,
    body: dumped.body,
    severity,
    schema,
    queue: dumped.queue ?? null,
  };
  if (dumped.priority !== undefined && dumped.priority !== null) message.priority = dumped.priority;
  return message;
}

/** Several messages, one line each, newline-terminated: fedora-messaging's dumps(). */
export function toDump(messages: Iterable<Message>): string {
  let out = '';
  for (const m of messages) out += `${toDumpLine(m)}\n`;
  return out;
}

/** Parse a whole dump held in memory; blank lines are skipped, errors carry the line number. */
export function parseDump(text: string, source?: string): Message[] {
  const messages: Message[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() !== '') messages.push(parseDumpLine(line, { source, line: i + 1 }));
  });
  return messages;
}

/** Stream a dump file, so a long datagrepper export needs no more memory than one line. */
export async function* iterateDumpFile(path: string): AsyncGenerator<{ line: number; message: Message }> {
  const lines = createInterface({ input: createReadStream(path, { encoding: 'utf8' }), crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const line of lines) {
      n++;
      if (line.trim() === '') continue;
      yield { line: n, message: parseDumpLine(line, { source: path, line: n }) };
    }
  } catch (err) {
    if (err instanceof PlumeError) throw err;
    throw new PlumeError(
      'input',
      `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      'check the path',
      {
        cause: err,
      },
    );
  } finally {
    lines.close();
  }
}

export async function readDumpFile(path: string): Promise<Message[]> {
  const messages: Message[] = [];
  for await (const { message } of iterateDumpFile(path)) messages.push(message);
  return messages;
}
