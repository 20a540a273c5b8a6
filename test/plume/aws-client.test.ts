import { createHash } from 'node:crypto';
import {
  CompleteSnapshotCommand,
  EBSClient,
  PutSnapshotBlockCommand,
  StartSnapshotCommand,
} from '@aws-sdk/client-ebs';
import { DescribeRegionsCommand } from '@aws-sdk/client-ec2';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  AwsClients,
  DEFAULT_CLIENT_SETTINGS,
  send,
  type AwsClientSettings,
} from '../../src/plume/providers/aws/clients.js';
import { PlumeError } from '../../src/shared/errors.js';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import { awsEnv } from '../support/world.js';

/**
 * The AWS client behaviour every plume call relies on, against the emulator's injected faults: what is
 * retried and how long, what fails at once, and the timeouts.
 */
const BLOCK = 64 * 1024;
const BLOCKS = 128;
let emu: Emulator;
const open: { destroy(): void }[] = [];

function clients(over: Partial<AwsClientSettings> = {}): AwsClients {
  const c = new AwsClients({ ...DEFAULT_CLIENT_SETTINGS, endpoint: emu.endpoint, ...over });
  open.push(c);
  return c;
}

const ops = (operation: string) => emu.calls().filter((c) => c.operation === operation);

function blockData(index: number): Buffer {
  const data = Buffer.alloc(BLOCK, index % 251);
  data.writeUInt32BE(index, 0);
  return data;
}

/** Put BLOCKS blocks with `width` calls in flight; every call's outcome, in block order. */
async function putAll(ebs: EBSClient, snapshotId: string, width: number) {
  const outcomes: { ok: boolean; code?: string; attempts?: number }[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let i = next++; i < BLOCKS; i = next++) {
        const data = blockData(i);
        try {
          await ebs.send(
            new PutSnapshotBlockCommand({
              SnapshotId: snapshotId,
              BlockIndex: i,
              BlockData: data,
              DataLength: data.length,
              Checksum: createHash('sha256').update(data).digest('base64'),
              ChecksumAlgorithm: 'SHA256',
            }),
          );
          outcomes[i] = { ok: true };
        } catch (err) {
          const e = err as { name?: string; $metadata?: { attempts?: number } };
          outcomes[i] = { ok: false, code: e.name, attempts: e.$metadata?.attempts };
        }
      }
    }),
  );
  return outcomes;
}

async function startSnapshot(ebs: EBSClient): Promise<string> {
  const res = await ebs.send(new StartSnapshotCommand({ VolumeSize: 1, Timeout: 60 }));
  expect(res.BlockSize).toBe(BLOCK);
  return res.SnapshotId!;
}

beforeAll(async () => {
  emu = await startEmulator({ blockSize: BLOCK });
  // AwsClients takes credentials from the SDK's default chain, as plume does.
  Object.assign(process.env, awsEnv(emu.endpoint));
});
afterEach(() => {
  emu.clearFaults();
  emu.clearCalls();
});
afterAll(async () => {
  for (const c of open) c.destroy();
  await emu?.stop();
});

describe('a throttling storm on PutSnapshotBlock (150 throttles, 64 calls in flight on one client)', () => {
  const storm = () =>
    emu.addFault({ service: 'ebs', operation: 'PutSnapshotBlock', kind: 'throttle', times: 150 });

  it("drains the SDK's standard retry quota: calls give up long before max_attempts", async () => {
    // The SDK's default (`standard`); `adaptive` wraps the same quota in a client-side rate limiter.
    const ebs = new EBSClient({ region: 'us-east-1', endpoint: emu.endpoint, maxAttempts: 10 });
    open.push(ebs);
    const snapshotId = await startSnapshot(ebs);
    storm();
    const outcomes = await putAll(ebs, snapshotId, 64);
    const failed = outcomes.filter((o) => !o.ok);
    // Calls fail on a throttle they had half or more of their attempts left for: the quota refused the
    // retry. (Mostly after 2 or 3 attempts; on a busy machine, where the calls spread out in time and
    // successes refill the quota, one may get a retry or two more before it empties.)
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((o) => o.code === 'ThrottlingException')).toBe(true);
    expect(Math.max(...failed.map((o) => o.attempts ?? 99))).toBeLessThanOrEqual(5);
    console.log(`standard retry mode: ${failed.length} of ${BLOCKS} blocks failed`);
  });

  it("plume's strategy (no shared quota, same backoff base) gets every block through and completes", async () => {
    const c = clients({ maxAttempts: 10, throttleBaseMs: 1000 });
    const ebs = c.ebs('us-east-1');
    const snapshotId = await startSnapshot(ebs);
    storm();
    const outcomes = await putAll(ebs, snapshotId, 64);
    expect(outcomes.filter((o) => !o.ok)).toEqual([]);
    expect(emu.faultStats()[0]!.fired).toBe(150);
    expect(c.retries.THROTTLING).toBe(150);
    const stats = emu.snapshotStats(snapshotId)!;
    expect(stats.blockIndexes).toEqual(Array.from({ length: BLOCKS }, (_, i) => i));
    const linear = createHash('sha256');
    for (let i = 0; i < BLOCKS; i++) linear.update(createHash('sha256').update(blockData(i)).digest());
    await ebs.send(
      new CompleteSnapshotCommand({
        SnapshotId: snapshotId,
        ChangedBlocksCount: BLOCKS,
        Checksum: linear.digest('base64'),
        ChecksumAlgorithm: 'SHA256',
        ChecksumAggregationMethod: 'LINEAR',
      }),
    );
    expect(emu.snapshotStats(snapshotId)!.completed).toBe(true);
  });
});

describe('what is retried', () => {
  const regions = (c: AwsClients) =>
    send(c, 'ec2:DescribeRegions', 'us-east-1', (o) =>
      c.ec2('us-east-1').send(new DescribeRegionsCommand({}), o),
    );

  it('access denied fails at the first attempt, naming the IAM action and the region', async () => {
    const c = clients({ maxAttempts: 6, retryBaseMs: 10 });
    emu.addFault({ service: 'ec2', operation: 'DescribeRegions', kind: 'access-denied' });
    const err = await regions(c).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PlumeError);
    expect((err as PlumeError).kind).toBe('credentials');
    expect((err as PlumeError).retryable).toBe(false);
    expect((err as PlumeError).oneLine()).toBe(
      'AWS refused ec2:DescribeRegions in us-east-1 (UnauthorizedOperation): check the credentials and that their policy allows this action (docs/iam-policy.json)',
    );
    expect(ops('DescribeRegions')).toHaveLength(1);

    emu.addFault({ service: 'ebs', operation: 'StartSnapshot', kind: 'access-denied' });
    const ebsErr = await send(c, 'ebs:StartSnapshot', 'us-east-1', (o) =>
      c.ebs('us-east-1').send(new StartSnapshotCommand({ VolumeSize: 1 }), o),
    ).then(
      () => undefined,
      (e: unknown) => e as PlumeError,
    );
    expect(ebsErr?.message).toBe('AWS refused ebs:StartSnapshot in us-east-1 (AccessDeniedException)');
    expect(ops('StartSnapshot')).toHaveLength(1);
  });

  it('a validation error is not retried; 500s and dropped connections are, up to max_attempts', async () => {
    const c = clients({ maxAttempts: 4, retryBaseMs: 10 });
    emu.addFault({ operation: 'DescribeRegions', kind: 'error', code: 'InvalidParameterValue', times: 1 });
    await expect(regions(c)).rejects.toThrow(
      /ec2:DescribeRegions in us-east-1 failed: InvalidParameterValue/,
    );
    expect(ops('DescribeRegions')).toHaveLength(1);
    emu.clearCalls();

    emu.addFault({ operation: 'DescribeRegions', kind: 'server-error', times: 2 });
    emu.addFault({ operation: 'DescribeRegions', kind: 'drop', times: 1 });
    expect((await regions(c)).Regions!.length).toBeGreaterThan(10);
    expect(ops('DescribeRegions').map((x) => x.status)).toEqual([500, 500, 0, 200]);
    emu.clearCalls();

    emu.addFault({ operation: 'DescribeRegions', kind: 'server-error' });
    await expect(regions(c)).rejects.toThrow(/ec2:DescribeRegions in us-east-1 failed/);
    expect(ops('DescribeRegions')).toHaveLength(4);
  });
});

describe('timeouts', () => {
  it('an attempt that outlasts request_timeout is abandoned and retried', async () => {
    const c = clients({ requestTimeoutMs: 500, retryBaseMs: 10 });
    emu.addFault({ operation: 'DescribeRegions', kind: 'latency', latencyMs: 3000, times: 1 });
    const t0 = Date.now();
    await send(c, 'ec2:DescribeRegions', 'us-east-1', (o) =>
      c.ec2('us-east-1').send(new DescribeRegionsCommand({}), o),
    );
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(c.retries.TRANSIENT).toBe(1);
  });

  it('a PutSnapshotBlock attempt that hangs is retried too', async () => {
    const c = clients({ requestTimeoutMs: 500, retryBaseMs: 10 });
    const ebs = c.ebs('us-east-1');
    const snapshotId = await startSnapshot(ebs);
    emu.addFault({ operation: 'PutSnapshotBlock', kind: 'latency', latencyMs: 3000, times: 1 });
    const data = blockData(7);
    const before = c.retries.TRANSIENT!;
    const t0 = Date.now();
    await send(c, 'ebs:PutSnapshotBlock', 'us-east-1', (o) =>
      ebs.send(
        new PutSnapshotBlockCommand({
          SnapshotId: snapshotId,
          BlockIndex: 7,
          BlockData: data,
          DataLength: data.length,
          Checksum: createHash('sha256').update(data).digest('base64'),
          ChecksumAlgorithm: 'SHA256',
        }),
        o,
      ),
    );
    expect(Date.now() - t0).toBeLessThan(2500);
    expect(c.retries.TRANSIENT).toBe(before + 1);
  });

  it('the whole call, retries and backoff included, ends at call_timeout with a clear error', async () => {
    const c = clients({ callTimeoutMs: 1500, requestTimeoutMs: 60_000, maxAttempts: 30, retryBaseMs: 200 });
    emu.addFault({ operation: 'DescribeRegions', kind: 'server-error' });
    const t0 = Date.now();
    const err = await send(c, 'ec2:DescribeRegions', 'us-east-1', (o) =>
      c.ec2('us-east-1').send(new DescribeRegionsCommand({}), o),
    ).then(
      () => undefined,
      (e: unknown) => e as PlumeError,
    );
    expect(Date.now() - t0).toBeLessThan(3000);
    expect(err?.oneLine()).toBe(
      'ec2:DescribeRegions in us-east-1 timed out: AWS or the network is slow; run again to resume',
    );
    emu.clearFaults();

    // And while an attempt is in flight (no response at all).
    emu.addFault({ operation: 'DescribeRegions', kind: 'latency', latencyMs: 5000 });
    const t1 = Date.now();
    await expect(
      send(c, 'ec2:DescribeRegions', 'us-east-1', (o) =>
        c.ec2('us-east-1').send(new DescribeRegionsCommand({}), o),
      ),
    ).rejects.toThrow(/timed out/);
    expect(Date.now() - t1).toBeLessThan(3000);
  });
});
