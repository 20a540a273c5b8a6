/**
 * Errors that reach a human. Every failure plume or joystick reports says what went wrong and what to do
 * about it, so `message` is the fact and `hint` the next step; the CLI prints both on one line.
 */
export type ErrorKind =
  | 'usage' // bad flags, unknown system/channel/arch, bad config
  | 'input' // the image or its metadata is wrong: checksum, truncated stream, missing image
  | 'source' // the image or metadata could not be fetched
  | 'credentials' // no or bad cloud credentials, access denied
  | 'provider' // the cloud refused or failed
  | 'partial' // some regions failed, the rest are published
  | 'verify' // verification found missing or wrong images
  | 'busy' // another run holds the same release (or prune): exit 1, run again once it ended
  | 'internal';

export class PlumeError extends Error {
  readonly kind: ErrorKind;
  readonly hint: string | undefined;
  /** The same request may succeed later (the network or a server failed); false when the input is wrong. */
  readonly retryable: boolean;

  constructor(
    kind: ErrorKind,
    message: string,
    hint?: string,
    options?: { cause?: unknown; retryable?: boolean },
  ) {
    super(message, options);
    this.name = 'PlumeError';
    this.kind = kind;
    this.hint = hint;
    this.retryable = options?.retryable ?? (kind === 'provider' || kind === 'internal' || kind === 'busy');
  }

  /** The one line a person reads: what went wrong, then what to do. */
  oneLine(): string {
    return this.hint ? `${this.message}: ${this.hint}` : this.message;
  }
}

/** Process exit statuses, stable so scripts and joystick can tell outcomes apart. */
export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 2,
  partial: 3,
  verify: 4,
} as const;

export function exitCodeFor(err: unknown): number {
  if (err instanceof PlumeError) {
    if (err.kind === 'usage') return EXIT.usage;
    if (err.kind === 'partial') return EXIT.partial;
    if (err.kind === 'verify') return EXIT.verify;
  }
  return EXIT.failure;
}

export function errorMessage(err: unknown): string {
  if (err instanceof PlumeError) return err.oneLine();
  if (err instanceof Error) return err.message;
  return String(err);
}
