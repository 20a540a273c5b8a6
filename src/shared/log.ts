import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Keys that may carry secrets anywhere in a log object. pino replaces them before a line is written,
 * so a credential passed by mistake in a context object still never reaches a log.
 */
const REDACT = [
  '*.secretAccessKey',
  '*.sessionToken',
  '*.password',
  '*.authorization',
  '*.Authorization',
  'secretAccessKey',
  'sessionToken',
  'password',
  'credentials',
  '*.credentials',
  'amqp_url',
  '*.amqp_url',
  'headers.authorization',
];

export interface LogOptions {
  level?: string;
  /** Where JSON lines go; stderr by default so stdout stays for machine-readable output. */
  destination?: NodeJS.WritableStream | number;
  name?: string;
}

export function createLogger(opts: LogOptions = {}): Logger {
  const level = opts.level ?? process.env.PLUME_LOG_LEVEL ?? process.env.LOG_LEVEL ?? 'info';
  const dest = opts.destination ?? 2;
  const stream = typeof dest === 'number' ? pino.destination({ dest, sync: true }) : dest;
  return pino(
    {
      level,
      name: opts.name,
      base: undefined,
      redact: { paths: REDACT, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
    },
    stream,
  );
}

/** A logger that writes nothing: for library callers that do not care, and for quiet tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** Hide the password in a URL (AMQP URLs carry one), for logging. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = 'redacted';
    return u.toString();
  } catch {
    return url;
  }
}
