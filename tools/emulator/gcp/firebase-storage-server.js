// The Firebase CLI's Cloud Storage emulator, its Cloud Storage JSON API only, as a process of its own:
// `node firebase-storage-server.js PORT PROJECT`. Started by firebase.ts (see there for why not through
// `firebase emulators:start`). Everything but the rules runtime is the CLI's own code: the express app,
// the JSON API routes, the storage layer, uploads, metadata, MD5 and CRC32C.
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const { StorageEmulator } = require('firebase-tools/lib/emulator/storage/index.js');
const { createApp } = require('firebase-tools/lib/emulator/storage/server.js');
const { EmulatorRegistry } = require('firebase-tools/lib/emulator/registry.js');
const { createDestroyer } = require('firebase-tools/lib/utils.js');

const [port, projectId] = [Number(process.argv[2]), process.argv[3]];
if (!Number.isInteger(port) || !projectId) {
  console.error('usage: firebase-storage-server.js PORT PROJECT');
  process.exit(2);
}

/**
 * StorageEmulator.start, less the security-rules runtime: that is a Java program the CLI downloads at
 * start, and it only judges requests to the Firebase API. The Cloud Storage JSON API is served through the
 * emulator's admin storage layer, which never consults rules.
 */
class JsonApiStorageEmulator extends StorageEmulator {
  async start() {
    const { host } = this.getInfo();
    this._app = await createApp(this.args.projectId, this);
    const server = this._app.listen(this.getInfo().port, host);
    this.destroyServer = createDestroyer(server);
  }

  async stop() {
    await this._persistence.deleteAll();
    if (this.destroyServer) await this.destroyServer();
  }
}

const emulator = new JsonApiStorageEmulator({ projectId, host: '127.0.0.1', port, auto_download: false });
// The registry is where the API's routes read the emulator's own address (object selfLinks, mediaLinks).
await EmulatorRegistry.start(emulator);
console.log(`firebase storage emulator (JSON API) on 127.0.0.1:${port} for ${projectId}`);

const stop = () =>
  emulator.stop().then(
    () => process.exit(0),
    () => process.exit(1),
  );
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
