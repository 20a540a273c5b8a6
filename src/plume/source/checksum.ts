import { createHash } from 'node:crypto';
import { PlumeError } from '../../shared/errors.js';

export interface Digest {
  /** Hex digest; valid once the stream has been read to its end. */
  hex(): string;
  bytes: number;
}

/** Pass chunks through while hashing them, so the checksum costs no second read of the image. */
export function hashing(
  input: AsyncIterable<Buffer>,
  algorithm = 'sha256',
): { chunks: AsyncGenerator<Buffer>; digest: Digest } {
  const hash = createHash(algorithm);
  let hex: string | undefined;
  const digest: Digest = {
    bytes: 0,
    hex: () => (hex ??= hash.digest('hex')),
  };
  async function* chunks() {
    for await (const chunk of input) {
      hash.update(chunk);
      digest.bytes += chunk.length;
      yield chunk;
    }
  }
  return { chunks: chunks(), digest };
}

export function verifyDigest(actual: string, expected: string, what: string): void {
  if (actual.toLowerCase() !== expected.toLowerCase())
    throw new PlumeError(
      'input',
      `sha256 mismatch for ${what}: expected ${expected}, got ${actual}`,
      'the image changed or is corrupt; nothing was registered. Check the compose and run again',
    );
}
