import { createRequire } from 'node:module';
import { startChildInTempDir, type ChildServer } from '../child-server.js';
import { AZURITE_MEMORY_LIMIT_MB, AZURITE_START_TIMEOUT_MS } from './config.js';

/**
 * Azurite's blob service alone, as a child process on a free 127.0.0.1 port: in-memory persistence (nothing
 * written to disk), no telemetry, no access log. It runs in an empty temporary directory, removed at stop,
 * so whatever it might write lands nowhere else.
 */
export async function startAzurite(): Promise<ChildServer> {
  const main = createRequire(import.meta.url).resolve('azurite/dist/src/blob/main.js');
  return startChildInTempDir('plume-azurite-', (cwd) => ({
    name: 'azurite-blob',
    command: process.execPath,
    args: (port) => [
      main,
      '--blobHost',
      '127.0.0.1',
      '--blobPort',
      String(port),
      '--inMemoryPersistence',
      '--extentMemoryLimit',
      String(AZURITE_MEMORY_LIMIT_MB),
      '--disableTelemetry',
      '--silent',
      // Accounts come from the first path segment, never from the host name.
      '--disableProductStyleUrl',
    ],
    cwd,
    timeoutMs: AZURITE_START_TIMEOUT_MS,
    // Any HTTP answer means it listens: an anonymous request is refused with 403, which is fine here.
    ready: async (endpoint) => {
      const res = await fetch(`${endpoint}/devstoreaccount1?comp=list`, {
        signal: AbortSignal.timeout(2000),
      });
      await res.arrayBuffer();
      return res.status > 0;
    },
  }));
}
