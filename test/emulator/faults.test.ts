import { CompleteSnapshotCommand, StartSnapshotCommand } from '@aws-sdk/client-ebs';
import {
  CopyImageCommand,
  DescribeImagesCommand,
  DescribeRegionsCommand,
  RegisterImageCommand,
} from '@aws-sdk/client-ec2';
import {
  CreateBucketCommand,
  GetObjectCommand,
  HeadObjectCommand,
  PutObjectCommand,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { GetCallerIdentityCommand } from '@aws-sdk/client-sts';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startEmulator, type Emulator } from '../../tools/emulator/index.js';
import {
  attemptsOf,
  block,
  ebs,
  ec2,
  putBlock,
  rejection,
  s3,
  statusOf,
  sts,
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

async function registeredImage(name = 'fedora-41'): Promise<string> {
  const client = ebs(emu.endpoint);
  const { snapshotId } = await writeSnapshot(client, 1, [0]);
  await client.send(new CompleteSnapshotCommand({ SnapshotId: snapshotId, ChangedBlocksCount: 1 }));
  const out = await ec2(emu.endpoint).send(
    new RegisterImageCommand({
      Name: name,
      Architecture: 'x86_64',
      VirtualizationType: 'hvm',
      RootDeviceName: '/dev/sda1',
      BlockDeviceMappings: [{ DeviceName: '/dev/sda1', Ebs: { SnapshotId: snapshotId } }],
    }),
  );
  return out.ImageId!;
}

describe('fault injection', () => {
  it('throttles EC2 and the SDK retry recovers', async () => {
    const id = emu.addFault({ service: 'ec2', operation: 'DescribeRegions', kind: 'throttle', times: 2 });
    const out = await ec2(emu.endpoint).send(new DescribeRegionsCommand({}));
    expect(out.Regions?.length).toBeGreaterThan(0);
    expect(out.$metadata.attempts).toBe(3);
    expect(emu.faultStats()).toEqual([expect.objectContaining({ id, matched: 3, fired: 2 })]);
    expect(emu.calls().map((c) => [c.operation, c.status, c.fault])).toEqual([
      ['DescribeRegions', 503, 'throttle'],
      ['DescribeRegions', 503, 'throttle'],
      ['DescribeRegions', 200, undefined],
    ]);
  });

  it('gives each service its own throttling error, all classified as throttling', async () => {
    emu.addFault({ kind: 'throttle' });
    const ec2Err = await rejection(
      ec2(emu.endpoint, { maxAttempts: 1 }).send(new DescribeRegionsCommand({})),
    );
    expect([ec2Err.name, statusOf(ec2Err)]).toEqual(['RequestLimitExceeded', 503]);
    const ebsErr = await rejection(
      ebs(emu.endpoint, { maxAttempts: 1 }).send(new StartSnapshotCommand({ VolumeSize: 1 })),
    );
    expect([ebsErr.name, statusOf(ebsErr)]).toEqual(['ThrottlingException', 429]);
    expect(ebsErr.message).toBe('Rate exceeded');
    const s3Err = await rejection(
      s3(emu.endpoint, { maxAttempts: 1 }).send(new CreateBucketCommand({ Bucket: 'images' })),
    );
    expect([s3Err.name, statusOf(s3Err)]).toEqual(['SlowDown', 503]);
    const stsErr = await rejection(
      sts(emu.endpoint, { maxAttempts: 1 }).send(new GetCallerIdentityCommand({})),
    );
    expect([stsErr.name, statusOf(stsErr)]).toEqual(['Throttling', 400]);
    expect(emu.calls().map((c) => `${c.service}:${c.operation}`)).toEqual([
      'ec2:DescribeRegions',
      'ebs:StartSnapshot',
      's3:CreateBucket',
      'sts:GetCallerIdentity',
    ]);

    // ...and retried: one throttle each, then success.
    emu.clearFaults();
    for (const service of ['ebs', 's3', 'sts']) emu.addFault({ service, kind: 'throttle', times: 1 });
    const snap = await ebs(emu.endpoint).send(new StartSnapshotCommand({ VolumeSize: 1 }));
    expect(snap.$metadata.attempts).toBe(2);
    const bucket = await s3(emu.endpoint).send(new CreateBucketCommand({ Bucket: 'images' }));
    expect(bucket.$metadata.attempts).toBe(2);
    const me = await sts(emu.endpoint).send(new GetCallerIdentityCommand({}));
    expect(me.$metadata.attempts).toBe(2);
  });

  it('answers access-denied at once, without retries', async () => {
    emu.addFault({ kind: 'access-denied' });
    const ec2Err = await rejection(ec2(emu.endpoint).send(new DescribeImagesCommand({ Owners: ['self'] })));
    expect([ec2Err.name, statusOf(ec2Err), attemptsOf(ec2Err)]).toEqual(['UnauthorizedOperation', 403, 1]);
    const ebsErr = await rejection(ebs(emu.endpoint).send(new StartSnapshotCommand({ VolumeSize: 1 })));
    expect([ebsErr.name, statusOf(ebsErr), attemptsOf(ebsErr)]).toEqual(['AccessDeniedException', 403, 1]);
    expect(ebsErr.Reason).toBe('UNAUTHORIZED_ACCOUNT');
    const s3Err = await rejection(s3(emu.endpoint).send(new CreateBucketCommand({ Bucket: 'images' })));
    expect([s3Err.name, statusOf(s3Err), attemptsOf(s3Err)]).toEqual(['AccessDenied', 403, 1]);
    expect(emu.calls()).toHaveLength(3);
  });

  it('retries server errors', async () => {
    emu.addFault({ service: 'ec2', kind: 'server-error', times: 1 });
    const out = await ec2(emu.endpoint).send(new DescribeRegionsCommand({}));
    expect(out.$metadata.attempts).toBe(2);
    emu.addFault({ service: 'ec2', kind: 'server-error' });
    const err = await rejection(ec2(emu.endpoint, { maxAttempts: 2 }).send(new DescribeRegionsCommand({})));
    expect([err.name, statusOf(err), attemptsOf(err)]).toEqual(['InternalError', 500, 2]);
    emu.clearFaults();
    emu.addFault({ service: 'ebs', kind: 'server-error' });
    const ebsErr = await rejection(
      ebs(emu.endpoint, { maxAttempts: 1 }).send(new StartSnapshotCommand({ VolumeSize: 1 })),
    );
    expect([ebsErr.name, statusOf(ebsErr)]).toEqual(['InternalServerException', 500]);
  });

  it('drops connections before forwarding: the SDK retries, the call happened once', async () => {
    emu.addFault({ service: 'ebs', operation: 'StartSnapshot', kind: 'drop', times: 1 });
    const out = await ebs(emu.endpoint).send(new StartSnapshotCommand({ VolumeSize: 1 }));
    expect(out.$metadata.attempts).toBe(2);
    expect(emu.calls().map((c) => [c.status, c.fault])).toEqual([
      [0, 'drop'],
      [200, undefined],
    ]);
    emu.addFault({ service: 'ec2', kind: 'drop' });
    const err = await rejection(ec2(emu.endpoint, { maxAttempts: 1 }).send(new DescribeRegionsCommand({})));
    expect(err.code).toBe('ECONNRESET');
  });

  it('drops large bodies too: PutSnapshotBlock and S3 PutObject are retried by the SDK', async () => {
    const client = ebs(emu.endpoint);
    const { snapshotId } = await writeSnapshot(client, 1, []);
    emu.addFault({ operation: 'PutSnapshotBlock', kind: 'drop', times: 1 });
    emu.addFault({ operation: 'PutSnapshotBlock', kind: 'drop-after', times: 1 });
    const put = await putBlock(client, snapshotId, 3, block(3, 524288));
    expect(put.$metadata.attempts).toBe(3);
    // Dropped before: never reached moto. Dropped after: written, then written again by the retry.
    expect(emu.snapshotStats(snapshotId)).toMatchObject({ blocksPut: 2, blockIndexes: [3] });

    const bucket = s3(emu.endpoint);
    await bucket.send(new CreateBucketCommand({ Bucket: 'images' }));
    emu.addFault({ operation: 'PutObject', kind: 'drop', times: 1 });
    const out = await bucket.send(
      new PutObjectCommand({ Bucket: 'images', Key: 'disk.raw', Body: Buffer.alloc(3 * 1024 * 1024, 1) }),
    );
    expect(out.$metadata.attempts).toBe(2);
    const head = await bucket.send(new HeadObjectCommand({ Bucket: 'images', Key: 'disk.raw' }));
    expect(head.ContentLength).toBe(3 * 1024 * 1024);
  });

  it('drop-after on CopyImage: a retry with the same ClientToken yields one image', async () => {
    const source = await registeredImage();
    emu.addFault({ operation: 'CopyImage', kind: 'drop-after', times: 1 });
    const west = ec2(emu.endpoint, { region: 'eu-west-1', maxAttempts: 1 });
    const input = {
      SourceImageId: source,
      SourceRegion: 'us-east-1',
      Name: 'fedora-41',
      ClientToken: 'copy-1',
    };
    const err = await rejection(west.send(new CopyImageCommand(input)));
    expect(err.code).toBe('ECONNRESET');
    const retried = await west.send(new CopyImageCommand(input));
    const images = await west.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(images.Images?.map((i) => i.ImageId)).toEqual([retried.ImageId]);
    expect(
      emu
        .calls()
        .filter((c) => c.operation === 'CopyImage')
        .map((c) => [c.status, c.fault]),
    ).toEqual([
      [200, 'drop-after'],
      [200, undefined],
    ]);
  });

  it('drop-after on CopyImage: the SDK retry (its own ClientToken) also yields one image', async () => {
    const source = await registeredImage();
    emu.addFault({ operation: 'CopyImage', kind: 'drop-after', times: 1 });
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    const out = await west.send(
      new CopyImageCommand({ SourceImageId: source, SourceRegion: 'us-east-1', Name: 'fedora-41' }),
    );
    expect(out.$metadata.attempts).toBe(2);
    const images = await west.send(new DescribeImagesCommand({ Owners: ['self'] }));
    expect(images.Images?.map((i) => i.ImageId)).toEqual([out.ImageId]);
  });

  it('delays calls by latencyMs and combines latency with other faults', async () => {
    emu.addFault({ operation: 'DescribeRegions', kind: 'latency', latencyMs: 300, times: 1 });
    const t0 = Date.now();
    await ec2(emu.endpoint).send(new DescribeRegionsCommand({}));
    expect(Date.now() - t0).toBeGreaterThanOrEqual(290);
    expect(emu.calls()[0]?.durationMs).toBeGreaterThanOrEqual(290);

    emu.addFault({ operation: 'DescribeRegions', kind: 'latency', latencyMs: 100 });
    emu.addFault({ operation: 'DescribeRegions', kind: 'access-denied' });
    const t1 = Date.now();
    const err = await rejection(ec2(emu.endpoint).send(new DescribeRegionsCommand({})));
    expect(err.name).toBe('UnauthorizedOperation');
    expect(Date.now() - t1).toBeGreaterThanOrEqual(90);
  });

  it('selects by region, skips the first calls and counts', async () => {
    const id = emu.addFault({ region: 'eu-west-1', kind: 'access-denied', skip: 2, times: 1 });
    const west = ec2(emu.endpoint, { region: 'eu-west-1' });
    await ec2(emu.endpoint).send(new DescribeRegionsCommand({}));
    await west.send(new DescribeRegionsCommand({}));
    await west.send(new DescribeRegionsCommand({}));
    expect((await rejection(west.send(new DescribeRegionsCommand({})))).name).toBe('UnauthorizedOperation');
    await west.send(new DescribeRegionsCommand({}));
    expect(emu.faultStats()).toEqual([expect.objectContaining({ id, matched: 4, fired: 1 })]);
    expect(emu.removeFault(id)).toBe(true);
    expect(emu.faultStats()).toEqual([]);
  });

  it('fires probabilistic faults from a seeded RNG, the same way after every reset', async () => {
    const pattern = async () => {
      emu.addFault({ operation: 'DescribeRegions', kind: 'access-denied', probability: 0.5 });
      const client = ec2(emu.endpoint, { maxAttempts: 1 });
      const out: boolean[] = [];
      for (let i = 0; i < 12; i++) {
        out.push(
          await client.send(new DescribeRegionsCommand({})).then(
            () => true,
            () => false,
          ),
        );
      }
      return out;
    };
    const first = await pattern();
    expect(first.some((ok) => ok)).toBe(true);
    expect(first.some((ok) => !ok)).toBe(true);
    await emu.reset();
    expect(await pattern()).toEqual(first);
  });

  it('answers an arbitrary error code when asked', async () => {
    emu.addFault({ service: 'ebs', kind: 'error', code: 'RequestThrottledException', status: 400, times: 1 });
    const out = await ebs(emu.endpoint).send(new StartSnapshotCommand({ VolumeSize: 1 }));
    expect(out.$metadata.attempts).toBe(2);
    emu.addFault({ service: 'ec2', kind: 'error', code: 'InvalidParameterValue', message: 'nope' });
    const err = await rejection(ec2(emu.endpoint).send(new DescribeRegionsCommand({})));
    expect([err.name, err.message, statusOf(err), attemptsOf(err)]).toEqual([
      'InvalidParameterValue',
      'nope',
      400,
      1,
    ]);
  });

  it('names S3 operations like the S3 API, multipart uploads included', async () => {
    const client = s3(emu.endpoint);
    await client.send(new CreateBucketCommand({ Bucket: 'images' }));
    await client.send(new PutObjectCommand({ Bucket: 'images', Key: 'small.txt', Body: 'hello' }));
    const body = Buffer.alloc(11 * 1024 * 1024, 7);
    await new Upload({
      client,
      params: { Bucket: 'images', Key: 'big.raw', Body: body },
      partSize: 5 * 1024 * 1024,
    }).done();
    const head = await client.send(new HeadObjectCommand({ Bucket: 'images', Key: 'big.raw' }));
    expect(head.ContentLength).toBe(body.length);
    const got = await client.send(new GetObjectCommand({ Bucket: 'images', Key: 'small.txt' }));
    expect(await got.Body!.transformToString()).toBe('hello');
    const missing = await rejection(client.send(new HeadObjectCommand({ Bucket: 'images', Key: 'nope' })));
    expect(missing.name).toBe('NotFound');

    expect(emu.calls().map((c) => c.operation)).toEqual([
      'CreateBucket',
      'PutObject',
      'CreateMultipartUpload',
      'UploadPart',
      'UploadPart',
      'UploadPart',
      'CompleteMultipartUpload',
      'HeadObject',
      'GetObject',
      'HeadObject',
    ]);
    expect(emu.calls().every((c) => c.service === 's3')).toBe(true);
  });
});
