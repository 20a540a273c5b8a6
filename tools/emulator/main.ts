/**
 * Run the emulator on its own: `node --import tsx tools/emulator/main.ts [--port N] [--block-size N]
 * [--pending-ms N] [--seed N]`. Prints one JSON line `{"endpoint": ..., "motoEndpoint": ...}` when ready;
 * drive it with EmulatorClient; SIGINT/SIGTERM stop it and its moto.
 */
import { parseArgs } from 'node:util';
import { startEmulator } from './index.js';

function num(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} needs a non-negative integer, got ${value}`);
    process.exit(2);
  }
  return n;
}

const { values } = parseArgs({
  options: {
    port: { type: 'string' },
    'block-size': { type: 'string' },
    'pending-ms': { type: 'string' },
    seed: { type: 'string' },
  },
});

const emulator = await startEmulator({
  port: num('port', values.port),
  blockSize: num('block-size', values['block-size']),
  pendingMs: num('pending-ms', values['pending-ms']),
  seed: num('seed', values.seed),
});
process.stdout.write(
  `${JSON.stringify({ endpoint: emulator.endpoint, motoEndpoint: emulator.motoEndpoint })}\n`,
);

let stopping = false;
const stop = (signal: string) => {
  if (stopping) return;
  stopping = true;
  emulator.stop().then(
    () => process.exit(0),
    (e: unknown) => {
      console.error(`emulator: stopping on ${signal} failed:`, e);
      process.exit(1);
    },
  );
};
process.on('SIGINT', () => stop('SIGINT'));
process.on('SIGTERM', () => stop('SIGTERM'));
