import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startEmulator, type Emulator, type EmulatorOptions } from '../../tools/emulator/index.js';
import { startGcpEmulator, type GcpEmulator } from '../../tools/emulator/gcp/index.js';
import {
  startAzureEmulator,
  type AzureEmulator,
  type AzureEmulatorOptions,
} from '../../tools/emulator/azure/index.js';
import { azureConfigSection, gcpConfigSection, writeAzureAccess } from '../../tools/emulator/plume-config.js';
import { emulatorEnv } from '../../tools/reliability/joystick.js';
import { iamAction } from './iam.js';
import { serveDirectory, type FileServer } from '../../tools/compose/http-server.js';
import {
  writeSampleCompose,
  type SampleCompose,
  type SampleComposeSpec,
} from '../../tools/compose/sample-compose.js';

export const REPO = new URL('../../', import.meta.url).pathname;

/** Environment for anything that talks to the emulator: fake credentials, the endpoint, no SDK notice. */
export const awsEnv = emulatorEnv;

/** For the suite's IAM check (test/support/aws-actions.ts): the actions this world's emulator saw. */
function recordActions(emulator: Emulator): void {
  const dir = process.env.PLUME_AWS_ACTIONS_DIR;
  if (!dir) return;
  const actions = [...new Set(emulator.calls().map(iamAction))];
  writeFileSync(join(dir, `${process.pid}-${randomUUID()}.json`), JSON.stringify(actions));
}

/** The bucket GCE targets stage their archives in, in the world's Google Cloud emulator. */
export const GCP_BUCKET = 'plume-images';

export interface World {
  dir: string;
  emulator: Emulator;
  /** With `gcp`: the Google Cloud emulator, and a `[gcp]` section in the config pointing at it. */
  gcp?: GcpEmulator;
  files: FileServer;
  env: Record<string, string>;
  configPath: string;
  /** The state database the config names: set it before writeConfig for a fresh journal. */
  statePath: string;
  recordsDir: string;
  /** With `azure`: the Azure emulator, and the service principal's credentials file plume is given. */
  azure?: { emulator: AzureEmulator; profilePath: string; regions: string[] };
  /** Write (or rewrite) the plume config file; `azureExtra` goes in its [azure] section. */
  writeConfig(extra?: string, regions?: string[], azureExtra?: string): Promise<void>;
  compose(spec?: Partial<SampleComposeSpec>): Promise<SampleCompose & { url: string }>;
  close(): Promise<void>;
}

/** `plume release` (or `pre-release`) of a Fedora Cloud compose, with the world's config: what most tests run. */
export function fedoraCloudArgs(
  world: Pick<World, 'configPath'>,
  composeUrl: string,
  { verb = 'release', arch = 'x86_64' }: { verb?: 'release' | 'pre-release'; arch?: string } = {},
): string[] {
  return [
    verb,
    '--system',
    'fedora',
    '--channel',
    'cloud',
    '--arch',
    arch,
    '--compose',
    composeUrl,
    '--config',
    world.configPath,
  ];
}

/** The emulator, a compose host and a plume config in a temporary directory. */
export async function startWorld(
  opts: {
    emulator?: EmulatorOptions;
    regions?: string[];
    /** Start the Google Cloud emulator too, and configure [gcp] for it. */
    gcp?: boolean;
    /** Start the Azure emulator too, and configure [azure] for it (regions: the gallery's first). */
    azure?: boolean | (AzureEmulatorOptions & { regions?: string[] });
  } = {},
): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), 'plume-world-'));
  const emulator = await startEmulator(opts.emulator);
  const azure = opts.azure ? await startAzureWorld(dir, opts.azure === true ? {} : opts.azure) : undefined;
  const gcp = opts.gcp ? await startGcpEmulator() : undefined;
  gcp?.createBucket(GCP_BUCKET);
  const gcpSection = gcp ? worldGcpSection(gcp) : '';
  const files = await serveDirectory(join(dir, 'composes'));
  const configPath = join(dir, 'plume.toml');
  const statePath = join(dir, 'state.db');
  const recordsDir = join(dir, 'releases');
  const world: World = {
    dir,
    emulator,
    ...(gcp ? { gcp } : {}),
    files,
    env: { ...awsEnv(emulator.endpoint), ...(azure ? { NODE_EXTRA_CA_CERTS: azure.caPath } : {}) },
    ...(azure
      ? { azure: { emulator: azure.emulator, profilePath: azure.profilePath, regions: azure.regions } }
      : {}),
    configPath,
    statePath,
    recordsDir,
    async writeConfig(
      extra = '',
      regions = opts.regions ?? ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'ap-southeast-2'],
      azureExtra = '',
    ) {
      await writeFile(
        configPath,
        `[aws]
base_region = "${regions[0]}"
regions = ${JSON.stringify(regions)}
endpoint = "${emulator.endpoint}"
poll_min_ms = 20
poll_max_ms = 200
image_wait_minutes = 1
snapshot_wait_minutes = 1
max_attempts = 6
upload_concurrency = 8
${extra}
${gcpSection}
[source]
allowed_hosts = ["127.0.0.1"]
attempts = 3
idle_timeout_seconds = 10

[state]
path = "${world.statePath}"
records_dir = "${recordsDir}"
${azure ? worldAzureSection(azure, azureExtra) : ''}`,
      );
    },
    async compose(spec = {}) {
      const c = await writeSampleCompose({ dir: join(dir, 'composes'), ...spec });
      return { ...c, url: `${files.url}/${c.composePath}` };
    },
    async close() {
      await files.close();
      recordActions(emulator);
      await emulator.stop();
      await gcp?.stop();
      await azure?.emulator.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
  await world.writeConfig();
  return world;
}

interface AzureWorld {
  emulator: AzureEmulator;
  profilePath: string;
  caPath: string;
  regions: string[];
}

/**
 * The Azure emulator for a world: plume reaches it with a service principal's credentials file (what
 * `--azure-profile` takes: the emulator's Entra ID and Resource Manager, and the storage account's key),
 * and trusts its certificate through NODE_EXTRA_CA_CERTS, as it would a private CA.
 */
async function startAzureWorld(
  dir: string,
  opts: AzureEmulatorOptions & { regions?: string[] },
): Promise<AzureWorld> {
  const { regions, ...options } = opts;
  const emulator = await startAzureEmulator({ retryAfterSeconds: 0, replicationMs: 0, ...options });
  const { profilePath, caPath } = await writeAzureAccess(emulator, dir);
  return {
    emulator,
    profilePath,
    caPath,
    regions: regions ?? [emulator.arm.location, 'westus2', 'northeurope'],
  };
}

/** The `[gcp]` section (or `[TABLE]`, e.g. joystick's `consumer_config.plume.gcp`) for a world's emulator. */
export function worldGcpSection(gcp: GcpEmulator, table = 'gcp'): string {
  return gcpConfigSection(
    gcp,
    GCP_BUCKET,
    `upload_chunk_mib = 1
poll_min_ms = 20
poll_max_ms = 200
operation_wait_minutes = 1
max_attempts = 4
retry_base_ms = 50`,
    table,
  );
}

/**
 * The `[azure]` section (or `[TABLE]`, e.g. joystick's `consumer_config.plume.azure`) for a world's Azure
 * emulator, with `extra` lines in it.
 */
export function worldAzureSection(
  a: Pick<AzureWorld, 'emulator' | 'profilePath' | 'regions'>,
  extra = '',
  table = 'azure',
): string {
  return azureConfigSection(
    a.emulator,
    a,
    a.regions,
    `poll_min_ms = 20
poll_max_ms = 200
operation_wait_minutes = 0.1
max_attempts = 4
retry_base_ms = 20
retry_max_ms = 200
upload_concurrency = 4
${extra}`,
    table,
  );
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Start the built CLI as a person would, with the world's environment; `done` resolves when it exits. */
export function startCli(
  bin: 'plume' | 'joystick',
  args: string[],
  env: Record<string, string>,
  opts: { timeoutMs?: number } = {},
) {
  const child = spawn(process.execPath, [join(REPO, 'bin', `${bin}.js`), ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 300_000);
  const done = new Promise<RunResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  return { child, done, output: () => ({ stdout, stderr }) };
}

/** Run the built CLI to the end. */
export function runCli(
  bin: 'plume' | 'joystick',
  args: string[],
  env: Record<string, string>,
  opts: { timeoutMs?: number } = {},
): Promise<RunResult> {
  return startCli(bin, args, env, opts).done;
}
