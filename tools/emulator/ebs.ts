import { createHash } from 'node:crypto';
import { forwardOf, type Call, type HandlerDeps, type Timing } from './context.js';
import { ebsRoute } from './classify.js';
import { errorReply, jsonReply, type BufferedReply, type ErrorSpec, type Reply } from './replies.js';
import type { SnapshotStats } from './types.js';

const GIB = 1024 ** 3;

interface EbsSnapshot {
  id: string;
  region: string;
  volumeSize: number;
  blockSize: number;
  /** Raw SHA-256 of each block written, by index: what the LINEAR checksum is computed from. */
  digests: Map<number, Buffer>;
  blocksPut: number;
  bytesPut: number;
  rejectedPuts: number;
  completedAt?: number;
}

interface TokenEntry {
  fingerprint: string;
  result: Promise<BufferedReply>;
}

/** What the proxy knows about snapshots written through the EBS direct API. */
export class EbsModel {
  private readonly snapshots = new Map<string, EbsSnapshot>();
  private readonly tokens = new Map<string, TokenEntry>();

  constructor(
    readonly blockSize: number,
    private readonly timing: Timing,
  ) {}

  get(id: string): EbsSnapshot | undefined {
    return this.snapshots.get(id);
  }

  /** What DescribeSnapshots shows; undefined for snapshots not written through EBS direct. */
  status(id: string, now = Date.now()): 'pending' | 'completed' | undefined {
    const snap = this.snapshots.get(id);
    if (!snap) return undefined;
    if (snap.completedAt === undefined) return 'pending';
    return now < snap.completedAt + this.timing.pendingMs(snap.region) ? 'pending' : 'completed';
  }

  stats(id: string): SnapshotStats | undefined {
    const snap = this.snapshots.get(id);
    if (!snap) return undefined;
    return {
      snapshotId: snap.id,
      region: snap.region,
      volumeSize: snap.volumeSize,
      blockSize: snap.blockSize,
      blocksPut: snap.blocksPut,
      bytesPut: snap.bytesPut,
      blockIndexes: [...snap.digests.keys()].sort((a, b) => a - b),
      rejectedPuts: snap.rejectedPuts,
      completed: snap.completedAt !== undefined,
      status: this.status(id) ?? 'pending',
    };
  }

  delete(id: string): void {
    this.snapshots.delete(id);
  }

  reset(): void {
    this.snapshots.clear();
    this.tokens.clear();
  }

  async handle(call: Call, deps: HandlerDeps): Promise<Reply> {
    const route = ebsRoute(call.method, call.url.pathname);
    switch (route.operation) {
      case 'StartSnapshot':
        return this.startSnapshot(call, deps);
      case 'PutSnapshotBlock':
        return this.putBlock(call, deps, route.snapshotId, route.blockIndex);
      case 'CompleteSnapshot':
        return this.complete(call, deps, route.snapshotId);
      case 'ListSnapshotBlocks':
        return this.listBlocks(call, deps, route.snapshotId);
      case 'ListChangedBlocks':
        return this.listChanged(call, deps, route.snapshotId);
      case 'GetSnapshotBlock':
        if (!this.snapshots.has(route.snapshotId)) return notFound(route.snapshotId);
        return deps.upstream.stream(forwardOf(call));
      default:
        return deps.upstream.stream(forwardOf(call));
    }
  }

  private async startSnapshot(call: Call, deps: HandlerDeps): Promise<Reply> {
    let params: Record<string, unknown>;
    try {
      params = JSON.parse(call.body?.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return invalid('The request body is not valid JSON', 'INVALID_PARAMETER_VALUE');
    }
    const volumeSize = params.VolumeSize;
    if (
      typeof volumeSize !== 'number' ||
      !Number.isInteger(volumeSize) ||
      volumeSize < 1 ||
      volumeSize > 65536
    ) {
      return invalid('VolumeSize must be an integer between 1 and 65536', 'INVALID_VOLUME_SIZE');
    }
    // The SDK fills ClientToken itself and resends it on retry: AWS then answers with the first snapshot,
    // it does not start a second one.
    const token = typeof params.ClientToken === 'string' ? params.ClientToken : undefined;
    if (!token) return this.startNew(call, deps, volumeSize);
    const key = `${call.region}\0${token}`;
    const { ClientToken: _omit, ...rest } = params;
    const fingerprint = JSON.stringify(rest);
    const known = this.tokens.get(key);
    if (known) {
      if (known.fingerprint !== fingerprint) {
        return errorReply('ebs', {
          code: 'ConflictException',
          message: 'The request uses the same client token as a previous, but non-identical request.',
          status: 409,
        });
      }
      return known.result;
    }
    const result = this.startNew(call, deps, volumeSize);
    this.tokens.set(key, { fingerprint, result });
    const reply = await result.catch((e: unknown) => {
      this.tokens.delete(key);
      throw e;
    });
    if (reply.status >= 300) this.tokens.delete(key);
    return reply;
  }

  private async startNew(call: Call, deps: HandlerDeps, volumeSize: number): Promise<BufferedReply> {
    const reply = await deps.upstream.buffered(forwardOf(call));
    if (reply.status !== 200) return reply;
    const out = JSON.parse(reply.body.toString('utf8')) as Record<string, unknown>;
    out.BlockSize = this.blockSize;
    const id = String(out.SnapshotId);
    this.snapshots.set(id, {
      id,
      region: call.region,
      volumeSize,
      blockSize: this.blockSize,
      digests: new Map(),
      blocksPut: 0,
      bytesPut: 0,
      rejectedPuts: 0,
    });
    return rewriteJson(reply, out);
  }

  private async putBlock(call: Call, deps: HandlerDeps, id: string, rawIndex: string): Promise<Reply> {
    const snap = this.snapshots.get(id);
    if (!snap) return notFound(id);
    const problem = this.checkBlock(call, snap, rawIndex);
    if (problem) {
      snap.rejectedPuts++;
      return errorReply('ebs', problem);
    }
    const body = call.body ?? Buffer.alloc(0);
    const digest = createHash('sha256').update(body).digest();
    if (digest.toString('base64') !== header(call, 'x-amz-checksum')) {
      snap.rejectedPuts++;
      return errorReply('ebs', {
        code: 'ValidationException',
        message: 'The checksum of the block data does not match the checksum provided',
        status: 400,
        reason: 'INVALID_BLOCK',
      });
    }
    const reply = await deps.upstream.buffered(forwardOf(call));
    if (reply.status < 300) {
      snap.digests.set(Number(rawIndex), digest);
      snap.blocksPut++;
      snap.bytesPut += body.length;
    }
    return reply;
  }

  private checkBlock(call: Call, snap: EbsSnapshot, rawIndex: string): ErrorSpec | undefined {
    const fail = (message: string, reason: string): ErrorSpec => ({
      code: 'ValidationException',
      message,
      status: 400,
      reason,
    });
    if (snap.completedAt !== undefined) {
      return fail(`The snapshot ${snap.id} is not in pending state`, 'INVALID_SNAPSHOT_ID');
    }
    const index = Number(rawIndex);
    const blocks = Math.floor((snap.volumeSize * GIB) / snap.blockSize);
    if (!/^\d+$/.test(rawIndex) || index >= blocks) {
      return fail(
        `Block index ${rawIndex} is out of range: the volume has ${blocks} blocks`,
        'INVALID_BLOCK',
      );
    }
    const length = call.body?.length ?? 0;
    const declared = header(call, 'x-amz-data-length');
    if (declared === undefined || Number(declared) !== length) {
      return fail(
        `DataLength ${declared ?? '(missing)'} does not match the ${length} bytes sent`,
        'INVALID_PARAMETER_VALUE',
      );
    }
    if (length !== snap.blockSize) {
      return fail(`Block data must be exactly ${snap.blockSize} bytes, got ${length}`, 'INVALID_BLOCK');
    }
    if (header(call, 'x-amz-checksum-algorithm') !== 'SHA256') {
      return fail('ChecksumAlgorithm must be SHA256', 'INVALID_PARAMETER_VALUE');
    }
    if (!header(call, 'x-amz-checksum')) return fail('Checksum is required', 'INVALID_PARAMETER_VALUE');
    return undefined;
  }

  private async complete(call: Call, deps: HandlerDeps, id: string): Promise<Reply> {
    const snap = this.snapshots.get(id);
    if (!snap) return notFound(id);
    const fail = (message: string): Reply =>
      errorReply('ebs', {
        code: 'ValidationException',
        message,
        status: 400,
        reason: 'INVALID_PARAMETER_VALUE',
      });

    const changed = header(call, 'x-amz-changedblockscount');
    if (changed === undefined || !/^\d+$/.test(changed)) return fail('ChangedBlocksCount is required');
    if (Number(changed) !== snap.digests.size) {
      return fail(`ChangedBlocksCount ${changed} does not match the ${snap.digests.size} blocks written`);
    }
    const checksum = header(call, 'x-amz-checksum');
    if (checksum !== undefined) {
      if (header(call, 'x-amz-checksum-algorithm') !== 'SHA256')
        return fail('ChecksumAlgorithm must be SHA256');
      if (header(call, 'x-amz-checksum-aggregation-method') !== 'LINEAR') {
        return fail('ChecksumAggregationMethod must be LINEAR');
      }
      if (checksum !== this.linearChecksum(snap)) {
        return fail('The aggregated checksum does not match the checksums of the blocks written');
      }
    }
    // Completing again (a retry after a lost answer) is harmless: the snapshot is already sealed.
    const reply = await deps.upstream.buffered(forwardOf(call));
    if (reply.status >= 300) return reply;
    snap.completedAt ??= Date.now();
    return rewriteJson(reply, { Status: this.status(id) });
  }

  /** SHA-256 over the concatenated raw per-block digests in ascending block order, base64. */
  private linearChecksum(snap: EbsSnapshot): string {
    const hash = createHash('sha256');
    for (const index of [...snap.digests.keys()].sort((a, b) => a - b)) hash.update(snap.digests.get(index)!);
    return hash.digest('base64');
  }

  private async listBlocks(call: Call, deps: HandlerDeps, id: string): Promise<Reply> {
    const snap = this.snapshots.get(id);
    if (!snap) return notFound(id);
    const q = call.url.searchParams;
    const upstreamPath = call.url.pathname; // moto ignores paging; the proxy pages itself
    const reply = await deps.upstream.buffered({ ...forwardOf(call), path: upstreamPath });
    if (reply.status !== 200) return reply;
    const out = JSON.parse(reply.body.toString('utf8')) as { Blocks?: { BlockIndex: string | number }[] };
    let blocks = (out.Blocks ?? [])
      .map((b) => ({ ...b, BlockIndex: Number(b.BlockIndex) }))
      .sort((a, b) => a.BlockIndex - b.BlockIndex);

    let start = Number(q.get('startingBlockIndex') ?? 0);
    const token = q.get('pageToken');
    if (token) {
      const decoded = Number(Buffer.from(token, 'base64url').toString('utf8'));
      if (!Number.isInteger(decoded)) {
        return errorReply('ebs', {
          code: 'ValidationException',
          message: 'The pagination token is invalid',
          status: 400,
          reason: 'INVALID_PAGE_TOKEN',
        });
      }
      start = Math.max(start, decoded);
    }
    const max = Math.min(Math.max(Number(q.get('maxResults') ?? 10000), 100), 10000);
    blocks = blocks.filter((b) => b.BlockIndex >= start);
    const page = blocks.slice(0, max);
    const result: Record<string, unknown> = {
      Blocks: page,
      ExpiryTime: Math.floor(Date.now() / 1000) + 7 * 24 * 3600,
      VolumeSize: snap.volumeSize,
      BlockSize: snap.blockSize,
    };
    const next = blocks[max];
    if (next) result.NextToken = Buffer.from(String(next.BlockIndex), 'utf8').toString('base64url');
    return rewriteJson(reply, result);
  }

  private async listChanged(call: Call, deps: HandlerDeps, id: string): Promise<Reply> {
    if (!this.snapshots.has(id)) return notFound(id);
    const reply = await deps.upstream.buffered(forwardOf(call));
    if (reply.status !== 200) return reply;
    const out = JSON.parse(reply.body.toString('utf8')) as {
      ChangedBlocks?: { BlockIndex: string | number }[];
    };
    const changed = (out.ChangedBlocks ?? [])
      .map((b) => ({ ...b, BlockIndex: Number(b.BlockIndex) }))
      .sort((a, b) => a.BlockIndex - b.BlockIndex);
    return rewriteJson(reply, { ...out, ChangedBlocks: changed, BlockSize: this.blockSize });
  }
}

function header(call: Call, name: string): string | undefined {
  const v = call.req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function invalid(message: string, reason: string): BufferedReply {
  return errorReply('ebs', { code: 'ValidationException', message, status: 400, reason });
}

function notFound(id: string): BufferedReply {
  return errorReply('ebs', {
    code: 'ResourceNotFoundException',
    message: `The snapshot '${id}' does not exist.`,
    status: 404,
    reason: 'SNAPSHOT_NOT_FOUND',
  });
}

function rewriteJson(reply: BufferedReply, value: unknown): BufferedReply {
  return jsonReply(reply.status, value, { ...reply.headers, 'content-type': 'application/json' });
}
