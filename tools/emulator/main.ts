/**
 * Run the emulator on its own: `node --import tsx tools/emulator/main.ts [--port N] [--block-size N]
 * [--pending-ms N] [--seed N]`. Prints one JSON line `{"endpoint": ..., "motoEndpoint": ...}` when ready;
 * drive it with EmulatorClient; SIGINT/SIGTERM stop it and its moto.
 */
import { parseArgs } from 'node:util';
import { startEmulator } from './index.js';
import { announce, intOption, stopOnSignals } from './standalone.js';

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'block-size': { type: 'string' },
    'pending-ms': { type: 'string' },
    seed: { type: 'string' },
  },
});

const emulator = await startEmulator({
  port: intOption('port', values.port),
  blockSize: intOption('block-size', values['block-size']),
  pendingMs: intOption('pending-ms', values['pending-ms']),
  seed: intOption('seed', values.seed),
});
announce({ endpoint: emulator.endpoint, motoEndpoint: emulator.motoEndpoint });
stopOnSignals('emulator', () => emulator.stop());
