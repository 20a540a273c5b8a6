import {
  CompleteSnapshotCommand,
  GetSnapshotBlockCommand,
  ListSnapshotBlocksCommand,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DeleteSnapshotCommand, DescribeSnapshotsCommand } from '@aws-sdk/client-ec2';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { EmulatorProxy } from '../../tools/emulator/proxy.js';
import { Upstream } from '../../tools/emulator/upstream.js';
import {
  attemptsOf,
  block,
  ebs,
  ec2,
  linearChecksum,
  putBlock,
  rejection,
  sha256,
  statusOf,
  writeSnapshot,
} from './helpers.js';

let emu: Emulator;

beforeAll(async () => {
  emu = await startEmulator();
});
afterAll(async () => {
  await emu?.stop();
});
beforeEach(async () => {
  await emu.reset();
});

async function snapshotState(id: string): Promise<string | undefined> {
  const out = await ec2(emu.endpoint).send(new DescribeSnapshotsCommand({ SnapshotIds: [id] }));
  return out.Snapshots?.[0]?.State;
}

describe('EBS direct through the emulator', () => {
  it('reports AWS block size, keeps a started snapshot pending and completes it with a LINEAR checksum', async () => {
    const client = ebs(emu.endpoint);
    const started = await client.send(new StartSnapshotCommand({ VolumeSize: 1, Description: 'root' }));
    expect(started.BlockSize).toBe(524288);
    const id = started.SnapshotId!;
    expect(await snapshotState(id)).toBe('pending');

    const blocks = new Map<number, Buffer>();
    for (const i of [5, 0, 2047]) {
      const data = block(i, 524288);
      blocks.set(i, data);
      const put = await putBlock(client, id, i, data);
      expect(put.Checksum).toBe(sha256(data).toString('base64'));
    }
    expect(await snapshotState(id)).toBe('pending');

    const done = await client.send(
      new CompleteSnapshotCommand({
        SnapshotId: id,
        ChangedBlocksCount: 3,
        Checksum: linearChecksum(blocks),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    expect(done.Status).toBe('completed');
    expect(await snapshotState(id)).toBe('completed');

    expect(emu.snapshotStats(id)).toMatchObject({
      snapshotId: id,
      volumeSize: 1,
      blockSize: 524288,
      blocksPut: 3,
      bytesPut: 3 * 524288,
      blockIndexes: [0, 5, 2047],
      rejectedPuts: 0,
      completed: true,
      status: 'completed',
    });

    const listed = await client.send(new ListSnapshotBlocksCommand({ SnapshotId: id }));
    expect(listed.BlockSize).toBe(524288);
    expect(listed.Blocks?.map((b) => b.BlockIndex)).toEqual([0, 5, 2047]);

    const got = await client.send(
      new GetSnapshotBlockCommand({
        SnapshotId: id,
        BlockIndex: 5,
        BlockToken: listed.Blocks![1]!.BlockToken,
      }),
    );
    const bytes = Buffer.from(await got.BlockData!.transformToByteArray());
    expect(bytes.equals(blocks.get(5)!)).toBe(true);
  });

  it('refuses a block whose checksum does not match its data, without retrying', async () => {
    const client = ebs(emu.endpoint);
    const { snapshotId } = await writeSnapshot(client, 1, []);
    const data = block(1, 524288);
    const err = await rejection(
      client.send(
        new PutSnapshotBlockCommand({
          SnapshotId: snapshotId,
          BlockIndex: 1,
          BlockData: data,
          DataLength: data.length,
          Checksum: sha256(block(2, 524288)).toString('base64'),
          ChecksumAlgorithm: 'SHA256',
        }),
      ),
    );
    expect(err.name).toBe('ValidationException');
    expect(statusOf(err)).toBe(400);
    expect(attemptsOf(err)).toBe(1);
    expect(err.Reason).toBe('INVALID_BLOCK');
    expect(err.message).toMatch(/checksum/i);
    expect(emu.snapshotStats(snapshotId)).toMatchObject({ blocksPut: 0, rejectedPuts: 1, blockIndexes: [] });
  });

  it('refuses a wrong DataLength, a short block and an index beyond the volume', async () => {
    const client = ebs(emu.endpoint);
    const { snapshotId } = await writeSnapshot(client, 1, []);
    const data = block(0, 524288);
    const checksum = sha256(data).toString('base64');
    const send = (index: number, body: Buffer, length: number, sum = checksum) =>
      rejection(
        client.send(
          new PutSnapshotBlockCommand({
            SnapshotId: snapshotId,
            BlockIndex: index,
            BlockData: body,
            DataLength: length,
            Checksum: sum,
            ChecksumAlgorithm: 'SHA256',
          }),
        ),
      );
    expect((await send(0, data, 1000)).name).toBe('ValidationException');
    const short = data.subarray(0, 4096);
    expect((await send(0, short, short.length, sha256(short).toString('base64'))).message).toMatch(/524288/);
    // 1 GiB / 512 KiB = 2048 blocks: 2047 is the last.
    expect((await send(2048, data, data.length)).message).toMatch(/out of range/);
    expect(emu.snapshotStats(snapshotId)?.rejectedPuts).toBe(3);
  });

  it('refuses CompleteSnapshot with a wrong block count or a wrong LINEAR checksum', async () => {
    const client = ebs(emu.endpoint);
    const { snapshotId, blocks } = await writeSnapshot(client, 1, [0, 1, 3]);
    const complete = (count: number, checksum?: string) =>
      client.send(
        new CompleteSnapshotCommand({
          SnapshotId: snapshotId,
          ChangedBlocksCount: count,
          ...(checksum
            ? { Checksum: checksum, ChecksumAlgorithm: 'SHA256', ChecksumAggregationMethod: 'LINEAR' }
            : {}),
        }),
      );
    const wrongCount = await rejection(complete(4));
    expect(wrongCount.name).toBe('ValidationException');
    expect(wrongCount.message).toMatch(/ChangedBlocksCount 4/);

    // Digests in insertion order instead of ascending index order: a classic mistake.
    const unordered = new Map([...blocks.entries()].reverse());
    const wrongOrder = sha256(Buffer.concat([...unordered.values()].map(sha256))).toString('base64');
    const wrongSum = await rejection(complete(3, wrongOrder));
    expect(wrongSum.name).toBe('ValidationException');
    expect(statusOf(wrongSum)).toBe(400);
    expect(await snapshotState(snapshotId)).toBe('pending');

    expect((await complete(3, linearChecksum(blocks))).Status).toBe('completed');
    // Completing again (a retry whose first answer was lost) succeeds.
    expect((await complete(3, linearChecksum(blocks))).Status).toBe('completed');
  });

  it('keeps a completed snapshot pending for pendingMs, per region when set so', async () => {
    emu.setPendingMs(400, 'us-east-1');
    const client = ebs(emu.endpoint);
    const { snapshotId } = await writeSnapshot(client, 1, [0]);
    const done = await client.send(
      new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 1 }),
    );
    expect(done.Status).toBe('pending');
    expect(await snapshotState(snapshotId)).toBe('pending');
    expect(emu.snapshotStats(snapshotId)).toMatchObject({ completed: true, status: 'pending' });
    await new Promise((r) => setTimeout(r, 450));
    expect(await snapshotState(snapshotId)).toBe('completed');

    // Another region is not held.
    const west = ebs(emu.endpoint, { region: 'eu-west-1' });
    const other = await writeSnapshot(west, 1, [0]);
    await west.send(new CompleteSnapshotCommand({ SnapshotId: other.snapshotId, ChangedBlocksCount: 1 }));
    const described = await ec2(emu.endpoint, { region: 'eu-west-1' }).send(
      new DescribeSnapshotsCommand({ SnapshotIds: [other.snapshotId] }),
    );
    expect(described.Snapshots?.[0]?.State).toBe('completed');
  });

  it('answers a repeated StartSnapshot ClientToken with the same snapshot', async () => {
    const client = ebs(emu.endpoint);
    const a = await client.send(new StartSnapshotCommand({ VolumeSize: 2, ClientToken: 'token-1' }));
    const b = await client.send(new StartSnapshotCommand({ VolumeSize: 2, ClientToken: 'token-1' }));
    expect(b.SnapshotId).toBe(a.SnapshotId);
    const c = await rejection(
      client.send(new StartSnapshotCommand({ VolumeSize: 3, ClientToken: 'token-1' })),
    );
    expect(c.name).toBe('ConflictException');
    const all = await ec2(emu.endpoint).send(new DescribeSnapshotsCommand({ OwnerIds: ['self'] }));
    expect(all.Snapshots).toHaveLength(1);
  });

  it('answers unknown snapshots with ResourceNotFoundException and forgets deleted ones', async () => {
    const client = ebs(emu.endpoint);
    const missing = await rejection(putBlock(client, 'snap-0123456789abcdef0', 0, block(0, 524288)));
    expect(missing.name).toBe('ResourceNotFoundException');
    expect(statusOf(missing)).toBe(404);

    const { snapshotId } = await writeSnapshot(client, 1, [0]);
    await client.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 1 }));
    await ec2(emu.endpoint).send(new DeleteSnapshotCommand({ SnapshotId: snapshotId }));
    expect(emu.snapshotStats(snapshotId)).toBeUndefined();
  });

  it('pages ListSnapshotBlocks like AWS', async () => {
    const client = ebs(emu.endpoint);
    const indexes = Array.from({ length: 150 }, (_, i) => 149 - i);
    const { snapshotId } = await writeSnapshot(client, 1, indexes);
    const first = await client.send(
      new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 100 }),
    );
    expect(first.Blocks).toHaveLength(100);
    expect(first.Blocks![0]!.BlockIndex).toBe(0);
    expect(first.NextToken).toBeTruthy();
    const second = await client.send(
      new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, MaxResults: 100, NextToken: first.NextToken }),
    );
    expect(second.Blocks?.map((b) => b.BlockIndex)).toEqual(Array.from({ length: 50 }, (_, i) => 100 + i));
    expect(second.NextToken).toBeUndefined();
    const from = await client.send(
      new ListSnapshotBlocksCommand({ SnapshotId: snapshotId, StartingBlockIndex: 140 }),
    );
    expect(from.Blocks).toHaveLength(10);
  });

  it('can report another block size (a second proxy over the same moto)', async () => {
    const proxy = new EmulatorProxy({
      upstream: new Upstream(Number(new URL(emu.motoEndpoint).port)),
      blockSize: 512,
      pendingMs: 0,
      seed: 1,
    });
    const port = await proxy.listen();
    try {
      const client = ebs(`http://127.0.0.1:${port}`);
      const { snapshotId, blockSize, blocks } = await writeSnapshot(client, 1, [0, 1]);
      expect(blockSize).toBe(512);
      const done = await client.send(
        new CompleteSnapshotCommand({
          SnapshotId: snapshotId,
          ChangedBlocksCount: 2,
          Checksum: linearChecksum(blocks),
          ChecksumAlgorithm: 'SHA256',
          ChecksumAggregationMethod: 'LINEAR',
        }),
      );
      expect(done.Status).toBe('completed');
    } finally {
      await proxy.close();
    }
  });

  it('streams many 512 KiB blocks with little overhead', async () => {
    const client = ebs(emu.endpoint);
    const started = await client.send(new StartSnapshotCommand({ VolumeSize: 1 }));
    const id = started.SnapshotId!;
    const data = block(7, 524288);
    const count = 400;
    let next = 0;
    const t0 = Date.now();
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) await putBlock(client, id, next++, data);
      }),
    );
    const ms = Date.now() - t0;
    expect(emu.snapshotStats(id)).toMatchObject({ blocksPut: count, bytesPut: count * 524288 });
    expect(emu.calls().filter((c) => c.operation === 'PutSnapshotBlock')).toHaveLength(count);
    console.log(
      `${count} PutSnapshotBlock of 512 KiB through the proxy: ${ms} ms (${Math.round((count / ms) * 1000)}/s)`,
    );
  });
});
