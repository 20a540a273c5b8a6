import { describe, expect, it } from 'vitest';
import { credentialScope, ebsRoute, s3Operation } from '../../tools/emulator/classify.js';
import { FaultEngine } from '../../tools/emulator/faults.js';
import { filters, flat, globMatch, tagSpecifications, withFilters } from '../../tools/emulator/query.js';

describe('request classification', () => {
  it('reads service and region from the SigV4 credential scope', () => {
    const headers = {
      authorization:
        'AWS4-HMAC-SHA256 Credential=AKID/20250101/eu-central-1/ebs/aws4_request, SignedHeaders=host, Signature=abc',
    };
    expect(credentialScope(headers, new URL('http://x/'))).toEqual({
      accessKeyId: 'AKID',
      region: 'eu-central-1',
      service: 'ebs',
    });
    const presigned = new URL(
      'http://x/b/k?X-Amz-Credential=AKID%2F20250101%2Fus-west-2%2Fs3%2Faws4_request',
    );
    expect(credentialScope({}, presigned)?.region).toBe('us-west-2');
    expect(credentialScope({}, new URL('http://x/'))).toBeUndefined();
  });

  it('names EBS direct operations from method and path', () => {
    expect(ebsRoute('POST', '/snapshots').operation).toBe('StartSnapshot');
    expect(ebsRoute('PUT', '/snapshots/snap-1/blocks/7')).toEqual({
      operation: 'PutSnapshotBlock',
      snapshotId: 'snap-1',
      blockIndex: '7',
    });
    expect(ebsRoute('GET', '/snapshots/snap-1/blocks/7').operation).toBe('GetSnapshotBlock');
    expect(ebsRoute('GET', '/snapshots/snap-1/blocks').operation).toBe('ListSnapshotBlocks');
    expect(ebsRoute('POST', '/snapshots/completion/snap-1').operation).toBe('CompleteSnapshot');
    expect(ebsRoute('GET', '/snapshots/snap-2/changedblocks').operation).toBe('ListChangedBlocks');
  });

  it('names S3 operations like the S3 API', () => {
    const op = (method: string, path: string, headers = {}) =>
      s3Operation(method, new URL(`http://h${path}`), headers);
    expect(op('GET', '/')).toBe('ListBuckets');
    expect(op('PUT', '/b')).toBe('CreateBucket');
    expect(op('GET', '/b?list-type=2')).toBe('ListObjectsV2');
    expect(op('PUT', '/b/k')).toBe('PutObject');
    expect(op('PUT', '/b/k', { 'x-amz-copy-source': '/b/j' })).toBe('CopyObject');
    expect(op('POST', '/b/k?uploads')).toBe('CreateMultipartUpload');
    expect(op('PUT', '/b/k?partNumber=1&uploadId=u')).toBe('UploadPart');
    expect(op('POST', '/b/k?uploadId=u')).toBe('CompleteMultipartUpload');
    expect(op('DELETE', '/b/k?uploadId=u')).toBe('AbortMultipartUpload');
    expect(op('GET', '/b/a/deep/key')).toBe('GetObject');
    expect(op('HEAD', '/b/k')).toBe('HeadObject');
    expect(op('DELETE', '/b/k')).toBe('DeleteObject');
    expect(op('POST', '/b?delete')).toBe('DeleteObjects');
    expect(s3Operation('GET', new URL('http://h/k'), { host: 'bucket.localhost:4566' })).toBe('GetObject');
  });
});

describe('query parameters', () => {
  it('folds filters and tag specifications and renumbers kept filters', () => {
    const params = new URLSearchParams(
      'Action=DescribeImages&Filter.1.Name=state&Filter.1.Value.1=pending&Filter.2.Name=name&Filter.2.Value.1=f*' +
        '&Filter.2.Value.2=g&TagSpecification.1.ResourceType=image&TagSpecification.1.Tag.1.Key=k' +
        '&TagSpecification.1.Tag.1.Value=v',
    );
    const fs = filters(flat(params));
    expect(fs).toEqual([
      { name: 'state', values: ['pending'] },
      { name: 'name', values: ['f*', 'g'] },
    ]);
    expect(withFilters(params, [fs[1]!]).toString()).toContain('Filter.1.Name=name&Filter.1.Value.1=f*');
    expect(tagSpecifications(flat(params))).toEqual([
      { resourceType: 'image', tags: [{ key: 'k', value: 'v' }] },
    ]);
  });

  it('matches EC2 filter globs', () => {
    expect(globMatch('fedora-*', 'fedora-41')).toBe(true);
    expect(globMatch('fedora-4?', 'fedora-41')).toBe(true);
    expect(globMatch('fedora.41', 'fedora-41')).toBe(false);
    expect(globMatch('(x)', '(x)')).toBe(true);
  });
});

describe('fault rules', () => {
  const call = { service: 'ec2', operation: 'CopyImage', region: 'eu-west-1' };

  it('applies skip, times and selectors, counting matches and firings', () => {
    const engine = new FaultEngine(1);
    engine.add({ service: 'ebs', kind: 'throttle' });
    const id = engine.add({ operation: ['CopyImage', 'RegisterImage'], kind: 'drop', skip: 1, times: 2 });
    const kinds = Array.from({ length: 5 }, () => engine.decide(call).terminal?.kind);
    expect(kinds).toEqual([undefined, 'drop', 'drop', undefined, undefined]);
    expect(engine.stats().find((s) => s.id === id)).toMatchObject({ matched: 5, fired: 2 });
    expect(engine.stats()[0]).toMatchObject({ matched: 0, fired: 0 });
  });

  it('adds latency from every latency rule and stops at the first deciding rule', () => {
    const engine = new FaultEngine(1, ['RegisterImage', 'CopyImage']);
    engine.add({ kind: 'latency', latencyMs: 50 });
    engine.add({ kind: 'image-failed' });
    engine.add({ kind: 'throttle', latencyMs: 20 });
    engine.add({ kind: 'server-error' });
    const d = engine.decide(call);
    expect(d.delayMs).toBe(70);
    expect(d.terminal?.kind).toBe('throttle');
    expect(d.imageFailure?.kind).toBe('image-failed');
    expect(engine.stats()[3]).toMatchObject({ matched: 0 });
    // image-failed only concerns calls that make images.
    expect(engine.decide({ ...call, operation: 'DescribeImages' }).imageFailure).toBeUndefined();
  });

  it('is repeatable from its seed and refuses malformed rules', () => {
    const run = (seed: number) => {
      const engine = new FaultEngine(seed);
      engine.add({ kind: 'throttle', probability: 0.3 });
      return Array.from({ length: 40 }, () => engine.decide(call).terminal !== undefined);
    };
    expect(run(7)).toEqual(run(7));
    expect(run(7)).not.toEqual(run(8));
    const engine = new FaultEngine(1);
    expect(() => engine.add({ kind: 'explode' })).toThrow(/unknown fault kind/);
    expect(() => engine.add({ kind: 'throttle', probability: 2 })).toThrow(/probability/);
    expect(() => engine.add({ kind: 'error' })).toThrow(/code/);
  });
});
