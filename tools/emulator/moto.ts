import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

export interface MotoServer {
  readonly port: number;
  readonly endpoint: string;
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartMotoOptions {
  /** How long to wait for moto to answer (default 60 s: two cores shared with other test workers). */
  timeoutMs?: number;
  /** The moto_server executable (default `moto_server` on PATH). */
  command?: string;
}

async function freePort(): Promise<number> {
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

// moto runs under a tiny shell that also watches its own stdin: when this Node process dies, even by
// SIGKILL, the pipe closes, `read` returns and moto is killed. No moto outlives the test run that started it.
// (Background jobs of a non-interactive shell get /dev/null as stdin, hence the copy on fd 3.)
const WATCHDOG = 'exec 3<&0; "$1" -H 127.0.0.1 -p "$2" & m=$!; (read _ <&3; kill $m 2>/dev/null) & wait $m';

class RunningMoto implements MotoServer {
  private exited: Promise<void>;
  private alive = true;
  private readonly tail: string[] = [];

  constructor(
    readonly port: number,
    private readonly child: ChildProcess,
    private readonly tmp: string,
  ) {
    this.exited = new Promise((resolve) => child.once('exit', () => resolve()));
    void this.exited.then(() => {
      this.alive = false;
      this.killGroup('SIGKILL'); // the stdin watcher, if moto died on its own
    });
    // werkzeug logs every request: drain the pipes (keeping a little for diagnostics) so moto never blocks.
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

  async waitReady(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (!this.alive) throw new Error(`moto_server exited before answering:\n${this.output()}`);
      try {
        const res = await fetch(`${this.endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        if (res.status < 500) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(
      `moto_server did not answer on ${this.endpoint} within ${timeoutMs} ms:\n${this.output()}`,
    );
  }

  async reset(): Promise<void> {
    const res = await fetch(`${this.endpoint}/moto-api/reset`, { method: 'POST' });
    await res.arrayBuffer();
    if (!res.ok) throw new Error(`moto reset answered HTTP ${res.status}`);
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
    rmSync(this.tmp, { recursive: true, force: true });
  }
}

/**
 * Start moto_server on a free 127.0.0.1 port, without its ~1,200 built-in AMIs, and wait until it answers.
 * A port taken between choosing and binding is retried with another.
 */
export async function startMoto(opts: StartMotoOptions = {}): Promise<MotoServer> {
  const command = opts.command ?? 'moto_server';
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    const tmp = mkdtempSync(join(tmpdir(), 'plume-moto-'));
    const amis = join(tmp, 'amis.json');
    writeFileSync(amis, '[]');
    const port = await freePort();
    const child = spawn('sh', ['-c', WATCHDOG, 'moto-watchdog', command, String(port)], {
      detached: true, // its own process group, so stop() can signal moto and the watcher together
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, MOTO_AMIS_PATH: amis },
    });
    const moto = new RunningMoto(port, child, tmp);
    try {
      await moto.waitReady(opts.timeoutMs ?? 60_000);
      return moto;
    } catch (e) {
      lastError = e;
      const stillRunning = moto.running;
      await moto.stop().catch(() => undefined);
      if (stillRunning) break; // it started but never answered: another port will not help
    }
  }
  throw lastError instanceof Error ? lastError : new Error(String(lastError));
}
