/**
 * Run the Azure emulator on its own: `node --import tsx tools/emulator/azure/main.ts [--blob-port N]
 * [--arm-port N] [--replication-ms N] [--retry-after N] [--seed N] [--location REGION]`. Prints one JSON
 * line, the AzureEndpoints (blob endpoint and key, ARM endpoint, credentials, CA certificate, control
 * endpoint), when ready; drive it with AzureEmulatorClient; SIGINT/SIGTERM stop it and its Azurite.
 */
import { parseArgs } from 'node:util';
import { announce, intOption, stopOnSignals } from '../standalone.js';
import { startAzureEmulator } from './index.js';
import type { AzureEndpoints } from './types.js';

const { values } = parseArgs({
  options: {
    'blob-port': { type: 'string' },
    'arm-port': { type: 'string' },
    'replication-ms': { type: 'string' },
    'retry-after': { type: 'string' },
    seed: { type: 'string' },
    location: { type: 'string' },
  },
});

const emulator = await startAzureEmulator({
  blobPort: intOption('blob-port', values['blob-port']),
  armPort: intOption('arm-port', values['arm-port']),
  replicationMs: intOption('replication-ms', values['replication-ms']),
  retryAfterSeconds: intOption('retry-after', values['retry-after']),
  seed: intOption('seed', values.seed),
  location: values.location,
});
const endpoints: AzureEndpoints = {
  blob: emulator.blob,
  arm: emulator.arm,
  controlEndpoint: emulator.controlEndpoint,
};
announce(endpoints);
stopOnSignals('azure emulator', () => emulator.stop());
