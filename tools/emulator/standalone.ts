/** What every emulator's standalone entry (main.ts) does around starting it. */

/** A non-negative integer command-line option, or exit 2 saying what was wrong. */
export function intOption(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`--${name} needs a non-negative integer, got ${value}`);
    process.exit(2);
  }
  return n;
}

/** Print what a client needs as one JSON line: the signal, for whoever started us, that we are ready. */
export function announce(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

/** Stop cleanly on SIGINT/SIGTERM, exiting 0 (1 when stopping failed). */
export function stopOnSignals(name: string, stop: () => Promise<void>): void {
  let stopping = false;
  const onSignal = (signal: string) => {
    if (stopping) return;
    stopping = true;
    stop().then(
      () => process.exit(0),
      (e: unknown) => {
        console.error(`${name}: stopping on ${signal} failed:`, e);
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => onSignal('SIGINT'));
  process.on('SIGTERM', () => onSignal('SIGTERM'));
}
