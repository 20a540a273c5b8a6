import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/** A server an emulator runs as a child process (moto_server, Azurite) on a 127.0.0.1 port. */
export interface ChildServer {
  readonly port: number;
  readonly endpoint: string;
  readonly running: boolean;
  /** The last lines it printed, for diagnostics. */
  output(): string;
  stop(): Promise<void>;
}

export interface StartChildOptions {
  /** Named in errors. */
  name: string;
  /** The executable and its arguments for a given port. */
  command: string;
  args(port: number): string[];
  env?: NodeJS.ProcessEnv;
  /** Working directory (default: this process's). */
  cwd?: string;
  /** True once the server at `endpoint` answers as it should. */
  ready(endpoint: string): Promise<boolean>;
  /** How long to wait for `ready` (two cores shared with other test workers: be generous). */
  timeoutMs: number;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

// The server runs under a tiny shell that also watches its own stdin: when this Node process dies, even by
// SIGKILL, the pipe closes, `read` returns and the server is killed. No child outlives the run that started it.
// (Background jobs of a non-interactive shell get /dev/null as stdin, hence the copy on fd 3.)
const WATCHDOG = 'exec 3<&0; "$@" & m=$!; (read _ <&3; kill $m 2>/dev/null) & wait $m';

class RunningChild implements ChildServer {
  private exited: Promise<void>;
  private alive = true;
  private readonly tail: string[] = [];

  constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly opts: StartChildOptions,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      this.alive = false;
      this.killGroup('SIGKILL'); // the stdin watcher, if the server died on its own
    });
    // Servers log every request: drain the pipes (keeping a little for diagnostics) so they never block.
    const keep = (chunk: Buffer) => {
      this.tail.push(...chunk.toString('utf8').split('\n').filter(Boolean));
      if (this.tail.length > 40) this.tail.splice(0, this.tail.length - 40);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    process.once('exit', this.onExit);
  }

  get endpoint(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.alive;
  }

  output(): string {
    return this.tail.join('\n');
  }

  private readonly onExit = () => this.killGroup('SIGKILL');

  private killGroup(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // already gone
    }
  }

  async waitReady(): Promise<void> {
    const deadline = Date.now() + this.opts.timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`${this.opts.name} exited before answering:\n${this.output()}`);
      if (await this.opts.ready(this.endpoint).catch(() => false)) return;
      await sleep(100);
    }
    throw new Error(
      `${this.opts.name} did not answer on ${this.endpoint} within ${this.opts.timeoutMs} ms:\n${this.output()}`,
    );
  }

  async stop(): Promise<void> {
    process.off('exit', this.onExit);
    if (this.alive) {
      this.killGroup('SIGTERM');
      const gone = await Promise.race([this.exited.then(() => true), sleep(5000).then(() => false)]);
      if (!gone) {
        this.killGroup('SIGKILL');
        await this.exited;
      }
    }
    this.killGroup('SIGKILL');
    this.child.stdin?.destroy();
  }
}

/**
 * Start a server as a child process on a free 127.0.0.1 port and wait until it answers. A port taken
 * between choosing and binding is retried with another.
 */
export async function startChild(opts: StartChildOptions): Promise<ChildServer> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const child = spawn('sh', ['-c', WATCHDOG, `${opts.name}-watchdog`, opts.command, ...opts.args(port)], {
      detached: true, // its own process group, so stop() can signal the server and the watcher together
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? process.env,
      cwd: opts.cwd,
    });
    const server = new RunningChild(port, child, opts);
    try {
      await server.waitReady();
      return server;
    } catch (e) {
      lastError = e;
      const stillRunning = server.running;
      await server.stop().catch(() => undefined);
      if (stillRunning) break; // it started but never answered: another port will not help
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}

/**
 * startChild in a private temporary directory of its own (named after `prefix`), removed when the child
 * stops or fails to start: whatever the server writes lands nowhere else.
 */
export async function startChildInTempDir(
  prefix: string,
  opts: (dir: string) => StartChildOptions,
): Promise<ChildServer> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    const child = await startChild(opts(dir));
    return {
      port: child.port,
      endpoint: child.endpoint,
      get running() {
        return child.running;
      },
      output: () => child.output(),
      async stop() {
        await child.stop();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}
