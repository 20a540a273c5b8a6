import { Command, CommanderError, Option } from 'commander';
import { PlumeError, EXIT, errorMessage, exitCodeFor } from '../shared/errors.js';
import { createLogger, type Logger } from '../shared/log.js';
import { expandHome, loadConfig, stateDir, type PlumeConfig } from './config.js';
import { imageKey, type ReleasePlan, type TargetPlan } from './plan.js';
import { logProgress, terminalProgress, type Progress } from './progress.js';
import {
  assembleRecord,
  formatTable,
  formatWebsites,
  readRecord,
  recordFileName,
  writeFileAtomic,
  type ReleaseRecord,
  type TargetRecord,
} from './record.js';
import { effectivePlan, runRelease, verifyAndRepair } from './release.js';
import { providerFactory, providerModule, providerNames } from './providers/registry.js';
import type { ProviderFactory } from './providers/module.js';
import { planRelease, sourceAccess, type Overrides, type PlannedRelease } from './runtime.js';
import { SqliteJournal } from './state/sqlite-journal.js';
import { builtinSystems } from './systems/builtin.js';
import { withConfiguredSystems } from './systems/generic/index.js';
import type { SystemRegistry } from './systems/registry.js';
import type { ReleaseRequest, System } from './systems/types.js';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { checkCredentialFile } from './providers/aws/clients.js';
import { formatPrunePlan, prune, pruneNow, pruneSelector, pruneSources, pruneSummary } from './prune-cli.js';
import { SqlitePruneJournal } from './state/prune-journal.js';
import { ReleaseLocks, type HeldLock } from './state/release-lock.js';
import { SqliteUploadSessions } from './state/upload-sessions.js';

const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

interface CommonOptions {
  config?: string;
  state?: string;
  verbose?: boolean;
  quiet?: boolean;
}

interface SelectorOptions extends CommonOptions {
  system?: string;
  distro?: string;
  channel?: string;
  arch?: string;
  architecture?: string;
  board?: string;
  imageType?: string;
  compose?: string;
  composeId?: string;
  version?: string;
  timestamp?: string;
  respin?: string;
  label?: string;
  environment?: string;
  baseRegion?: string;
  regions?: string[];
  volumeTypes?: string[];
  visibility?: 'public' | 'private';
  shareWith?: string[];
  awsProfile?: string;
  awsCredentials?: string;
  verifyKey?: string;
  platform?: string[];
  debug?: boolean;
  record?: string;
  output?: 'table' | 'json';
  outputsDir?: string;
  writeImageList?: string;
  dryRun?: boolean;
  gceJsonKey?: string;
  azureProfile?: string;
}

/** The flags that say which release: shared by release, pre-release, verify and amis. */
export function addSelectors(cmd: Command): Command {
  return (
    cmd
      .option('--system <name>', "system to release; see `plume systems` (default: plume's original system)")
      .addOption(new Option('--distro <name>', "alias of --system (plume's older flag)").hideHelp())
      .option('-C, --channel <name>', 'channel of the system; see `plume systems`')
      .option('--arch <arch>', 'architecture of the image (e.g. x86_64, aarch64)')
      .addOption(new Option('-A, --architecture <arch>', "alias of --arch (plume's older flag)").hideHelp())
      .option('-B, --board <board>', 'board, for systems that name architectures by board (e.g. amd64-usr)')
      .option(
        '--image-type <type>',
        'image type, for systems that have several (e.g. Cloud-Base, AtomicHost)',
      )
      .option('--compose <url>', 'compose location: URL (or local path) of the compose/ directory')
      .option('--compose-id <id>', 'compose id, for systems that build URLs from it')
      .option('-V, --version <version>', 'version to release, for systems that need it')
      .option('--timestamp <timestamp>', 'build timestamp, for systems that need it')
      .option('--respin <n>', "respin number (defaults to the compose's)")
      .option('--label <label>', 'compose label (e.g. RC-1.4, Beta-1.2) when the compose does not say')
      .option('--environment <name>', "environment of the system's config (e.g. production, staging)")
      .option('--base-region <region>', 'region the image is uploaded to and copied from')
      .option(
        '--regions <list>',
        'comma-separated regions to publish to (default: config, or all enabled)',
        list,
      )
      .option(
        '--volume-types <list>',
        'comma-separated root volume types, one image each (default gp3,gp2)',
        list,
      )
      .addOption(
        new Option('--visibility <v>', 'make images public or keep them private').choices([
          'public',
          'private',
        ]),
      )
      .option('--share-with <accounts>', 'comma-separated AWS account ids to share images with', list)
      .option('--aws-profile <name>', "AWS credentials profile (default: the SDK's default chain)")
      .option(
        '--aws-credentials <file>',
        'AWS shared credentials file (not readable by group or others); profiles come from it, `default` when a target names none',
      )
      .option('--verify-key <file>', 'OpenPGP public key that signed images must verify against')
      .option(
        '--platform <list>',
        `comma-separated providers to publish to, among ${providerNames().join(', ')} (default: every one the system publishes to and the config enables)`,
        list,
      )
      // plume's old flags: --debug is --verbose; images are read over https.
      .addOption(new Option('--debug', 'alias of --verbose').hideHelp())
      .option(
        '--gce-json-key <file>',
        "GCE: a service account's JSON key (not readable by group or others); Application Default Credentials otherwise",
      )
      .option(
        '--azure-profile <file>',
        "Azure: a service principal's credentials file, as `az ad sp create-for-rbac --sdk-auth` writes it (not readable by group or others); DefaultAzureCredential otherwise",
      )
  );
}

function addCommon(cmd: Command): Command {
  return cmd
    .option('-c, --config <file>', 'plume config file (TOML); default $PLUME_CONFIG or /etc/plume/plume.toml')
    .option('--state <file>', 'state database (SQLite); default ~/.local/state/plume/state.db')
    .option('-v, --verbose', 'log debug detail')
    .option('-q, --quiet', 'log warnings and errors only');
}

export function requestFrom(o: SelectorOptions, defaultSystem?: string): ReleaseRequest {
  const system = o.system ?? o.distro ?? defaultSystem;
  if (!system) throw new PlumeError('usage', '--system is required', 'see `plume systems` for the choices');
  for (const p of o.platform ?? []) providerModule(p);
  if (!o.channel)
    throw new PlumeError(
      'usage',
      '--channel is required',
      `see \`plume systems\` for the channels of ${system}`,
    );
  let respin: number | undefined;
  if (o.respin !== undefined) {
    respin = Number(o.respin);
    if (!Number.isInteger(respin) || respin < 0)
      throw new PlumeError('usage', `--respin must be a whole number, not ${JSON.stringify(o.respin)}`);
  }
  return {
    system,
    channel: o.channel,
    arch: o.arch ?? o.architecture,
    board: o.board,
    imageType: o.imageType,
    compose: o.compose,
    composeId: o.composeId,
    version: o.version,
    timestamp: o.timestamp,
    respin,
    label: o.label,
    environment: o.environment,
    ...(o.verifyKey ? { verifyKey: o.verifyKey } : {}),
    ...(o.platform && o.platform.length > 0 ? { platforms: o.platform } : {}),
  };
}

function overridesFrom(o: SelectorOptions): Overrides {
  return {
    baseRegion: o.baseRegion,
    regions: o.regions,
    volumeTypes: o.volumeTypes,
    visibility: o.visibility,
    shareWith: o.shareWith,
    profile: o.awsProfile,
    credentialsFile: o.awsCredentials,
    gceJsonKey: o.gceJsonKey,
    azureProfile: o.azureProfile,
  };
}

/**
 * plume's `--aws-credentials FILE`: the SDK reads profiles from it. A file others can read is refused, as
 * the keys in it would already be exposed.
 */
function useCredentialsFile(path: string | undefined): void {
  if (!path) return;
  checkCredentialFile(path, 'usage');
  process.env.AWS_SHARED_CREDENTIALS_FILE = path;
  // The file's keys are the ones used (as plume always did); keys in the environment too would make the
  // SDK print a nine-line warning at the first call. Say it once, in one line, and drop them.
  if (process.env.AWS_ACCESS_KEY_ID || process.env.AWS_SECRET_ACCESS_KEY) {
    process.stderr.write(
      `plume: warning: using the keys in ${path} (--aws-credentials); AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN from the environment are ignored\n`,
    );
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    delete process.env.AWS_SESSION_TOKEN;
  }
}

interface Session {
  config: PlumeConfig;
  registry: SystemRegistry;
  log: Logger;
  progress: Progress;
  journal: () => SqliteJournal;
  pruneJournal: () => SqlitePruneJournal;
  uploadSessions: () => SqliteUploadSessions;
  /**
   * Take the lock of a release (or prune) in the state database, or throw the one line naming its holder;
   * it is given back when the session closes (normal end, error, signal) or the process exits.
   */
  lock: (key: string, command: string, what: string) => HeldLock;
  recordsDir: string;
  close(): void;
}

async function openSession(
  o: CommonOptions & { debug?: boolean },
  builtin: SystemRegistry,
  bars: boolean,
): Promise<Session> {
  const { config } = await loadConfig(o.config);
  const registry = withConfiguredSystems(builtin, config);
  const verbose = o.verbose || o.debug;
  const level = verbose ? 'debug' : o.quiet ? 'warn' : undefined;
  const tty = bars && process.stderr.isTTY === true && !verbose;
  let progress: Progress;
  let log: Logger;
  if (tty) {
    progress = terminalProgress(0);
    log = createLogger({ level: level ?? 'warn', destination: progress.logStream, name: 'plume' });
  } else {
    log = createLogger({ level, name: 'plume' });
    progress = logProgress(log);
  }
  const statePath = expandHome(o.state ?? config.state.path ?? join(stateDir(), 'state.db'));
  let journal: SqliteJournal | undefined;
  let pruneJournal: SqlitePruneJournal | undefined;
  let uploadSessions: SqliteUploadSessions | undefined;
  let locks: ReleaseLocks | undefined;
  return {
    config,
    registry,
    log,
    progress,
    journal: () => (journal ??= new SqliteJournal(statePath)),
    pruneJournal: () => (pruneJournal ??= new SqlitePruneJournal(statePath)),
    uploadSessions: () => (uploadSessions ??= new SqliteUploadSessions(statePath)),
    lock: (key, command, what) =>
      (locks ??= new ReleaseLocks(statePath, { ttlMs: config.state.lock_seconds * 1000, log })).acquire(
        key,
        command,
        what,
      ),
    recordsDir: expandHome(config.state.records_dir ?? join(stateDir(), 'releases')),
    close() {
      progress.stop();
      journal?.close();
      pruneJournal?.close();
      uploadSessions?.close();
      locks?.close();
    },
  };
}

async function plans(session: Session, o: SelectorOptions): Promise<PlannedRelease> {
  const request = requestFrom(o, session.registry.defaultSystem());
  useCredentialsFile(o.awsCredentials);
  return planRelease(request, {
    config: session.config,
    registry: session.registry,
    log: session.log,
    allowFiles: true,
    overrides: overridesFrom(o),
    providers: providerFactory(session.config, { log: session.log }),
  });
}

function describeTarget(t: TargetPlan): string {
  return [
    `  target ${t.name} (${t.provider}): ${t.key}`,
    `    build:       ${t.build}`,
    `    source:      ${t.source.url}`,
    `    checksum:    ${t.source.sha256 ? `sha256 ${t.source.sha256}` : t.source.signatureUrl ? `signature ${t.source.signatureUrl}, key ${t.source.signatureKey ?? '(none)'}` : 'none'}`,
    ...providerModule(t.provider)
      .describe(t)
      .map((line) => `    ${line}`),
    `    visibility:  ${t.visibility.public ? 'public' : 'private'}${t.visibility.accounts.length ? `, shared with ${t.visibility.accounts.join(', ')}` : ''}${t.deprecateAt ? `, deprecated from ${t.deprecateAt}` : ''}`,
    `    tags:        ${Object.entries(t.tags)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')}`,
    `    images (${t.images.length}):`,
    ...t.images.map((i) => `      ${imageKey(i).padEnd(24)} ${i.name}`),
  ].join('\n');
}

function describePlan(plan: ReleasePlan): string {
  return [
    `release ${plan.key}`,
    `  build:       ${plan.build}`,
    `  version:     ${plan.version}${plan.compose ? ` (compose ${plan.compose}, respin ${plan.respin ?? 0})` : ''}`,
    ...plan.targets.map(describeTarget),
    ...plan.skipped.map((s) => `  ${s.provider}: skipped (${s.reason})`),
  ].join('\n');
}

/**
 * SIGINT and SIGTERM stop a release cleanly: the signal aborts every step in flight (each provider deletes
 * what cannot be resumed, such as a half-written snapshot), and the command exits 130 or 143 as a shell
 * expects. A second signal exits at once.
 */
function interruptOnSignals(log: Logger) {
  const controller = new AbortController();
  let received: NodeJS.Signals | undefined;
  const on = (signal: NodeJS.Signals) => {
    if (received) process.exit(signal === 'SIGINT' ? 130 : 143);
    received = signal;
    log.warn({ signal }, `${signal} received: stopping and cleaning up (send it again to exit at once)`);
    controller.abort(new PlumeError('internal', `interrupted by ${signal}`));
  };
  process.on('SIGINT', on);
  process.on('SIGTERM', on);
  return {
    signal: controller.signal,
    name: () => received ?? 'a signal',
    exitCode: () => (received === 'SIGINT' ? 130 : 143),
    dispose() {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
    },
  };
}

function print(text: string): void {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
}

async function doRelease(
  o: SelectorOptions,
  registry: SystemRegistry,
  mode: 'release' | 'pre-release',
): Promise<number> {
  const session = await openSession(o, registry, !o.dryRun);
  try {
    const { plan, providers, policy, system } = await plans(session, o);
    if (o.dryRun) {
      const effective = effectivePlan(plan, mode);
      print(o.output === 'json' ? JSON.stringify({ mode, ...effective }, null, 2) : describePlan(effective));
      return EXIT.ok;
    }
    // One run of a release at a time (release and pre-release alike): a second refuses here, before it
    // touches anything, instead of taking the first one's unfinished snapshot for a left-over.
    session.lock(plan.key, `plume ${mode}`, `release ${plan.key}`);
    const journal = session.journal();
    const before = new Map(plan.targets.map((t) => [t.name, journal.get(t.key)]));
    const interrupt = interruptOnSignals(session.log);
    const reached = new Map<string, string>();
    let record: ReleaseRecord;
    try {
      record = await runRelease(plan, {
        providerFor: providers,
        journal,
        uploadSessions: session.uploadSessions(),
        policy,
        log: session.log,
        signal: interrupt.signal,
        emit: (event) => {
          if (event.type === 'step' && event.state === 'started')
            reached.set(event.targetName ?? '', event.step);
          session.progress.emit(event);
        },
        mode,
        repairRounds: session.config.release.repair_rounds,
        writeRecord: async (r) => {
          await writeFileAtomic(
            o.record ?? join(session.recordsDir, recordFileName(r.key)),
            JSON.stringify(r, null, 2) + '\n',
          );
        },
        verifySource: system.verifySource
          ? (t, file) =>
              system.verifySource!(t, file, {
                source: sourceAccess(policy),
                log: session.log,
                providers: [t.provider],
              })
          : undefined,
      });
    } catch (err) {
      if (!interrupt.signal.aborted) throw err;
      // Stopped on purpose: what cannot be resumed (an unfinished snapshot) was deleted on the way out;
      // the journal says where each target stopped, and the same command resumes from there.
      const where = [...reached].map(([t, step]) => (reached.size > 1 ? `${t} at ${step}` : step)).join(', ');
      for (const t of plan.targets)
        journal.finish(
          t.key,
          'failed',
          undefined,
          `interrupted by ${interrupt.name()} during ${reached.get(t.name) ?? 'preflight'}`,
        );
      session.progress.stop();
      process.stderr.write(
        `plume: interrupted by ${interrupt.name()} during ${where || 'preflight'}; nothing unfinished was left behind: run the same command again to resume\n`,
      );
      return interrupt.exitCode();
    } finally {
      interrupt.dispose();
    }
    for (const t of Object.values(record.targets)) {
      // The upload step ran this time only if it has a timing (a rerun keeps the first upload's figures).
      const created = t.timings.upload !== undefined && t.upload && !t.upload.reused;
      if (before.get(t.name)?.status === 'complete' && !created)
        session.log.info({ key: t.key }, 'already complete; nothing was created');
    }
    await writeOutputs(session, system, [record], o);
    session.progress.stop();
    print(o.output === 'json' ? JSON.stringify(record, null, 2) : formatTable(record));
    if (record.status === 'complete') return EXIT.ok;
    const several = Object.keys(record.targets).length > 1;
    for (const t of Object.values(record.targets).filter((t) => t.status !== 'complete'))
      process.stderr.write(
        `plume: release ${record.key} is ${t.status}${several ? ` on ${t.name}` : ''}: ${
          t.error ?? t.problems.map((p) => `${p.location}/${p.variant}: ${p.kind}: ${p.detail}`).join('; ')
        }\n`,
      );
    process.stderr.write('plume: run the same command again to complete it\n');
    return EXIT.partial;
  } finally {
    session.close();
  }
}

/**
 * The system's extra files (AMI lists), from the records of all targets together, once every target is
 * complete: a list missing a partition's regions must not replace a good one.
 */
async function writeOutputs(
  session: Session,
  system: System | undefined,
  records: ReleaseRecord[],
  o: SelectorOptions,
): Promise<void> {
  const outputs = system?.outputs?.(records) ?? [];
  if (o.writeImageList && !outputs.some((f) => f.kind === 'image-list'))
    throw new PlumeError(
      'usage',
      `${system?.name ?? 'this system'} writes no image list`,
      'drop --write-image-list',
    );
  if (outputs.length === 0) return;
  if (records.some((r) => r.status !== 'complete')) {
    session.log.warn('not writing the image lists: the release is not complete');
    return;
  }
  const dir = expandHome(o.outputsDir ?? session.recordsDir);
  for (const out of outputs) {
    if (out.kind === 'image-list') {
      if (o.writeImageList) await writeFileAtomic(o.writeImageList, out.contents);
      continue;
    }
    await writeFileAtomic(join(dir, out.path), out.contents);
    session.log.info({ file: join(dir, out.path) }, 'output written');
  }
}

/** The targets a record describes, with providers for their accounts, to check them without the source. */
function recordTargets(record: ReleaseRecord): TargetPlan[] {
  return Object.values(record.targets).map((t) => providerModule(t.plan.provider).check(t.plan));
}

async function doVerify(o: SelectorOptions, registry: SystemRegistry, repair: boolean): Promise<number> {
  const session = await openSession(o, registry, false);
  try {
    let targets: TargetPlan[];
    let providers: ProviderFactory;
    if (o.record) {
      targets = recordTargets(await readRecord(o.record));
      providers = providerFactory(session.config, { log: session.log });
    } else
      ({
        plan: { targets },
        providers,
      } = await plans(session, o));
    let bad = 0;
    const results = [];
    for (const plan of targets) {
      const provider = providers(plan);
      const ctx = { log: session.log, emit: session.progress.emit };
      const report = repair
        ? await verifyAndRepair(plan, provider, ctx, session.config.release.repair_rounds)
        : await provider.verify(plan, ctx);
      bad += report.problems.length;
      results.push({
        key: plan.key,
        target: plan.name,
        ok: report.ok,
        problems: report.problems.map((p) => ({ ...p.target, kind: p.kind, detail: p.detail, id: p.id })),
      });
      if (o.output !== 'json') {
        print(`${plan.key}: ${report.ok.length} of ${plan.images.length} images verified`);
        for (const p of report.problems)
          print(`  ${p.target.location} ${p.target.variant}: ${p.kind}: ${p.detail}`);
      }
    }
    if (o.output === 'json') print(JSON.stringify(results.length === 1 ? results[0] : results, null, 2));
    if (bad > 0) {
      // Locations are named with their target where the release has several.
      const where = [
        ...new Set(
          results.flatMap((r) =>
            r.problems.map((p) => (results.length > 1 ? `${r.target} ${p.location}` : p.location)),
          ),
        ),
      ].sort();
      throw new PlumeError(
        'verify',
        `verification failed in ${where.length} region(s): ${where.join(', ')}`,
        'run `plume release` again (or `plume verify --repair`) to repair',
      );
    }
    return EXIT.ok;
  } finally {
    session.close();
  }
}

async function doAmis(o: SelectorOptions & { format?: string }, registry: SystemRegistry): Promise<number> {
  const session = await openSession(o, registry, false);
  try {
    let record: ReleaseRecord;
    if (o.record) record = await readRecord(o.record);
    else {
      const { plan } = await plans(session, o);
      const targets: Record<string, TargetRecord> = {};
      for (const t of plan.targets) {
        const r = session.journal().get(t.key)?.record;
        if (!r)
          throw new PlumeError(
            'usage',
            `no record of ${t.name} of release ${plan.key} in the state database`,
            'run `plume release` first, or pass --record FILE',
          );
        targets[t.name] = r;
      }
      const times = Object.values(targets);
      record = assembleRecord(
        plan,
        times.every((t) => t.mode === 'release') ? 'release' : 'pre-release',
        targets,
        times.map((t) => t.startedAt).sort()[0]!,
        times
          .map((t) => t.finishedAt)
          .sort()
          .at(-1)!,
      );
    }
    const records = [record];
    const format = o.format ?? o.output ?? 'table';
    if (format === 'json') print(JSON.stringify(record, null, 2));
    else if (format === 'websites') print(JSON.stringify(formatWebsites(records), null, 2));
    else if (format === 'table') print(formatTable(record));
    else {
      const outputs = session.registry.get(record.system).outputs?.(records) ?? [];
      const match = outputs.filter((f) => f.path === format || f.path.endsWith(format));
      if (match.length === 0)
        throw new PlumeError(
          'usage',
          `unknown format ${JSON.stringify(format)}`,
          `use table, json, websites${outputs.length ? ` or one of ${outputs.map((f) => f.path).join(', ')}` : ''}`,
        );
      for (const f of match) print(f.contents);
    }
    return EXIT.ok;
  } finally {
    session.close();
  }
}

async function doStatus(
  o: CommonOptions & { limit: string; output?: string },
  registry: SystemRegistry,
): Promise<number> {
  const session = await openSession(o, registry, false);
  try {
    const states = session.journal().list(Number(o.limit) || 20);
    if (o.output === 'json')
      print(
        JSON.stringify(
          states.map(({ plan: _p, ...s }) => s),
          null,
          2,
        ),
      );
    else if (states.length === 0) print('no releases recorded yet');
    else
      for (const s of states)
        print(
          `${s.updatedAt}  ${s.status.padEnd(8)}  ${s.key}  (attempt ${s.attempts}${s.error ? `; ${s.error}` : ''})`,
        );
    return EXIT.ok;
  } finally {
    session.close();
  }
}

async function doPrune(
  o: SelectorOptions & { now?: string; output?: string },
  registry: SystemRegistry,
): Promise<number> {
  const session = await openSession(o, registry, false);
  const selector = pruneSelector(
    { ...o, system: o.system ?? o.distro, arch: o.arch ?? o.architecture },
    session.registry,
  );
  const now = pruneNow(o.now);
  useCredentialsFile(o.awsCredentials);
  const sources = pruneSources(session.config, o.platform, overridesFrom(o));
  try {
    // Two prunes of one channel at once would race on the same actions; a dry run changes nothing.
    if (!o.dryRun)
      session.lock(
        `prune ${selector.system}/${selector.channel}`,
        'plume prune',
        `prune of ${selector.system}/${selector.channel}`,
      );
    const { plan, result } = await prune({
      config: session.config,
      selector,
      defaults: session.registry.get(selector.system).lifecycleDefaults?.(),
      sources,
      records: session
        .journal()
        .list(100_000)
        .flatMap((s) => (s.record ? [s.record] : [])),
      journal: session.pruneJournal(),
      now,
      dryRun: o.dryRun === true,
      log: session.log,
    });
    if (o.output === 'json') {
      print(JSON.stringify(result ? { plan, result } : { plan }, null, 2));
      return result ? pruneSummary(result).code : EXIT.ok;
    }
    if (!result) {
      for (const line of formatPrunePlan(plan)) print(line);
      return EXIT.ok;
    }
    const summary = pruneSummary(result);
    for (const line of summary.lines) print(line);
    return summary.code;
  } finally {
    for (const s of sources) s.close?.();
    session.close();
  }
}

async function doSystems(o: CommonOptions, builtin: SystemRegistry): Promise<number> {
  const { config } = await loadConfig(o.config);
  const registry = withConfiguredSystems(builtin, config);
  for (const s of registry.all()) {
    const also = [...(s.aliases ?? []), ...(registry.defaultSystem() === s.name ? ['the default'] : [])];
    print(`${s.name}${also.length ? ` (also ${also.join(', ')})` : ''}: ${s.description}`);
    print(`  arches: ${s.arches().join(', ')}`);
    if (s.imageTypes().length) print(`  image types: ${s.imageTypes().join(', ')}`);
    print('  channels:');
    for (const c of s.channels()) print(`    ${c.name.padEnd(10)} ${c.description}`);
  }
  return EXIT.ok;
}

/** Build the command tree. Exported so tests and joystick's docs can introspect it. */
export function buildProgram(registry: SystemRegistry, setExit: (code: number) => void): Command {
  const program = new Command('plume')
    .description('Publish Linux cloud images to public clouds and keep them there.')
    .version(VERSION, '-V, --version', "print plume's version")
    // `plume release --version 30` is a release selector, `plume --version` is ours.
    .enablePositionalOptions()
    .addHelpText(
      'after',
      '\nExamples:\n  plume systems                      systems, their channels, arches and image types\n  plume release --system NAME --channel CHANNEL --arch ARCH --compose URL\n  plume pre-release ... ; plume release ...   upload privately first, publish later\n  plume release ... --dry-run        print the plan, change nothing\n  plume verify --record release.json check every region and volume type\n  plume amis --record release.json --format websites',
    )
    .showHelpAfterError('(add --help for usage)')
    .exitOverride();

  const run = (fn: () => Promise<number> | number) => async () => setExit(await fn());

  const release = addCommon(addSelectors(new Command('release')))
    .description(
      'upload, register, copy to every region, publish, verify and record a release; resumes if run again',
    )
    .option('-n, --dry-run', 'print the plan (names, regions, tags) and change nothing')
    .option('--record <file>', 'where to write the release record (default: the state directory)')
    .option(
      '--outputs-dir <dir>',
      "where to write the system's extra files, e.g. AMI lists (default: the records directory)",
    )
    .option(
      '--write-image-list <file>',
      "also write the list of images the release made (plume's old image list)",
    )
    .addOption(
      new Option('--output <format>', 'what to print when done').choices(['table', 'json']).default('table'),
    );
  release.action(run(() => doRelease(release.opts(), registry, 'release')));
  program.addCommand(release);

  const pre = addCommon(addSelectors(new Command('pre-release')))
    .description(
      'upload, register and copy to every region, keeping images private (then `plume release` publishes)',
    )
    .option('-n, --dry-run', 'print the plan and change nothing')
    .option('--record <file>', 'where to write the release record')
    .option('--outputs-dir <dir>', "where to write the system's extra files, e.g. AMI lists")
    .option('--write-image-list <file>', 'also write the list of images the release made')
    .addOption(
      new Option('--output <format>', 'what to print when done').choices(['table', 'json']).default('table'),
    );
  pre.action(run(() => doRelease(pre.opts(), registry, 'pre-release')));
  program.addCommand(pre);

  const verify = addCommon(addSelectors(new Command('verify')))
    .description(
      'check every region and volume type of a release; exits non-zero naming what is missing or wrong',
    )
    .option('--record <file>', 'verify the release a record describes')
    .option('--repair', 'repair what is wrong (re-copy, re-publish, re-tag), then check again')
    .addOption(new Option('--output <format>', 'report format').choices(['table', 'json']).default('table'));
  verify.action(
    run(() => doVerify(verify.opts(), registry, verify.opts<{ repair?: boolean }>().repair ?? false)),
  );
  program.addCommand(verify);

  const amis = addCommon(addSelectors(new Command('amis')))
    .description("print the images of a release: a table, the record as JSON, or the websites' JSON")
    .option('--record <file>', 'read the release from a record file instead of the state database')
    .option(
      '--format <format>',
      'table, json, websites, or an output file of the system (e.g. all.json)',
      'table',
    );
  amis.action(run(() => doAmis(amis.opts(), registry)));
  program.addCommand(amis);

  const pruneCmd = addCommon(new Command('prune'))
    .description(
      "deprecate and delete the images of a system's channel its lifecycle policy says should go (docs/lifecycle.md); resumes if run again",
    )
    .option('--system <name>', 'system whose images to prune; see `plume systems`')
    .addOption(new Option('--distro <name>', 'alias of --system').hideHelp())
    .option('-C, --channel <name>', 'channel whose images to prune')
    .option('--arch <arch>', 'only this architecture (default: every one)')
    .option('--image-type <type>', 'only this image type (default: every one)')
    .option(
      '--platform <list>',
      `comma-separated providers, among ${providerNames().join(', ')} (default: every enabled one that can prune)`,
      list,
    )
    .option('--base-region <region>', 'region asked for the list of regions')
    .option('--regions <list>', 'comma-separated regions to prune in (default: config, or all)', list)
    .option('--aws-profile <name>', "AWS credentials profile (default: the SDK's default chain)")
    .option('--aws-credentials <file>', 'AWS shared credentials file (not readable by group or others)')
    .option('--gce-json-key <file>', "GCE: a service account's JSON key (not readable by group or others)")
    .option(
      '--azure-profile <file>',
      "Azure: a service principal's credentials file (not readable by group or others)",
    )
    .option('-n, --dry-run', 'print what would be deprecated and deleted, where and why; change nothing')
    .option('--now <time>', 'evaluate the policy as of this ISO time (default: now)')
    .addOption(new Option('--output <format>', 'what to print').choices(['table', 'json']).default('table'));
  pruneCmd.action(run(() => doPrune(pruneCmd.opts(), registry)));
  program.addCommand(pruneCmd);

  const status = addCommon(new Command('status'))
    .description('list recent releases from the state database')
    .option('--limit <n>', 'how many', '20')
    .addOption(new Option('--output <format>', 'format').choices(['table', 'json']).default('table'));
  status.action(run(() => doStatus(status.opts(), registry)));
  program.addCommand(status);

  const systems = new Command('systems')
    .description('list systems (built in and defined in the config file), their channels and arches')
    .option('-c, --config <file>', 'plume config file (TOML)');
  systems.action(run(() => doSystems(systems.opts(), registry)));
  program.addCommand(systems);
  return program;
}

export async function main(argv: string[], registry: SystemRegistry = builtinSystems()): Promise<number> {
  let code: number = EXIT.ok;
  const program = buildProgram(registry, (c) => (code = c));
  try {
    await program.parseAsync(argv);
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return EXIT.ok;
      return EXIT.usage;
    }
    process.stderr.write(`plume: error: ${errorMessage(err)}\n`);
    return exitCodeFor(err);
  }
}
