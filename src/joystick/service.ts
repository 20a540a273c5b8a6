import { errorMessage } from '../shared/errors.js';
import type { Logger } from '../shared/log.js';
import { POLICIES, retry } from '../shared/retry.js';
import { providerFactory } from '../plume/providers/registry.js';
import type { SystemRegistry } from '../plume/systems/registry.js';
import { Bus, type ConsumerExit, type Message } from './bus/index.js';
import type { JoystickConfig } from './config.js';
import { Controller } from './controller.js';
import { startHttp, type HttpServer } from './http/server.js';
import { Metrics } from './metrics.js';
import { isTransientDbError, openDatabase } from './store/db.js';
import { JobStore } from './store/job-store.js';

export interface Service {
  controller: Controller;
  store: JobStore;
  http: HttpServer;
  metrics: Metrics;
  /** Resolves when the service stops: on a signal (exit 0), or when the consumer halts or fails. */
  done: Promise<number>;
  /** Stop gracefully (a signal): `done` resolves 0. */
  stop(): Promise<void>;
}

/** Open the broker connection, retrying for as long as it takes (readiness says so meanwhile). */
async function openBus(config: JoystickConfig, log: Logger, signal: AbortSignal): Promise<Bus> {
  return retry(() => Bus.open(config.bus, { logger: log }), {
    attempts: Infinity,
    policy: POLICIES.brokerStart,
    signal,
    onRetry: (err, attempt, delay) =>
      log.error(
        { err: errorMessage(err), attempt, retryInSeconds: Math.round(delay / 1000) },
        'cannot reach the message broker',
      ),
  });
}

/**
 * Open the job store, waiting while the database is locked or unreachable (a PostgreSQL restart, another
 * process holding SQLite's write lock) as the broker is waited for; a configuration error fails at once.
 */
async function openStore(config: JoystickConfig, log: Logger): Promise<JobStore> {
  return retry(
    async () => {
      const db = openDatabase(config.app.database);
      try {
        return await JobStore.open(db);
      } catch (err) {
        await db.close().catch(() => undefined);
        throw err;
      }
    },
    {
      attempts: Infinity,
      policy: POLICIES.databaseStart,
      retryable: isTransientDbError,
      onRetry: (err, attempt, delay) =>
        log.error(
          { err: errorMessage(err), attempt, retryInSeconds: Math.round(delay / 1000) },
          'database unavailable; retrying',
        ),
    },
  );
}

/** `joystick run`: the database, the HTTP endpoints, the controller's loops and the bus consumer. */
export async function startService(
  config: JoystickConfig,
  registry: SystemRegistry,
  log: Logger,
): Promise<Service> {
  const store = await openStore(config, log);
  const metrics = new Metrics();
  const stopping = new AbortController();
  let bus: Bus | undefined;
  const controller = new Controller({
    config,
    store,
    registry,
    log,
    metrics,
    providers: providerFactory(config.plume, {
      onRetry: (kind) => metrics.retries.inc({ what: `aws-${kind.toLowerCase()}` }),
      log,
    }),
    publish: async (message: Message) => {
      if (!bus) throw new Error('not connected to the message broker yet');
      await bus.publish(message);
    },
  });
  const http = await startHttp(config.app.http_listen, {
    store,
    metrics,
    log,
    busConnected: () => bus?.connection.isConnected ?? false,
    stallSeconds: config.app.compose_stall_seconds,
  });
  log.info({ url: http.url }, 'status page, health and metrics listening');
  controller.start();

  let resolveDone!: (code: number) => void;
  const done = new Promise<number>((r) => (resolveDone = r));
  // The exit status is decided by why the service stops, before it stops: a promise resolves once, so a
  // status set after stopping would be lost (and systemd's Restart=on-failure would see a clean exit).
  const stop = async (code = 0) => {
    if (stopping.signal.aborted) return;
    stopping.abort();
    log.info('stopping: finishing the message in hand, requeueing running jobs');
    await bus
      ?.close()
      .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'closing the broker connection failed'));
    await controller.stop();
    await http.close();
    await store.close();
    resolveDone(code);
  };

  void (async () => {
    try {
      bus = await openBus(config, log, stopping.signal);
      const consumer = await bus.consume((m) => controller.handleMessage(m), {
        logger: log,
        maxBodyBytes: config.app.max_message_bytes,
      });
      log.info({ queues: Object.keys(config.bus.queues), bindings: config.bus.bindings.length }, 'consuming');
      const exit: ConsumerExit = await consumer.done;
      if (stopping.signal.aborted) return;
      // A halt says its own status (fedora-messaging's HaltConsumer); a consumer that failed, or ended
      // without being asked to, is a failure for systemd to restart.
      const code = exit.reason === 'halted' ? exit.exitCode : exit.reason === 'failed' ? 13 : 1;
      if (exit.reason === 'failed') log.fatal({ err: exit.error.message }, 'the consumer failed');
      else if (exit.reason === 'halted') log.warn({ code, message: exit.message }, 'the consumer was halted');
      else log.fatal('the consumer stopped by itself');
      await stop(code);
    } catch (err) {
      if (stopping.signal.aborted) return;
      log.fatal({ err: errorMessage(err) }, 'cannot consume');
      await stop(1);
    }
  })();

  return { controller, store, http, metrics, done, stop: () => stop(0) };
}
