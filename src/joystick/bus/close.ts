import type { EventEmitter } from 'node:events';

/**
 * Close an amqplib channel or connection and resolve however it ends. amqplib's close() waits for the
 * broker's close-ok, which never comes if the connection dies first; the 'close' event and a time limit
 * cover that, so a shutdown or a re-setup is never stuck on a dead socket.
 */
export async function closeQuietly(
  target: EventEmitter & { close(): Promise<void> },
  timeoutMs = 5_000,
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  let onClose: (() => void) | undefined;
  const closed = new Promise<void>((resolve) => {
    onClose = resolve;
    target.once('close', onClose);
    timer = setTimeout(resolve, timeoutMs);
  });
  try {
    await Promise.race([target.close().catch(() => undefined), closed]);
  } finally {
    clearTimeout(timer);
    if (onClose) target.removeListener('close', onClose);
  }
}
