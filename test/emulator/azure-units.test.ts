import { describe, expect, it } from 'vitest';
import { armOperation, armRoute } from '../../tools/emulator/azure/arm-routes.js';
import { blobOperation } from '../../tools/emulator/azure/blob-classify.js';
import { ComputeApi } from '../../tools/emulator/azure/compute.js';
import { TokenIssuer } from '../../tools/emulator/azure/identity.js';
import { Store } from '../../tools/emulator/azure/model.js';
import { Operations } from '../../tools/emulator/azure/operations.js';
import { regionName, Replication, type RegionStatus } from '../../tools/emulator/azure/replication.js';
import { SourceReader } from '../../tools/emulator/azure/source.js';
import { DISK_TYPE, fixedVhdFooter, vhdProblem } from '../../tools/emulator/azure/vhd.js';
import type { BufferedReply } from '../../tools/emulator/replies.js';

const MIB = 1024 * 1024;

describe('Azure request classification', () => {
  it('names Blob REST operations', () => {
    const op = (method: string, path: string, headers = {}) =>
      blobOperation(method, new URL(`http://h${path}`), headers);
    expect(op('PUT', '/acct/vhds?restype=container')).toBe('CreateContainer');
    expect(op('GET', '/acct/vhds?restype=container&comp=list')).toBe('ListBlobs');
    expect(op('PUT', '/acct/vhds/f.vhd', { 'x-ms-blob-type': 'PageBlob' })).toBe('PutBlob');
    expect(op('PUT', '/acct/vhds/f.vhd?comp=page', { 'x-ms-page-write': 'update' })).toBe('PutPage');
    expect(op('PUT', '/acct/vhds/f.vhd?comp=page', { 'x-ms-page-write': 'clear' })).toBe('ClearPage');
    expect(op('GET', '/acct/vhds/f.vhd?comp=pagelist')).toBe('GetPageRanges');
    expect(op('GET', '/acct/vhds/dir/f.vhd')).toBe('GetBlob');
    expect(op('HEAD', '/acct/vhds/f.vhd')).toBe('GetBlobProperties');
    expect(op('DELETE', '/acct/vhds/f.vhd')).toBe('DeleteBlob');
    expect(op('GET', '/acct?comp=list')).toBe('ListContainers');
    expect(op('GET', '/acct/%E0%A4%A/x')).toBe('GetBlob');
    expect(op('PATCH', '/acct/vhds/f.vhd')).toBe('Unknown');
  });

  it('routes ARM paths without regard to the case of type segments, and names their operations', () => {
    const base = '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/galleries/g';
    expect(armRoute(`${base}/images/i/versions/1.0.0`)).toEqual({
      kind: 'version',
      sub: 's',
      rg: 'rg',
      gallery: 'g',
      image: 'i',
      version: '1.0.0',
    });
    expect(armRoute(base.replace('resourceGroups', 'resourcegroups') + '/Images/i').kind).toBe('image');
    expect(armRoute(`${base}/share`).kind).toBe('share');
    expect(
      armRoute('/subscriptions/s/providers/Microsoft.Compute/locations/eastus/capsOperations/abc'),
    ).toEqual({
      kind: 'operation',
      sub: 's',
      location: 'eastus',
      id: 'abc',
    });
    for (const bad of [
      '/',
      '/subscriptions',
      `${base}/images/i/versions/1.0.0/more`,
      `${base}/%E0%A4%A`,
      '/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/a',
    ]) {
      expect(armRoute(bad).kind, bad).toBe('unknown');
    }
    const url = new URL('https://h/x?monitor=true');
    expect(armOperation(armRoute(`${base}/images/i/versions/1.0.0`), 'PUT', url)).toBe(
      'GalleryImageVersions_CreateOrUpdate',
    );
    expect(armOperation(armRoute(`${base}/images`), 'GET', url)).toBe('GalleryImages_ListByGallery');
    expect(
      armOperation(
        armRoute('/subscriptions/s/providers/Microsoft.Compute/locations/l/capsOperations/x'),
        'GET',
        url,
      ),
    ).toBe('OperationResult');
  });
});

describe('VHD footers', () => {
  const uri = 'http://h/a/c/disk.vhd';
  it('takes a fixed VHD of whole MiB', () => {
    expect(vhdProblem(fixedVhdFooter(20 * MIB), 20 * MIB + 512, uri)).toBeUndefined();
  });
  it('refuses a wrong cookie, a dynamic or differencing disk, an unaligned size and a footer that disagrees', () => {
    expect(vhdProblem(fixedVhdFooter(MIB, DISK_TYPE.fixed, 'cxsparse'), MIB + 512, uri)?.message).toContain(
      "cookie value 'conectix'",
    );
    expect(vhdProblem(fixedVhdFooter(MIB, DISK_TYPE.dynamic), MIB + 512, uri)?.message).toContain(
      "'Dynamic'",
    );
    expect(vhdProblem(fixedVhdFooter(MIB, DISK_TYPE.differencing), MIB + 512, uri)?.message).toContain(
      "'Differencing'",
    );
    expect(vhdProblem(fixedVhdFooter(MIB + 512), MIB + 1024, uri)?.message).toContain(
      'whole number (in MBs)',
    );
    expect(vhdProblem(fixedVhdFooter(2 * MIB), MIB + 512, uri)?.message).toContain('current size of 2097152');
    expect(vhdProblem(Buffer.alloc(10), 10, uri)?.code).toBe('InvalidVhd');
  });
});

describe('regions and replication', () => {
  it("normalises region names as ARM does and knows Azure's regions", () => {
    expect(regionName('East US 2')).toBe('eastus2');
    expect(regionName('westeurope')).toBe('westeurope');
    expect(regionName('Atlantis')).toBeUndefined();
  });

  it('reports progress, completes, and keeps a final state once reached', () => {
    const replication = new Replication(1000);
    const final = new Map<string, RegionStatus>();
    expect(replication.status('eastus', 0, final, 250)).toMatchObject({ state: 'Replicating', progress: 25 });
    expect(replication.status('eastus', 0, final, 1000)).toMatchObject({ state: 'Completed', progress: 100 });
    replication.set('eastus', 'never');
    expect(replication.status('eastus', 0, final, 2000).state).toBe('Completed');
    replication.set('West US 2', 'fail');
    expect(replication.status('westus2', 0, final, 0).state).toBe('Failed');
    replication.set('westus2', 0);
    expect(replication.status('westus2', 0, final, 0).state).toBe('Failed');
    expect(() => replication.set('atlantis', 0)).toThrow(/unknown Azure region/);
    expect(() => replication.set('eastus', -1)).toThrow(/replication mode/);
  });
});

describe('the ARM fake with hostile input', () => {
  const store = new Store();
  store.addResourceGroup('rg');
  store.putGallery({
    rg: 'rg',
    name: 'g',
    location: 'eastus',
    permissions: 'Private',
    groups: new Map(),
    images: new Map(),
  });
  const issuer = new TokenIssuer(
    { tenantId: 't', clientId: 'c', clientSecret: 's' },
    () => 'https://127.0.0.1:1',
  );
  const api = new ComputeApi({
    store,
    ops: new Operations(),
    replication: new Replication(0),
    sources: new SourceReader('http://127.0.0.1:9', ['127.0.0.1:9']),
    issuer,
    subscriptionId: 'sub',
    baseUrl: () => 'https://127.0.0.1:1',
    pageSize: 10,
    retryAfterSeconds: 0,
  });
  const tokenReply = issuer.handle(
    'GetToken',
    '/t/oauth2/v2.0/token',
    new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: 'c',
      client_secret: 's',
      scope: 'x/.default',
    }),
  );
  const token = (JSON.parse(tokenReply.body.toString()) as { access_token: string }).access_token;
  const call = (method: string, path: string, body: string | Buffer = '', auth = `Bearer ${token}`) => {
    const url = new URL(
      `https://h/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/galleries/g${path}`,
    );
    if (!url.searchParams.has('api-version')) url.searchParams.set('api-version', '2025-03-03');
    const reply = api.handle({
      route: armRoute(url.pathname),
      method,
      url,
      authorization: auth,
      body: Buffer.from(body),
    }) as BufferedReply;
    const text = reply.body.toString();
    return {
      status: reply.status,
      error: text ? (JSON.parse(text) as { error?: { code: string; message: string } }).error : undefined,
    };
  };

  it('answers ARM errors, never throws, whatever the body', () => {
    const image = (props: unknown, extra: Record<string, unknown> = {}) =>
      JSON.stringify({ location: 'eastus', properties: props, ...extra });
    const good = {
      osType: 'Linux',
      osState: 'Generalized',
      identifier: { publisher: 'p', offer: 'o', sku: 's' },
    };
    for (const body of [
      '',
      'not json',
      '[1,2,3]',
      'null',
      '{"location": 5}',
      image('nope'),
      image({ ...good, osType: 7 }),
      image({ ...good, identifier: ['p', 'o', 's'] }),
      image({ ...good, identifier: { publisher: 'p'.repeat(5000), offer: 'o', sku: 's' } }),
      image({ ...good, features: 'all' }),
      image({
        ...good,
        features: Array.from({ length: 1000 }, () => ({ name: 'SecurityType', value: 'Standard' })),
      }),
      image({ ...good, endOfLifeDate: 'someday' }),
      image(good, { tags: { a: 1 } }),
      image(good, { tags: Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`t${i}`, 'v'])) }),
      image(good, { location: 'atlantis' }),
    ]) {
      const r = call('PUT', '/images/i', body);
      expect([r.status, r.error?.code], body.slice(0, 80)).toEqual([400, 'InvalidParameter']);
    }
    expect(call('PUT', '/images/..%2F..%2Fx', image(good)).status).toBe(400);
    expect(call('PUT', `/images/${'a'.repeat(81)}`, image(good)).status).toBe(400);
  });

  it('checks the token, the api-version, the subscription and the path before anything else', () => {
    expect(call('GET', '', '', '').error?.code).toBe('AuthenticationFailed');
    expect(call('GET', '', '', 'Basic abc').error?.code).toBe('AuthenticationFailedInvalidHeader');
    expect(call('GET', '', '', 'Bearer nope').error?.code).toBe('InvalidAuthenticationToken');
    expect(call('GET', '?api-version=1999-01-01').error?.code).toBe('NoRegisteredProviderFound');
    expect(call('GET', '/images/i/versions/1.0.0/x').error?.code).toBe('InvalidResourceType');
    expect(call('POST', '/images/i').status).toBe(405);
    expect(call('GET', '').status).toBe(200);
  });

  it('refuses bad sources of a version at once', () => {
    store.gallery('rg', 'g')!.images.set('i', {
      name: 'i',
      location: 'eastus',
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      architecture: 'x64',
      identifier: { publisher: 'p', offer: 'o', sku: 's' },
      features: [],
      versions: new Map(),
    });
    const version = (source: unknown) =>
      JSON.stringify({ location: 'eastus', properties: { storageProfile: { osDiskImage: { source } } } });
    const account =
      '/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1';
    for (const source of [
      undefined,
      'uri',
      { uri: 'http://127.0.0.1:9/devstoreaccount1/c/d.vhd' },
      { uri: 'not a uri', storageAccountId: account },
      { uri: 'ftp://127.0.0.1:9/devstoreaccount1/c/d.vhd', storageAccountId: account },
      { uri: 'http://127.0.0.1:9/otheraccount/c/d.vhd', storageAccountId: account },
      { uri: 'http://127.0.0.1:9/devstoreaccount1/c', storageAccountId: account },
      { uri: 'http://127.0.0.1:9/devstoreaccount1/c/d.vhd', storageAccountId: '/not/an/id' },
    ]) {
      const r = call('PUT', '/images/i/versions/1.0.0', version(source));
      expect([r.status, r.error?.code], JSON.stringify(source)).toEqual([400, 'InvalidParameter']);
    }
    expect(store.gallery('rg', 'g')!.images.get('i')!.versions.size).toBe(0);
  });

  it('lets a PUT repeated while the source is still being read follow the same version to its end', async () => {
    let finish: (ok: boolean) => void = () => undefined;
    const slow = {
      locate: () => ({ container: 'c', blob: 'd.vhd' }),
      check: () =>
        new Promise((resolve) => {
          finish = (ok) =>
            resolve(
              ok
                ? { ok: true, sizeBytes: MIB }
                : { ok: false, problem: { code: 'InvalidVhd', message: 'bad' } },
            );
        }),
    } as unknown as SourceReader;
    const ops = new Operations();
    const slowApi = new ComputeApi({
      store,
      ops,
      replication: new Replication(0),
      sources: slow,
      issuer,
      subscriptionId: 'sub',
      baseUrl: () => 'https://127.0.0.1:1',
      pageSize: 10,
      retryAfterSeconds: 0,
    });
    const body = JSON.stringify({
      location: 'eastus',
      properties: {
        storageProfile: {
          osDiskImage: {
            source: {
              uri: 'http://127.0.0.1:9/devstoreaccount1/c/d.vhd',
              storageAccountId:
                '/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/devstoreaccount1',
            },
          },
        },
      },
    });
    const put = () => {
      const url = new URL(
        'https://h/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/galleries/g/images/i/versions/2.0.0?api-version=2025-03-03',
      );
      const reply = slowApi.handle({
        route: armRoute(url.pathname),
        method: 'PUT',
        url,
        authorization: `Bearer ${token}`,
        body: Buffer.from(body),
      }) as BufferedReply;
      const operation = /capsOperations\/([^?]+)/.exec(String(reply.headers['azure-asyncoperation']))![1]!;
      return { status: reply.status, operation };
    };
    const first = put();
    const second = put();
    expect([first.status, second.status]).toEqual([201, 200]);
    expect(ops.get(second.operation)?.status).toBe('InProgress');
    finish(true);
    await new Promise((r) => setImmediate(r));
    expect(ops.get(second.operation)?.status).toBe('Succeeded');
    expect(ops.get(first.operation)?.status).toBe('Succeeded');
  });
});
