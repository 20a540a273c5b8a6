import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { z } from 'zod';
import { PlumeError } from '../../shared/errors.js';

/*
 * fedora-messaging's config.toml, read the way fedora_messaging/config.py reads it: the same keys, the same
 * defaults, top-level keys case-insensitive, and a table given in the file replacing the default table
 * whole (no deep merge), so a file written for a Fedora deployment means the same thing here.
 */

/** Where fedora-messaging looks when neither a path nor FEDORA_MESSAGING_CONF is given. */
export const DEFAULT_CONFIG_PATH = '/etc/fedora-messaging/config.toml';
export const CONFIG_ENV_VAR = 'FEDORA_MESSAGING_CONF';

export type AmqpArguments = Record<string, unknown>;

export interface QueueConfig {
  durable: boolean;
  auto_delete: boolean;
  exclusive: boolean;
  arguments: AmqpArguments;
  /** Per-queue override of passive_declares (fedora-messaging's QueueConfig allows it). */
  passive?: boolean;
}

export interface BindingConfig {
  /** "" is the server-named default queue. */
  queue: string;
  exchange: string;
  routing_keys: string[];
  arguments?: AmqpArguments;
}

export interface ExchangeConfig {
  type: string;
  durable: boolean;
  auto_delete: boolean;
  arguments: AmqpArguments;
  passive?: boolean;
}

export interface TlsConfig {
  ca_cert: string | null;
  certfile: string | null;
  keyfile: string | null;
}

export interface QosConfig {
  prefetch_count: number;
  prefetch_size: number;
}

/**
 * What RabbitMQ shows about a connection. fedora-messaging passes the table to pika as it is, and Fedora's
 * own files list people there (`app_contacts_email = ["..."]`), so a list of strings is as good as a string.
 */
export type ClientProperties = Record<string, string | number | boolean | string[]>;

export interface BusConfig {
  amqp_url: string;
  client_properties: ClientProperties;
  publish_exchange: string;
  topic_prefix: string;
  publish_priority: number | null;
  passive_declares: boolean;
  exchanges: Record<string, ExchangeConfig>;
  queues: Record<string, QueueConfig>;
  bindings: BindingConfig[];
  qos: QosConfig;
  callback: string | null;
  monitoring: { address?: string; port?: number };
  /** The application's own settings; it validates them itself. */
  consumer_config: Record<string, unknown>;
  tls: TlsConfig;
  /** Accepted so that Fedora's files load; joystick logs with pino and ignores it. */
  log_config: Record<string, unknown>;
}

/** The client properties fedora-messaging reserves for the library itself; a file may not change them. */
const RESERVED_CLIENT_PROPERTIES = ['product', 'information', 'version'] as const;

function amqplibVersion(): string {
  try {
    const entry = createRequire(import.meta.url).resolve('amqplib');
    const pkg = JSON.parse(readFileSync(join(dirname(entry), 'package.json'), 'utf8')) as {
      version?: string;
    };
    return pkg.version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

const LIBRARY_CLIENT_PROPERTIES = {
  product: 'joystick, fedora-messaging compatible',
  information: 'https://fedora-messaging.readthedocs.io/en/stable/',
  version: `joystick with amqplib-${amqplibVersion()}`,
} as const;

/** fedora-messaging's DEFAULTS, except that the library identifies itself as joystick. */
export function defaultBusConfig(): BusConfig {
  return {
    amqp_url: 'amqp://?connection_attempts=3&retry_delay=5',
    client_properties: { app: 'Unknown', ...LIBRARY_CLIENT_PROPERTIES },
    publish_exchange: 'amq.topic',
    topic_prefix: '',
    publish_priority: null,
    passive_declares: false,
    exchanges: { 'amq.topic': { type: 'topic', durable: true, auto_delete: false, arguments: {} } },
    queues: { '': { durable: false, auto_delete: true, exclusive: true, arguments: {} } },
    bindings: [{ queue: '', exchange: 'amq.topic', routing_keys: ['#'] }],
    qos: { prefetch_size: 0, prefetch_count: 10 },
    callback: null,
    monitoring: {},
    consumer_config: {},
    tls: { ca_cert: null, certfile: null, keyfile: null },
    log_config: {},
  };
}

const table = z.record(z.string(), z.unknown());

const amqpUrl = z.string().superRefine((value, ctx) => {
  let protocol: string;
  try {
    protocol = new URL(value).protocol;
  } catch {
    // unparseable, so its password cannot be masked: do not echo it
    ctx.addIssue({
      code: 'custom',
      message: 'expected an amqp:// or amqps:// URL, got a string that is not a URL',
    });
    return;
  }
  if (protocol !== 'amqp:' && protocol !== 'amqps:') {
    ctx.addIssue({ code: 'custom', message: `expected an amqp:// or amqps:// URL, got a ${protocol}// URL` });
  }
});

const queueSchema = z.strictObject({
  durable: z.boolean(),
  auto_delete: z.boolean(),
  exclusive: z.boolean(),
  arguments: table,
  passive: z.boolean().optional(),
});

const bindingSchema = z.strictObject({
  queue: z.string().default(''),
  exchange: z.string(),
  routing_keys: z.array(z.string()),
  arguments: table.optional(),
});

const exchangeSchema = z.strictObject({
  type: z.string(),
  durable: z.boolean().default(true),
  auto_delete: z.boolean().default(false),
  arguments: table.default({}),
  passive: z.boolean().optional(),
});

const nonNegativeInt = z.int().min(0);

/** What the file may say: every key optional (defaults fill the rest), nothing unknown. */
const fileSchema = z.strictObject({
  amqp_url: amqpUrl.optional(),
  client_properties: z
    .record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.array(z.string())]))
    .optional(),
  publish_exchange: z.string().optional(),
  topic_prefix: z.string().optional(),
  publish_priority: z.int().min(0).max(255).optional(),
  passive_declares: z.boolean().optional(),
  exchanges: z.record(z.string(), exchangeSchema).optional(),
  queues: z.record(z.string(), queueSchema).optional(),
  bindings: z.array(bindingSchema).optional(),
  qos: z
    .strictObject({ prefetch_count: nonNegativeInt.optional(), prefetch_size: nonNegativeInt.optional() })
    .optional(),
  callback: z.string().optional(),
  monitoring: z
    .strictObject({ address: z.string().optional(), port: z.int().min(1).max(65535).optional() })
    .optional(),
  consumer_config: table.optional(),
  tls: z
    .strictObject({
      ca_cert: z.string().optional(),
      certfile: z.string().optional(),
      keyfile: z.string().optional(),
    })
    .optional(),
  log_config: table.optional(),
});

type FileConfig = z.infer<typeof fileSchema>;

const VALID_KEYS = Object.keys(fileSchema.shape);

function configError(source: string, problems: string[]): PlumeError {
  return new PlumeError(
    'usage',
    `invalid fedora-messaging configuration ${source}: ${problems.join('; ')}`,
    "fix the file (the keys and their meaning are fedora-messaging's: https://fedora-messaging.readthedocs.io/en/stable/user-guide/configuration.html)",
  );
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else {
      const key = String(part);
      const shown = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
      out += out === '' ? shown : `.${shown}`;
    }
  }
  return out || '(top level)';
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (value instanceof Date) return 'a date';
  switch (typeof value) {
    case 'string':
      return `the string ${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value)}`;
    case 'number':
    case 'bigint':
      return `the number ${String(value)}`;
    case 'boolean':
      return `the boolean ${String(value)}`;
    case 'object':
      return 'a table';
    default:
      return typeof value;
  }
}

const EXPECTED: Record<string, string> = {
  boolean: 'true or false',
  string: 'a string',
  int: 'an integer',
  // every number in the file format is an integer; zod reports z.int() on a non-number as 'number'
  number: 'an integer',
  array: 'an array',
  object: 'a table',
  record: 'a table',
};

function issueText(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  const input = (issue as { input?: unknown }).input;
  switch (issue.code) {
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      if (input === undefined) return `${where}: missing, expected ${expected}`;
      // the amqp_url may carry a password: never echo it
      const got = issue.path[0] === 'amqp_url' ? 'something else' : describe(input);
      return `${where}: expected ${expected}, got ${got}`;
    }
    case 'unrecognized_keys':
      return `${where}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => JSON.stringify(k)).join(', ')}`;
    case 'too_small':
      return `${where}: must be at least ${String(issue.minimum)}, got ${describe(input)}`;
    case 'too_big':
      return `${where}: must be at most ${String(issue.maximum)}, got ${describe(input)}`;
    case 'invalid_union': {
      if (Array.isArray(input)) {
        const odd: unknown = (input as unknown[]).find((v) => typeof v !== 'string');
        return `${where}: expected a list of strings, got a list holding ${describe(odd)}`;
      }
      return `${where}: expected a string, a list of strings, a number or a boolean, got ${describe(input)}`;
    }
    default:
      return `${where}: ${issue.message}`;
  }
}

/** Checks zod cannot express per key: the ones fedora-messaging's _validate makes, and a half-set [tls]. */
function crossChecks(file: FileConfig): string[] {
  const problems: string[] = [];
  for (const key of RESERVED_CLIENT_PROPERTIES) {
    const value = file.client_properties?.[key];
    if (value !== undefined && value !== LIBRARY_CLIENT_PROPERTIES[key]) {
      problems.push(`client_properties.${key}: is reserved for the library, remove it (set "app" instead)`);
    }
  }
  if (file.monitoring && Object.keys(file.monitoring).length > 0 && file.monitoring.port === undefined) {
    problems.push('monitoring.port: missing; the port must be defined in [monitoring] to activate it');
  }
  const tls = file.tls;
  if (tls && (tls.certfile === undefined) !== (tls.keyfile === undefined)) {
    const missing = tls.certfile === undefined ? 'certfile' : 'keyfile';
    const present = missing === 'certfile' ? 'keyfile' : 'certfile';
    problems.push(
      `tls.${missing}: missing; a client certificate needs both certfile and keyfile (${present} is set)`,
    );
  }
  return problems;
}

/** Validate an already-parsed TOML document and merge it over the defaults. `source` names it in errors. */
export function validateBusConfig(raw: unknown, source: string): BusConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw configError(source, [`expected a TOML table at the top level, got ${describe(raw)}`]);
  }
  // fedora-messaging lowercases top-level keys, so AMQP_URL works there and must work here.
  const lowered: Record<string, unknown> = {};
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(raw)) {
    const k = key.toLowerCase();
    if (!VALID_KEYS.includes(k)) unknown.push(key);
    lowered[k] = value;
  }
  if (unknown.length > 0) {
    throw configError(source, [
      `unknown configuration key${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => JSON.stringify(k)).join(', ')}; valid keys are ${VALID_KEYS.join(', ')}`,
    ]);
  }
  const parsed = fileSchema.safeParse(lowered, { reportInput: true });
  if (!parsed.success) throw configError(source, parsed.error.issues.map(issueText));
  const file = parsed.data;
  const cross = crossChecks(file);
  if (cross.length > 0) throw configError(source, cross);

  const config = defaultBusConfig();
  if (file.amqp_url !== undefined) config.amqp_url = file.amqp_url;
  if (file.client_properties !== undefined) {
    // fedora-messaging replaces the table, then puts the reserved keys back.
    config.client_properties = { ...file.client_properties, ...LIBRARY_CLIENT_PROPERTIES };
  }
  if (file.publish_exchange !== undefined) config.publish_exchange = file.publish_exchange;
  if (file.topic_prefix !== undefined) config.topic_prefix = file.topic_prefix;
  if (file.publish_priority !== undefined) config.publish_priority = file.publish_priority;
  if (file.passive_declares !== undefined) config.passive_declares = file.passive_declares;
  if (file.exchanges !== undefined) config.exchanges = file.exchanges;
  if (file.queues !== undefined) config.queues = file.queues;
  if (file.bindings !== undefined) config.bindings = file.bindings;
  // fedora-messaging would fail later with a KeyError on a half-filled [qos] or [tls]; fill them instead.
  if (file.qos !== undefined) config.qos = { ...config.qos, ...file.qos };
  if (file.callback !== undefined) config.callback = file.callback;
  if (file.monitoring !== undefined) {
    config.monitoring = Object.keys(file.monitoring).length > 0 ? { address: '', ...file.monitoring } : {};
  }
  if (file.consumer_config !== undefined) config.consumer_config = file.consumer_config;
  if (file.tls !== undefined) {
    config.tls = {
      ca_cert: file.tls.ca_cert ?? null,
      certfile: file.tls.certfile ?? null,
      keyfile: file.tls.keyfile ?? null,
    };
  }
  if (file.log_config !== undefined) config.log_config = file.log_config;
  return config;
}

/** Parse and validate the text of a config.toml. */
export function parseBusConfig(text: string, source: string): BusConfig {
  let raw: unknown;
  try {
    raw = parseToml(text);
  } catch (err) {
    const detail = err instanceof Error ? err.message.split('\n')[0] : String(err);
    const at =
      typeof err === 'object' && err !== null && 'line' in err && 'column' in err
        ? ` at line ${String(err.line)}, column ${String(err.column)}`
        : '';
    throw new PlumeError('usage', `cannot parse ${source}${at}: ${detail}`, 'the file must be valid TOML', {
      cause: err,
    });
  }
  return validateBusConfig(raw, source);
}

export interface LoadBusConfigOptions {
  /** An explicit file; it must exist. */
  path?: string;
  /** Where FEDORA_MESSAGING_CONF is looked up; process.env by default. */
  env?: NodeJS.ProcessEnv;
}

export interface LoadedBusConfig {
  config: BusConfig;
  /** The file read, or null when none existed and the defaults apply. */
  path: string | null;
}

/**
 * Load the configuration as fedora-messaging does: the given path, else $FEDORA_MESSAGING_CONF, else
 * /etc/fedora-messaging/config.toml. Only the last may be absent (then the defaults apply, as in
 * fedora-messaging); a path someone named explicitly and that does not exist is an error, as it is for
 * fedora-messaging's command line, because silently consuming with defaults would hide the typo.
 */
export async function loadBusConfig(opts: LoadBusConfigOptions = {}): Promise<LoadedBusConfig> {
  const env = opts.env ?? process.env;
  const fromEnv = env[CONFIG_ENV_VAR];
  const named = opts.path ?? (fromEnv !== undefined && fromEnv !== '' ? fromEnv : undefined);
  const path = named ?? DEFAULT_CONFIG_PATH;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (named === undefined && code === 'ENOENT') return { config: defaultBusConfig(), path: null };
    const how = opts.path !== undefined ? 'given' : `named by ${CONFIG_ENV_VAR}`;
    throw new PlumeError(
      'usage',
      `cannot read the fedora-messaging configuration ${path} (${how}): ${code ?? String(err)}`,
      'check the path, or unset it to use /etc/fedora-messaging/config.toml',
      { cause: err },
    );
  }
  return { config: parseBusConfig(text, path), path };
}
