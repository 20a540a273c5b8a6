import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AMQP_URL } from './broker.js';

export const REPO = new URL('../../', import.meta.url).pathname;

export interface JoystickToml {
  path: string;
  prefix: string;
  queue: string;
  /** The client-provided connection name RabbitMQ shows: how a test finds joystick's connection. */
  connectionName: string;
  database: string;
  awsEndpoint: string;
  regions: string[];
  volumeTypes?: string[];
  arches?: string[];
  channels?: string[];
  /** Default: the machine's RabbitMQ; a TCP proxy's address to break the network in between. */
  amqpUrl?: string;
  maxParallelJobs?: number;
  leaseSeconds?: number;
  maxJobAttempts?: number;
  prefetch?: number;
  /** More `[consumer_config]` lines. */
  extra?: string;
  /** More `[consumer_config.plume.aws]` lines. */
  awsExtra?: string;
  /** More `[consumer_config.plume.source]` lines. */
  sourceExtra?: string;
  /** More tables at the end (other providers' `[consumer_config.plume.PROVIDER]` sections). */
  tables?: string;
}

/** A fedora-messaging config.toml for `joystick run` against the emulator and a compose host on 127.0.0.1. */
export async function writeJoystickToml(c: JoystickToml): Promise<string> {
  await writeFile(
    c.path,
    `amqp_url = "${c.amqpUrl ?? AMQP_URL}"
topic_prefix = "${c.prefix}"
publish_exchange = "amq.topic"

[client_properties]
app = "${c.connectionName}"

[qos]
prefetch_count = ${c.prefetch ?? 10}

[queues.${c.queue}]
durable = true
auto_delete = false
exclusive = false
arguments = {}

[[bindings]]
queue = "${c.queue}"
exchange = "amq.topic"
routing_keys = ["${c.prefix}.pungi.compose.status.change"]

[consumer_config]
system = "fedora"
database = "${c.database}"
http_listen = "127.0.0.1:0"
channels = ${JSON.stringify(c.channels ?? ['cloud', 'branched', 'rawhide', 'updates'])}
arches = ${JSON.stringify(c.arches ?? ['x86_64', 'aarch64'])}
max_parallel_jobs = ${c.maxParallelJobs ?? 2}
max_job_attempts = ${c.maxJobAttempts ?? 3}
poll_seconds = 0.2
lease_seconds = ${c.leaseSeconds ?? 5}
metadata_retry_minutes = 0.05
status_url = "http://status.example/status"
${c.extra ?? ''}

[consumer_config.plume.aws]
base_region = "${c.regions[0]}"
regions = ${JSON.stringify(c.regions)}
volume_types = ${JSON.stringify(c.volumeTypes ?? ['gp3', 'gp2'])}
endpoint = "${c.awsEndpoint}"
poll_min_ms = 20
poll_max_ms = 200
image_wait_minutes = 1
snapshot_wait_minutes = 1
max_attempts = 6
upload_concurrency = 8
${c.awsExtra ?? ''}

[consumer_config.plume.source]
allowed_hosts = ["127.0.0.1"]
attempts = 3
idle_timeout_seconds = 10
${c.sourceExtra ?? ''}
${c.tables ?? ''}`,
  );
  return c.path;
}

/** Fake credentials and the emulator endpoint, as the tests' world sets them. */
export function emulatorEnv(endpoint: string): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: 'AKIAEMULATOR0000TEST',
    AWS_SECRET_ACCESS_KEY: 'emulator-secret-key-0123456789abcdef',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/** One `joystick run` process (the built CLI, as systemd starts it), its JSON log kept in memory and a file. */
export class JoystickProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private log = '';
  private readonly file: WriteStream | undefined;

  constructor(
    readonly config: string,
    env: Record<string, string>,
    opts: { logFile?: string; name?: string } = {},
  ) {
    this.child = spawn(process.execPath, [join(REPO, 'bin', 'joystick.js'), 'run', '--config', config], {
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    this.file = opts.logFile ? createWriteStream(opts.logFile, { flags: 'a' }) : undefined;
    this.child.stderr!.on('data', (d: Buffer) => {
      this.log += d.toString();
      this.file?.write(d);
    });
    this.exited = new Promise((resolve) =>
      this.child.on('close', (code, signal) => {
        this.file?.end();
        resolve({ code, signal });
      }),
    );
  }

  get pid(): number {
    return this.child.pid!;
  }

  get running(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  stderr(): string {
    return this.log;
  }

  /** Log lines (JSON objects) so far, optionally only those whose msg matches. */
  lines(msg?: RegExp): Record<string, unknown>[] {
    const out: Record<string, unknown>[] = [];
    for (const line of this.log.split('\n')) {
      if (!line.startsWith('{')) continue;
      try {
        const o = JSON.parse(line) as Record<string, unknown>;
        if (!msg || msg.test(String(o.msg))) out.push(o);
      } catch {
        // a line cut by kill -9
      }
    }
    return out;
  }

  count(msg: RegExp): number {
    return this.lines(msg).length;
  }

  /** Wait until the log has a line whose msg matches (the `n`th one), or fail with the log's tail. */
  async waitLog(msg: RegExp, timeoutMs = 60_000, n = 1): Promise<Record<string, unknown>> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const found = this.lines(msg);
      if (found.length >= n) return found[n - 1]!;
      if (!this.running) throw new Error(`joystick exited before logging ${msg}: ${this.tail()}`);
      if (Date.now() > end)
        throw new Error(`joystick did not log ${msg} within ${timeoutMs} ms: ${this.tail()}`);
      await sleep(50);
    }
  }

  /** Wait until it consumes from the broker; returns its status page URL. */
  async ready(timeoutMs = 60_000): Promise<string> {
    await this.waitLog(/^consuming$/, timeoutMs);
    return this.statusUrl();
  }

  /** The base URL of its status page, health and metrics ('' before it listens). */
  statusUrl(): string {
    const url = this.lines(/status page/)[0]?.url;
    return typeof url === 'string' ? url : '';
  }

  /** How long /healthz takes to answer, in ms (the process must stay responsive whatever it waits for). */
  async healthzMs(timeoutMs = 5000): Promise<number> {
    const t0 = Date.now();
    const res = await fetch(`${this.statusUrl()}/healthz`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.text();
    if (res.status !== 200) throw new Error(`/healthz answered ${res.status}`);
    return Date.now() - t0;
  }

  tail(lines = 30): string {
    return this.log.split('\n').slice(-lines).join('\n');
  }

  /** Whether it was told to stop (kill9 or stop): any other exit is a crash. */
  get stopRequested(): boolean {
    return this.requested;
  }

  private requested = false;

  /** kill -9: no shutdown code runs, as when the machine or the OOM killer takes the process. */
  async kill9(): Promise<void> {
    this.requested = true;
    if (this.running) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** SIGTERM, as systemd stops it; SIGKILL after `graceMs`. */
  async stop(graceMs = 30_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    this.requested = true;
    if (this.running) this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    const result = await this.exited;
    clearTimeout(timer);
    return result;
  }
}
