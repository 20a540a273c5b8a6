import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { constants } from 'node:fs';
import { mkdtemp, open, rm, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Readable, Writable } from 'node:stream';
import { PlumeError } from '../../shared/errors.js';
import type { PipeSource } from './block-reader.js';

export type Compression = 'xz' | 'bzip2' | 'gzip' | 'none';

/**
 * Decompression runs in the standard tools as child processes. Measured here, an in-process xz stream ran at
 * 0.41x of `xz -dc`; the tool itself is the limit we are judged against, and `-T0` decodes multi-block
 * files on every core. Arguments are fixed arrays: nothing from the input reaches a shell.
 */
const COMMANDS: Record<Exclude<Compression, 'none'>, readonly string[]> = {
  xz: ['xz', '--decompress', '--stdout', '--threads=0'],
  bzip2: ['bzip2', '--decompress', '--stdout'],
  gzip: ['gzip', '--decompress', '--stdout'],
};

export function compressionFromName(path: string): Compression {
  if (path.endsWith('.xz')) return 'xz';
  if (path.endsWith('.bz2')) return 'bzip2';
  if (path.endsWith('.gz')) return 'gzip';
  return 'none';
}

/** A running decompressor: fed from `input`, its output wherever it was started to write. */
interface Tool {
  stdout: NodeJS.ReadableStream | null;
  /** Resolves once the tool exited cleanly after all input; throws why it did not. */
  finished(): Promise<void>;
  kill(): void;
}

function startTool(
  input: AsyncIterable<Buffer>,
  kind: Exclude<Compression, 'none'>,
  stdout: 'pipe' | number,
): Tool {
  const [cmd, ...args] = COMMANDS[kind];
  const child = spawn(cmd!, args, { stdio: ['pipe', stdout, 'pipe'] });
  const { stdin, stderr: errors } = child as typeof child & { stdin: Writable; stderr: Readable };
  const spawned = once(child, 'spawn').catch((err: NodeJS.ErrnoException) => {
    throw new PlumeError(
      'internal',
      `cannot run ${cmd}: ${err.code === 'ENOENT' ? 'not installed' : err.message}`,
      `install ${cmd} (package ${cmd === 'xz' ? 'xz-utils or xz' : cmd})`,
    );
  });
  const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
  let stderr = '';
  errors.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-2000)));

  let feedError: Error | undefined;
  const feed = (async () => {
    try {
      await spawned;
      for await (const chunk of input) {
        if (!stdin.write(chunk)) await once(stdin, 'drain');
      }
      stdin.end();
    } catch (err) {
      // EPIPE means the tool stopped reading (it found the data corrupt); its own error says why.
      if ((err as NodeJS.ErrnoException).code !== 'EPIPE')
        feedError = err instanceof Error ? err : new Error(String(err));
      child.kill('SIGKILL');
    }
  })();
  stdin.on('error', () => {
    /* reported through the exit status */
  });

  return {
    stdout: child.stdout,
    async finished() {
      await spawned;
      await feed;
      const code = await exited;
      if (feedError) throw feedError;
      if (code !== 0) {
        const said = stderr.trim().replace(/^[^:]+: \(stdin\): /, '');
        throw new PlumeError(
          'input',
          `the image is not a valid ${kind} stream (${said || `exit status ${code}`})`,
          'the file is truncated or corrupt: check the source and run again',
        );
      }
    },
    kill() {
      child.kill('SIGKILL');
    },
  };
}

/**
 * Decompress a stream of chunks. The returned generator throws if the compressed data is corrupt or
 * truncated, after all the output the tool produced; it kills the tool if the consumer stops early.
 */
export async function* decompress(input: AsyncIterable<Buffer>, kind: Compression): AsyncGenerator<Buffer> {
  if (kind === 'none') {
    yield* input;
    return;
  }
  const tool = startTool(input, kind, 'pipe');
  let finished = false;
  try {
    for await (const chunk of tool.stdout!) yield chunk as Buffer;
    await tool.finished();
    finished = true;
  } finally {
    if (!finished) {
      tool.kill();
      await tool.finished().catch(() => undefined);
    }
  }
}

const execFileAsync = promisify(execFile);

/**
 * Start the decompressor writing into a FIFO and return the FIFO's read end, for a reader that reads it
 * synchronously off the main thread (see block-reader.ts). Node's own child pipes deliver the tool's 8 KiB
 * writes one event each, which costs more than the decompression of the zeros in them. `paced` opens the
 * read end non-blocking, for a reader that paces itself. Returns undefined where a FIFO cannot be made;
 * the caller then uses `decompress`.
 */
export async function decompressToFd(
  input: AsyncIterable<Buffer>,
  kind: Exclude<Compression, 'none'>,
  paced: boolean,
): Promise<PipeSource | undefined> {
  let writer: FileHandle;
  let reader: FileHandle;
  const dir = await mkdtemp(join(tmpdir(), 'plume-')).catch(() => undefined);
  if (!dir) return undefined;
  try {
    const path = join(dir, 'out');
    await execFileAsync('mkfifo', ['-m', '600', path]);
    // The tool must get a write-only end: with a read end of its own (O_RDWR) it would never see SIGPIPE
    // and would outlive a killed plume, blocked on a full FIFO. Opening a FIFO blocks until the other end
    // is open, except a non-blocking read end, so: that first, then the writer, then (for a blocking
    // reader) a blocking read end, which opens at once now that a writer exists. Our writer is closed once
    // the tool has its copy, so the reader sees end-of-file exactly when the tool exits.
    const first = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
    writer = await open(path, constants.O_WRONLY);
    // A paced reader never waits in read() (see block-reader.ts), so its end stays non-blocking.
    if (paced) reader = first;
    else {
      reader = await open(path, constants.O_RDONLY);
      await first.close();
    }
  } catch {
    return undefined;
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
  let tool: Tool;
  try {
    tool = startTool(input, kind, writer.fd);
  } finally {
    await writer.close();
  }
  return {
    fd: reader.fd,
    paced,
    finished: () => tool.finished(),
    kill: () => tool.kill(),
    close: () => reader.close(),
  };
}
