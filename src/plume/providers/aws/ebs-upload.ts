import { createHash, randomUUID } from 'node:crypto';
import { CompleteSnapshotCommand, PutSnapshotBlockCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import PQueue from 'p-queue';
import { PlumeError } from '../../../shared/errors.js';
import type { DiskImage, ReadSummary } from '../../source/image.js';
import type { ProviderContext } from '../types.js';
import { send, type AwsClients } from './clients.js';

export interface SnapshotUpload {
  region: string;
  description: string;
  tags: Record<string, string>;
  /** Blocks in flight at once. */
  concurrency: number;
  /** Minutes AWS waits for the next block before cancelling the snapshot. */
  idleTimeoutMinutes?: number;
}

export interface UploadResult {
  snapshotId: string;
  volumeGiB: number;
  summary: ReadSummary;
  bytesSent: number;
  blocksSent: number;
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function toTags(tags: Record<string, string>) {
  return Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
}

/**
 * Write a raw disk straight into an EBS snapshot with the EBS direct APIs: no S3 staging, no temporary
 * file. Blocks are cut at the size StartSnapshot returns, all-zero blocks are never sent, and a bounded
 * pool keeps a fixed number of blocks in flight, so memory stays flat whatever the image size. The
 * snapshot is completed only after the source checksum has been verified; on any failure it is deleted
 * by the caller, so no half-written snapshot outlives a failed upload.
 */
export async function uploadSnapshot(
  clients: AwsClients,
  image: DiskImage,
  opts: SnapshotUpload,
  ctx: ProviderContext,
  onStarted: (snapshotId: string) => void,
): Promise<UploadResult> {
  const ebs = clients.ebs(opts.region);
  const started = await send(
    clients,
    'ebs:StartSnapshot',
    opts.region,
    (o) =>
      ebs.send(
        new StartSnapshotCommand({
          VolumeSize: image.volumeGiB,
          Description: opts.description,
          Tags: toTags(opts.tags),
          ClientToken: randomUUID(),
          Timeout: opts.idleTimeoutMinutes ?? 60,
        }),
        o,
      ),
    ctx.signal,
  );
  const snapshotId = started.SnapshotId!;
  const blockSize = started.BlockSize!;
  onStarted(snapshotId);
  ctx.log.info({ snapshotId, blockSize, volumeGiB: image.volumeGiB }, 'snapshot started');

  const abort = new AbortController();
  const signal = ctx.signal ? AbortSignal.any([ctx.signal, abort.signal]) : abort.signal;
  const reader = image.read(blockSize, signal);
  const digests = new Map<number, Buffer>();
  const queue = new PQueue({ concurrency: opts.concurrency });
  let failure: unknown;
  let bytesSent = 0;
  const total = image.rawBytes ?? image.volumeGiB * 2 ** 30;
  let lastReport = 0;
  const report = (force = false) => {
    const now = Date.now();
    if (!force && now - lastReport < 500) return;
    lastReport = now;
    ctx.emit({
      type: 'upload-progress',
      rawBytes: reader.stats.bytes,
      totalBytes: total,
      blocksSent: digests.size,
      zeroBlocks: reader.stats.zeroBlocks,
      bytesSent,
    });
  };

  const put = async (index: number, data: Buffer) => {
    const sha = createHash('sha256').update(data).digest();
    const command = new PutSnapshotBlockCommand({
      SnapshotId: snapshotId,
      BlockIndex: index,
      BlockData: data,
      DataLength: data.length,
      Checksum: sha.toString('base64'),
      ChecksumAlgorithm: 'SHA256',
    });
    // SigV4 signs the payload's SHA-256, which the SDK would compute a second time over the same 512 KiB;
    // the signer takes it from this header when present (the request on the wire is unchanged).
    command.middlewareStack.add(
      (next) => (args) => {
        (args.request as { headers: Record<string, string> }).headers['x-amz-content-sha256'] =
          sha.toString('hex');
        return next(args);
      },
      { step: 'build', name: 'plumeKnownPayloadHash' },
    );
    await send(clients, 'ebs:PutSnapshotBlock', opts.region, (o) => ebs.send(command, o), signal);
    digests.set(index, sha);
    bytesSent += data.length;
    report();
  };

  try {
    for await (const block of reader.blocks) {
      // Backpressure: wait for room before reading further, so at most ~2x concurrency blocks are held.
      await queue.onSizeLessThan(opts.concurrency);
      if (failure) break;
      queue
        // The buffer goes back to the reader once the block is stored (or has failed for good).
        .add(() => put(block.index, block.data).finally(() => block.release?.()))
        .catch((err: unknown) => {
          failure ??= err;
          abort.abort(err);
        });
    }
    await queue.onIdle();
    if (failure) throw asError(failure);
    const summary = reader.finish();
    report(true);

    // LINEAR: SHA-256 over the per-block SHA-256 digests in ascending block order.
    const linear = createHash('sha256');
    for (const index of [...digests.keys()].sort((a, b) => a - b)) linear.update(digests.get(index)!);
    await send(
      clients,
      'ebs:CompleteSnapshot',
      opts.region,
      (o) =>
        ebs.send(
          new CompleteSnapshotCommand({
            SnapshotId: snapshotId,
            ChangedBlocksCount: digests.size,
            Checksum: linear.digest('base64'),
            ChecksumAlgorithm: 'SHA256',
            ChecksumAggregationMethod: 'LINEAR',
          }),
          o,
        ),
      ctx.signal,
    );
    return { snapshotId, volumeGiB: image.volumeGiB, summary, bytesSent, blocksSent: digests.size };
  } catch (err) {
    // Record the root cause before aborting: the in-flight puts then fail with AbortErrors (which read
    // as "timed out", a retryable failure) and must not take its place, or a corrupt image would be
    // reported as a slow network and retried.
    failure ??= err;
    abort.abort(err);
    queue.clear();
    await queue.onIdle();
    const cause = failure;
    throw cause instanceof PlumeError
      ? cause
      : new PlumeError(
          'provider',
          `upload to snapshot ${snapshotId} failed: ${(cause as Error).message}`,
          'run again',
          { cause },
        );
  }
}
