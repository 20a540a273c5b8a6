import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { deleteQueue } from '../../tools/reliability/broker.js';
import { inventoryShape, readInventory, type Inventory } from '../../tools/reliability/inventory.js';
import {
  emulatorEnv,
  JoystickProcess,
  writeJoystickToml,
  type JoystickToml,
} from '../../tools/reliability/joystick.js';
import { Ledger, normalized } from '../../tools/reliability/ledger.js';
import { startTcpProxy, type TcpProxy } from '../../tools/reliability/tcp-proxy.js';
import { JobStore } from '../../src/joystick/store/job-store.js';
import { openDatabase } from '../../src/joystick/store/db.js';
import type { World } from './world.js';

/**
 * One reliability scenario: its own topic prefix, queue, database, connection name and announcement ledger,
 * with joystick reaching RabbitMQ through a TCP proxy the test controls. Everything is torn down by close().
 */
export interface Scenario {
  id: string;
  prefix: string;
  queue: string;
  connectionName: string;
  database: string;
  config: string;
  ledger: Ledger;
  amqp: TcpProxy;
  /** Every joystick process started so far; the last is the current one. */
  processes: JoystickProcess[];
  readonly joystick: JoystickProcess;
  /** Start (or restart) joystick and wait until it consumes. */
  start(opts?: { wait?: boolean }): Promise<JoystickProcess>;
  /** Read the job store (joystick may be running: SQLite in WAL mode and PostgreSQL both allow it). */
  store<T>(fn: (s: JobStore) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

export async function openScenario(
  world: World,
  opts: Partial<JoystickToml> & { regions: string[]; database?: string },
): Promise<Scenario> {
  const id = randomBytes(4).toString('hex');
  const prefix = `org.fedoraproject.rel${id}`;
  const queue = `joystick_reliability_${id}`;
  const connectionName = `joystick-reliability-${id}`;
  const database = opts.database ?? `sqlite:///${join(world.dir, `joystick-${id}.db`)}`;
  const amqp = await startTcpProxy({ host: '127.0.0.1', port: 5672 });
  const config = await writeJoystickToml({
    ...opts,
    path: join(world.dir, `joystick-${id}.toml`),
    prefix,
    queue,
    connectionName,
    database,
    awsEndpoint: world.emulator.endpoint,
    amqpUrl: `amqp://guest:guest@127.0.0.1:${amqp.port}/%2F`,
  });
  const ledger = await Ledger.open(prefix);
  const processes: JoystickProcess[] = [];
  const scenario: Scenario = {
    id,
    prefix,
    queue,
    connectionName,
    database,
    config,
    ledger,
    amqp,
    processes,
    get joystick() {
      const p = processes.at(-1);
      if (!p) throw new Error('joystick was not started');
      return p;
    },
    async start({ wait = true } = {}) {
      const p = new JoystickProcess(config, emulatorEnv(world.emulator.endpoint));
      processes.push(p);
      if (wait) await p.ready();
      return p;
    },
    async store(fn) {
      const s = await JobStore.open(openDatabase(database));
      try {
        return await fn(s);
      } finally {
        await s.close();
      }
    },
    async close() {
      if (process.env.JOYSTICK_TEST_LOG)
        for (const p of processes) console.log(`--- joystick ${p.pid}\n${p.stderr()}`);
      for (const p of processes) if (p.running) await p.kill9();
      await ledger.close();
      await amqp.close();
      await deleteQueue(queue);
    },
  };
  return scenario;
}

/** What a run left: the announcements (distinct, AWS ids masked) and the AWS inventory's shape. */
export interface Outcome {
  messages: string[];
  inventory: string[];
  raw: Inventory;
}

export async function outcomeOf(world: World, regions: string[], ledger: Ledger): Promise<Outcome> {
  const raw = await readInventory(world.emulator.endpoint, regions);
  return {
    messages: ledger.messages().map(normalized).sort(),
    inventory: inventoryShape(raw),
    raw,
  };
}

/** Announcements of the baseline missing from a run (compared as multisets of masked messages). */
export function missingFrom(baseline: string[], got: string[]): string[] {
  const left = [...got];
  const missing: string[] = [];
  for (const m of baseline) {
    const i = left.indexOf(m);
    if (i >= 0) left.splice(i, 1);
    else missing.push(m);
  }
  return missing;
}

/** Wait until the ledger holds `n` distinct messages, then a little longer for any stragglers. */
export async function settle(ledger: Ledger, n: number, timeoutMs = 120_000): Promise<void> {
  await ledger.waitFor((l) => l.messages().length >= n, timeoutMs, `${n} announcements`);
  await sleep(1500);
}
