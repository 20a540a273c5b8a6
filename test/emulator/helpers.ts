import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createInterface } from 'node:readline';
import { EBSClient, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import { EC2Client } from '@aws-sdk/client-ec2';
import { S3Client } from '@aws-sdk/client-s3';
import { STSClient } from '@aws-sdk/client-sts';

export const credentials = { accessKeyId: 'AKIDEMULATORTEST', secretAccessKey: 'not-a-secret' };

export interface ClientOptions {
  region?: string;
  maxAttempts?: number;
}

export function ec2(endpoint: string, opts: ClientOptions = {}): EC2Client {
  return new EC2Client({
    endpoint,
    credentials,
    region: opts.region ?? 'us-east-1',
    maxAttempts: opts.maxAttempts,
  });
}

export function ebs(endpoint: string, opts: ClientOptions = {}): EBSClient {
  return new EBSClient({
    endpoint,
    credentials,
    region: opts.region ?? 'us-east-1',
    maxAttempts: opts.maxAttempts,
  });
}

export function s3(endpoint: string, opts: ClientOptions = {}): S3Client {
  return new S3Client({
    endpoint,
    credentials,
    region: opts.region ?? 'us-east-1',
    maxAttempts: opts.maxAttempts,
    forcePathStyle: true,
  });
}

export function sts(endpoint: string, opts: ClientOptions = {}): STSClient {
  return new STSClient({
    endpoint,
    credentials,
    region: opts.region ?? 'us-east-1',
    maxAttempts: opts.maxAttempts,
  });
}

export function sha256(data: Buffer): Buffer {
  return createHash('sha256').update(data).digest();
}

/** A block whose bytes depend on its index, so blocks are told apart on the way back. */
export function block(index: number, size: number): Buffer {
  const buf = Buffer.alloc(size);
  buf.writeUInt32BE(index, 0);
  buf.fill(index % 251, 4);
  return buf;
}

/** The LINEAR aggregate checksum AWS expects in CompleteSnapshot. */
export function linearChecksum(blocks: Map<number, Buffer>): string {
  const hash = createHash('sha256');
  for (const i of [...blocks.keys()].sort((a, b) => a - b)) hash.update(sha256(blocks.get(i)!));
  return hash.digest('base64');
}

export async function putBlock(client: EBSClient, snapshotId: string, index: number, data: Buffer) {
  return client.send(
    new PutSnapshotBlockCommand({
      SnapshotId: snapshotId,
      BlockIndex: index,
      BlockData: data,
      DataLength: data.length,
      Checksum: sha256(data).toString('base64'),
      ChecksumAlgorithm: 'SHA256',
    }),
  );
}

/** A snapshot written through EBS direct with the given blocks, not completed. */
export async function writeSnapshot(
  client: EBSClient,
  volumeSize: number,
  indexes: number[],
): Promise<{ snapshotId: string; blockSize: number; blocks: Map<number, Buffer> }> {
  const started = await client.send(new StartSnapshotCommand({ VolumeSize: volumeSize }));
  const snapshotId = started.SnapshotId!;
  const blockSize = started.BlockSize!;
  const blocks = new Map<number, Buffer>();
  for (const i of indexes) {
    const data = block(i, blockSize);
    blocks.set(i, data);
    await putBlock(client, snapshotId, i, data);
  }
  return { snapshotId, blockSize, blocks };
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(p: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await p;
  } catch (e) {
    return e as Error & Record<string, unknown>;
  }
  throw new Error('expected the call to fail, it succeeded');
}

export function statusOf(err: Record<string, unknown>): number | undefined {
  return (err.$metadata as { httpStatusCode?: number } | undefined)?.httpStatusCode;
}

export function attemptsOf(err: Record<string, unknown>): number | undefined {
  return (err.$metadata as { attempts?: number } | undefined)?.attempts;
}

export async function waitFor<T>(
  fn: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export interface Standalone<T> {
  child: ChildProcess;
  /** What the emulator printed on its first line: its endpoints. */
  ready: T;
  exited: Promise<number | null>;
}

/** Start an emulator's standalone entry (main.ts) in another process and read the line it prints when ready. */
export async function standalone<T>(main: string, args: string[] = []): Promise<Standalone<T>> {
  const child = spawn(process.execPath, ['--import', 'tsx', main, ...args], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const first = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout }).once('line', resolve);
    child.once('exit', (code) =>
      reject(new Error(`emulator exited (${code}) before printing its endpoints`)),
    );
  });
  return { child, exited, ready: JSON.parse(first) as T };
}

/** True once nothing answers at `endpoint` any more (bounded wait). */
export async function unreachable(endpoint: string): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      await fetch(endpoint, { signal: AbortSignal.timeout(500) }).then((r) => r.arrayBuffer());
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
