import { fileURLToPath } from 'node:url';
import { startChildInTempDir, type ChildServer } from '../child-server.js';
import { STORAGE_START_TIMEOUT_MS } from './config.js';

const SERVER = fileURLToPath(new URL('./firebase-storage-server.js', import.meta.url));

/**
 * Google's Cloud Storage emulator (the Firebase CLI's, devDependency firebase-tools) as a child process on a
 * free 127.0.0.1 port, that dies with its parent. Not through `firebase emulators:start`: that always starts
 * the Storage emulator's security-rules runtime, a Java 21 program the CLI downloads from Google at first
 * start, and neither Java 21 nor that download is to be had here (nor needed: rules govern the Firebase
 * API, not the Cloud Storage JSON API). firebase-storage-server.js runs the emulator's own server without it.
 * Its blobs go to a private temporary directory (TMPDIR), removed at stop, so emulators side by side never
 * share files; HOME points there too, so nothing the CLI might write lands elsewhere.
 */
export async function startFirebaseStorage(project: string): Promise<ChildServer> {
  return startChildInTempDir('plume-firebase-', (dir) => ({
    name: 'firebase-storage',
    command: process.execPath,
    args: (port) => [SERVER, String(port), project],
    cwd: dir,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: dir,
      TMPDIR: dir,
      XDG_CONFIG_HOME: dir,
      // No update check, no usage reports (the emulator's own tracking also needs IS_FIREBASE_CLI, which only
      // the CLI's entry sets, and an opt-in stored under HOME, which is empty).
      NO_UPDATE_NOTIFIER: '1',
      FIREBASE_CLI_DISABLE_UPDATE_CHECK: 'true',
      CI: 'true',
    },
    timeoutMs: STORAGE_START_TIMEOUT_MS,
    // Ready once it lists a bucket's objects (an empty list: the emulator makes buckets on first use).
    ready: async (endpoint) => {
      const res = await fetch(`${endpoint}/storage/v1/b/${project}-probe/o`, {
        signal: AbortSignal.timeout(2000),
      });
      await res.arrayBuffer();
      return res.status === 200;
    },
  }));
}
