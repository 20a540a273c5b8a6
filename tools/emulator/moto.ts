import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startChild } from './child-server.js';

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

/**
 * Start moto_server on a free 127.0.0.1 port, without its ~1,200 built-in AMIs, and wait until it answers.
 */
export async function startMoto(opts: StartMotoOptions = {}): Promise<MotoServer> {
  const tmp = mkdtempSync(join(tmpdir(), 'plume-moto-'));
  const amis = join(tmp, 'amis.json');
  writeFileSync(amis, '[]');
  let child;
  try {
    child = await startChild({
      name: 'moto_server',
      command: opts.command ?? 'moto_server',
      args: (port) => ['-H', '127.0.0.1', '-p', String(port)],
      env: { ...process.env, MOTO_AMIS_PATH: amis },
      timeoutMs: opts.timeoutMs ?? 60_000,
      ready: async (endpoint) => {
        const res = await fetch(`${endpoint}/moto-api/`, { signal: AbortSignal.timeout(2000) });
        await res.arrayBuffer();
        return res.status < 500;
      },
    });
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  const moto = child;
  return {
    port: moto.port,
    endpoint: moto.endpoint,
    async reset() {
      const res = await fetch(`${moto.endpoint}/moto-api/reset`, { method: 'POST' });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`moto reset answered HTTP ${res.status}`);
    },
    async stop() {
      await moto.stop();
      rmSync(tmp, { recursive: true, force: true });
    },
  };
}
