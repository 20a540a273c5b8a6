/**
 * Run the Google Cloud emulator on its own: `node --import tsx tools/emulator/gcp/main.ts [--project ID]
 * [--compute-port N] [--storage-port N] [--pending-ms N] [--seed N] [--bucket NAME]...`. Prints one JSON
 * line, the GcpEndpoints (project, key file, endpoints, control endpoint), when ready; drive it with
 * GcpEmulatorClient; SIGINT/SIGTERM stop it and its Firebase Storage emulator.
 */
import { parseArgs } from 'node:util';
import { announce, intOption, stopOnSignals } from '../standalone.js';
import { startGcpEmulator } from './index.js';
import type { GcpEndpoints } from './types.js';

const { values } = parseArgs({
  options: {
    project: { type: 'string' },
    'compute-port': { type: 'string' },
    'storage-port': { type: 'string' },
    'pending-ms': { type: 'string' },
    seed: { type: 'string' },
    bucket: { type: 'string', multiple: true },
  },
});

const emulator = await startGcpEmulator({
  project: values.project,
  computePort: intOption('compute-port', values['compute-port']),
  storagePort: intOption('storage-port', values['storage-port']),
  pendingMs: intOption('pending-ms', values['pending-ms']),
  seed: intOption('seed', values.seed),
});
for (const bucket of values.bucket ?? []) emulator.createBucket(bucket);
const endpoints: GcpEndpoints = {
  project: emulator.project,
  keyFilePath: emulator.keyFilePath,
  clientEmail: emulator.clientEmail,
  endpoints: emulator.endpoints,
  controlEndpoint: emulator.controlEndpoint,
};
announce(endpoints);
stopOnSignals('gcp emulator', () => emulator.stop());
