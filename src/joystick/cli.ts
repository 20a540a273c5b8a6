import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { EXIT, PlumeError, errorMessage, exitCodeFor } from '../shared/errors.js';
import { createLogger, redactUrl } from '../shared/log.js';
import { checkCredentialFile, credentialFiles } from '../plume/providers/aws/clients.js';
import { KNOWN_REGIONS, checkRegions } from '../plume/providers/aws/regions.js';
import type { AwsTargetExtras } from '../plume/providers/aws/settings.js';
import { providerFactory } from '../plume/providers/registry.js';
import { platformsFor, targetSettings } from '../plume/runtime.js';
import { builtinSystems } from '../plume/systems/builtin.js';
import type { SystemRegistry } from '../plume/systems/registry.js';
import {
  Bus,
  Drop,
  createMessage,
  iterateDumpFile,
  loadBusConfig,
  toDumpLine,
  type Message,
} from './bus/index.js';
import { loadJoystickConfig, type JoystickConfig } from './config.js';
import { Controller } from './controller.js';
import { statusModel } from './http/status.js';
import { Metrics } from './metrics.js';
import { batchOutcome } from './outcome.js';
import { isComposeTopic, isFinished, parsePungiBody } from './pungi.js';
import { startService } from './service.js';
import { openDatabase } from './store/db.js';
import { JobStore } from './store/job-store.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

interface Common {
  config?: string;
  verbose?: boolean;
}

async function load(o: Common): Promise<JoystickConfig> {
  return loadJoystickConfig(o.config);
}

/** Check everything that can be checked without connecting: a dry run of the start command. */
function check(config: JoystickConfig, registry: SystemRegistry): string[] {
  const system = registry.get(config.app.system);
  if (!system.releasesForCompose)
    throw new PlumeError(
      'usage',
      `system ${system.name} cannot be driven by composes`,
      'set consumer_config.system',
    );
  const channels = system.channels().map((c) => c.name);
  for (const c of config.app.channels)
    if (!channels.includes(c))
      throw new PlumeError(
        'usage',
        `consumer_config.channels: unknown channel ${JSON.stringify(c)} for ${system.name}`,
        `choose from ${channels.join(', ')}`,
      );
  for (const a of config.app.arches)
    if (!system.arches().includes(a))
      throw new PlumeError(
        'usage',
        `consumer_config.arches: unknown arch ${JSON.stringify(a)} for ${system.name}`,
        `choose from ${system.arches().join(', ')}`,
      );
  // Every AWS region a watched channel publishes to must exist (the partition's list: --check connects to
  // nothing; a release asks DescribeRegions as well).
  for (const channel of config.app.channels) {
    const request = { system: system.name, channel, environment: config.app.environment };
    if (!platformsFor(config.plume, system, request).includes('aws')) continue;
    for (const t of targetSettings(config.plume, system, request, {}, ['aws'])) {
      const partition = (t.settings as unknown as AwsTargetExtras).partition;
      checkRegions(
        t.name,
        [t.primaryLocation, ...t.locations],
        KNOWN_REGIONS[partition],
        `of the ${partition} partition (channel ${channel})`,
      );
    }
  }
  // plume would refuse these at the first job; a service that starts and then fails every job is worse.
  const credentials = credentialFiles();
  for (const f of credentials) checkCredentialFile(f);
  const db = config.app.database;
  if (!/^(sqlite:\/\/|postgres(ql)?:\/\/|\/|\.)/.test(db))
    throw new PlumeError(
      'usage',
      `consumer_config.database: unsupported ${JSON.stringify(db)}`,
      'use sqlite:////absolute/path.db, sqlite:///relative.db or postgresql://...',
    );
  return [
    `config: ${config.busPath ?? '(fedora-messaging defaults)'}`,
    `broker: ${redactUrl(config.bus.amqp_url)}${config.bus.tls.certfile ? ' (client certificate)' : ''}`,
    `topic prefix: ${config.bus.topic_prefix || '(none)'}; publishing to ${config.bus.publish_exchange}`,
    `queues: ${Object.keys(config.bus.queues).join(', ') || '(none)'}; bindings: ${config.bus.bindings.map((b) => b.routing_keys.join(',')).join('; ')}`,
    `system: ${system.name}; channels: ${config.app.channels.join(', ')}; arches: ${config.app.arches.join(', ')}`,
    `database: ${db.replace(/\/\/[^@/]*@/, '//***@')}`,
    `AWS: base region ${config.plume.aws.base_region}, regions ${Array.isArray(config.plume.aws.regions) ? config.plume.aws.regions.join(',') : config.plume.aws.regions}, volume types ${config.plume.aws.volume_types.join(',')}, ${config.plume.aws.visibility}`,
    `announcing: ${[config.app.publish_fedimg && 'fedimg.image.*', config.app.publish_image_uploader && 'fedora_image_uploader.published.v1.aws.*'].filter(Boolean).join(', ') || 'nothing'}`,
    `http: ${config.app.http_listen}`,
    `AWS credentials and config files: ${credentials.join(', ')} (missing, or readable by this user only)`,
  ];
}

async function run(o: Common & { check?: boolean }, registry: SystemRegistry): Promise<number> {
  const config = await load(o);
  const lines = check(config, registry);
  if (o.check) {
    for (const l of lines) print(l);
    print('configuration OK');
    return EXIT.ok;
  }
  const log = createLogger({ name: 'joystick', level: o.verbose ? 'debug' : undefined });
  log.info({ version: VERSION, config: config.busPath }, 'joystick starting');
  const service = await startService(config, registry, log);
  const onSignal = (signal: string) => {
    log.info({ signal }, 'signal received');
    void service.stop();
  };
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  return service.done;
}

/** A controller over the configured database, publishing through `publish`. */
async function openController(
  config: JoystickConfig,
  registry: SystemRegistry,
  publish: (m: Message) => Promise<void>,
  verbose?: boolean,
) {
  const log = createLogger({ name: 'joystick', level: verbose ? 'debug' : undefined });
  const store = await JobStore.open(openDatabase(config.app.database));
  const controller = new Controller({
    config,
    store,
    registry,
    log,
    metrics: new Metrics({ defaults: false }),
    publish,
    providers: providerFactory(config.plume),
  });
  return { controller, store, log };
}

/** How the composes handled here ended: the exit status, and one line on stderr for each not carried through. */
async function outcomeCode(store: JobStore, composeIds: string[], dropped: string[] = []): Promise<number> {
  const ids = [...new Set(composeIds)];
  const jobs = await store.jobs({ composeIds: ids });
  const composes = await Promise.all(ids.map((id) => store.getCompose(id)));
  const { code, problems } = batchOutcome(ids, composes, jobs, dropped);
  for (const p of problems) process.stderr.write(`joystick: ${p}\n`);
  return code;
}

async function replay(
  file: string,
  o: Common & { publish?: boolean },
  registry: SystemRegistry,
): Promise<number> {
  const config = await load(o);
  let bus: Bus | undefined;
  const publish = o.publish
    ? async (m: Message) => {
        bus ??= await Bus.open(config.bus);
        await bus.publish(m);
      }
    : (m: Message) => {
        // Without --publish, what would be announced is printed in the dump format instead.
        print(
          toDumpLine({
            ...m,
            topic: config.bus.topic_prefix ? `${config.bus.topic_prefix}.${m.topic}` : m.topic,
          }),
        );
        return Promise.resolve();
      };
  const { controller, store, log } = await openController(config, registry, publish, o.verbose);
  const composes: string[] = [];
  const dropped: string[] = [];
  try {
    for await (const { line, message } of iterateDumpFile(file)) {
      try {
        await controller.handleMessage(message);
        // A finished compose was recorded and must be carried through; anything else needs nothing.
        const parsed = isComposeTopic(message.topic) ? parsePungiBody(message.body) : undefined;
        if (parsed?.ok && isFinished(parsed.compose.status)) composes.push(parsed.compose.id);
      } catch (err) {
        if (!(err instanceof Drop)) throw err;
        log.error({ line, err: err.message }, 'message dropped');
        dropped.push(`line ${line}: dropped: ${err.message}`);
      }
    }
    await controller.runUntilIdle();
    return await outcomeCode(store, composes, dropped);
  } finally {
    await store.close();
    await bus?.close();
  }
}

/** Control characters as visible escapes (`\x1b`), so a line shows what it holds. Pure. */
export function visible(text: string): string {
  return text.replace(
    // eslint-disable-next-line no-control-regex -- matching control characters is the point
    /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`,
  );
}

async function status(o: Common & { json?: boolean; limit: string }): Promise<number> {
  const config = await load(o);
  const store = await JobStore.open(openDatabase(config.app.database));
  try {
    const model = await statusModel(store, Number(o.limit) || 20, {
      stallSeconds: config.app.compose_stall_seconds,
    });
    if (o.json) {
      print(JSON.stringify(model, null, 2));
      return EXIT.ok;
    }
    if (model.composes.length === 0) print('no composes recorded yet');
    // Everything below came from the bus or a compose host: control characters are shown, never sent to the
    // terminal (an id with escape sequences could otherwise print a fake line).
    const show = (line: string) => print(visible(line));
    for (const c of model.composes) {
      show(
        `${c.composeId}  ${c.status}${c.channel ? `  (${c.channel})` : ''}${c.readingSeconds !== undefined ? `  ${c.stalled ? 'STALLED: ' : ''}reading its metadata for ${c.readingSeconds} s` : ''}${c.error ? `: ${c.error}` : ''}`,
      );
      for (const j of c.jobs) {
        show(
          `  ${j.provider.padEnd(5)} ${j.build ?? j.id}  ${j.state}${j.step ? ` (${j.step})` : ''}, attempt ${j.attempts}${j.error ? `: ${j.error}` : ''}`,
        );
        for (const r of j.regions)
          show(
            `    ${r.padEnd(16)} ${j.variants.map((v) => `${v} ${j.grid[r]?.[v]?.id ?? j.grid[r]?.[v]?.state ?? '-'}${j.grid[r]?.[v]?.public ? ' (public)' : ''}`).join('  ')}`,
          );
      }
    }
    return EXIT.ok;
  } finally {
    await store.close();
  }
}

async function retry(
  composeId: string,
  o: Common & { now?: boolean },
  registry: SystemRegistry,
): Promise<number> {
  const config = await load(o);
  const store = await JobStore.open(openDatabase(config.app.database));
  try {
    if (!(await store.getCompose(composeId)))
      throw new PlumeError('usage', `no compose ${composeId} in the database`, 'see `joystick status`');
    const { jobs, compose } = await store.retryCompose(composeId);
    print(`${composeId}: ${jobs} job(s) queued again${compose ? ', compose metadata to be read again' : ''}`);
    if (!o.now) {
      if (jobs || compose)
        print('a running joystick picks them up within its poll interval; or pass --now to run them here');
      return EXIT.ok;
    }
  } finally {
    await store.close();
  }
  let bus: Bus | undefined;
  const { controller, store: s2 } = await openController(
    config,
    registry,
    async (m) => {
      bus ??= await Bus.open(config.bus);
      await bus.publish(m);
    },
    o.verbose,
  );
  try {
    await controller.runUntilIdle();
    return await outcomeCode(s2, [composeId]);
  } finally {
    await s2.close();
    await bus?.close();
  }
}

async function publishDump(file: string, o: Common): Promise<number> {
  const { config } = await loadBusConfig({ path: o.config });
  const bus = await Bus.open(config);
  try {
    let n = 0;
    for await (const { message } of iterateDumpFile(file)) {
      // A dump holds the full routing key; publishing adds the configured prefix, so strip it if present.
      const prefix = config.topic_prefix ? `${config.topic_prefix.replace(/\.+$/, '')}.` : '';
      const topic =
        prefix && message.topic.startsWith(prefix) ? message.topic.slice(prefix.length) : message.topic;
      await bus.publish(
        createMessage({ topic, body: message.body, severity: message.severity, schema: message.schema }),
      );
      n++;
    }
    process.stderr.write(`published ${n} message(s) to ${config.publish_exchange}\n`);
    return EXIT.ok;
  } finally {
    await bus.close();
  }
}

async function listen(o: Common & { routingKey?: string[]; count?: string }): Promise<number> {
  const { config } = await loadBusConfig({ path: o.config });
  const prefix = config.topic_prefix.replace(/\.+$/, '');
  const keys = o.routingKey ?? [prefix ? `${prefix}.#` : '#'];
  const limit = o.count ? Number(o.count) : Infinity;
  const bus = await Bus.open(config);
  let seen = 0;
  let finish!: () => void;
  const finished = new Promise<void>((r) => (finish = r));
  const consumer = await bus.consume(
    (m) => {
      print(toDumpLine(m));
      if (++seen >= limit) finish();
    },
    {
      queues: { '': { durable: false, auto_delete: true, exclusive: true, arguments: {} } },
      bindings: [{ queue: '', exchange: config.publish_exchange, routing_keys: keys }],
      requireProperties: false,
    },
  );
  process.once('SIGINT', finish);
  process.once('SIGTERM', finish);
  await Promise.race([finished, consumer.done]);
  await bus.close();
  return EXIT.ok;
}

export function buildProgram(registry: SystemRegistry, setExit: (code: number) => void): Command {
  const program = new Command('joystick')
    .description('Publish Fedora cloud images from compose messages on the Fedora message bus, with plume.')
    .version(VERSION, '-V, --version', "print joystick's version")
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();
  const wrap = (fn: () => Promise<number>) => async () => setExit(await fn());
  const configOpt = [
    '-c, --config <file>',
    'fedora-messaging config.toml (default $FEDORA_MESSAGING_CONF or /etc/fedora-messaging/config.toml); joystick reads [consumer_config]',
  ] as const;

  const runCmd = new Command('run')
    .description(
      'consume compose messages, publish images, announce them; serve /status, /metrics, /healthz, /readyz',
    )
    .option(...configOpt)
    .option('--check', 'validate the configuration and exit, connecting to nothing')
    .option('-v, --verbose', 'debug logging');
  runCmd.action(wrap(() => run(runCmd.opts(), registry)));

  const replayCmd = new Command('replay')
    .description(
      'process dumped messages (one JSON per line, as fedora-messaging and datagrepper write them) without the bus; exits 0 only when every one was carried through',
    )
    .argument('<file>', 'the message dump')
    .option(...configOpt)
    .option('--publish', 'publish the resulting messages to the broker (default: print them as dump lines)')
    .option('-v, --verbose', 'debug logging');
  replayCmd.action(wrap(() => replay(replayCmd.args[0]!, replayCmd.opts(), registry)));

  const statusCmd = new Command('status')
    .description('recent composes, their jobs and the state of every region')
    .option(...configOpt)
    .option('--json', "print the status page's JSON")
    .option('--limit <n>', 'how many composes', '20');
  statusCmd.action(wrap(() => status(statusCmd.opts())));

  const retryCmd = new Command('retry')
    .description('queue the failed or partial jobs of a compose again (a running joystick picks them up)')
    .argument('<compose-id>')
    .option(...configOpt)
    .option('--now', 'run them in this process instead of waiting for the service')
    .option('-v, --verbose', 'debug logging');
  retryCmd.action(wrap(() => retry(retryCmd.args[0]!, retryCmd.opts(), registry)));

  const publishCmd = new Command('publish')
    .description('publish messages from a dump file (one JSON per line), as `fedora-messaging publish` does')
    .argument('<file>', 'the message dump')
    .option(...configOpt);
  publishCmd.action(wrap(() => publishDump(publishCmd.args[0]!, publishCmd.opts())));

  const listenCmd = new Command('listen')
    .description(
      'print messages from the bus as dump lines, on a private queue (e.g. to watch what joystick announces)',
    )
    .option(...configOpt)
    .option('--routing-key <key...>', 'routing keys to bind (default: everything under the topic prefix)')
    .option('--count <n>', 'stop after this many messages');
  listenCmd.action(wrap(() => listen(listenCmd.opts())));

  return program
    .addCommand(runCmd)
    .addCommand(replayCmd)
    .addCommand(statusCmd)
    .addCommand(retryCmd)
    .addCommand(publishCmd)
    .addCommand(listenCmd);
}

export async function main(argv: string[], registry: SystemRegistry = builtinSystems()): Promise<number> {
  let code: number = EXIT.ok;
  try {
    await buildProgram(registry, (c) => (code = c)).parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError)
      return err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
        ? EXIT.ok
        : EXIT.usage;
    process.stderr.write(`joystick: error: ${errorMessage(err)}\n`);
    return exitCodeFor(err);
  }
}
