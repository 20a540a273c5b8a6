import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { ClientSecretCredential } from '@azure/identity';
import { CallLog } from '../calls.js';
import type { ChildServer } from '../child-server.js';
import { handleControl, type ControlTarget } from '../control.js';
import { FaultEngine } from '../faults.js';
import type { CallRecord, FaultRule, FaultStat } from '../types.js';
import { HttpUpstream } from '../upstream.js';
import { ArmFront } from './arm-front.js';
import { startAzurite } from './azurite.js';
import { BlobProxy } from './blob-proxy.js';
import { armClientOptions, emulatorCredential } from './clients.js';
import { ComputeApi } from './compute.js';
import { DEFAULTS, DEV_ACCOUNT } from './config.js';
import { azureControlRoutes } from './control.js';
import { TokenIssuer } from './identity.js';
import { Store } from './model.js';
import { Operations } from './operations.js';
import { regionName, Replication, type ReplicationMode } from './replication.js';
import { SourceReader } from './source.js';
import { selfSignedCertificate } from './tls.js';
import type { AzureEmulatorOptions, AzureEndpoints } from './types.js';

export type * from './types.js';
export { AzureEmulatorClient } from './client.js';
export { armClientOptions, emulatorCredential } from './clients.js';
export { fixedVhdFooter, DISK_TYPE, FOOTER_SIZE } from './vhd.js';

/** The operation whose result is an image: what `image-failed` rules apply to. */
const IMAGE_OPERATIONS = ['GalleryImageVersions_CreateOrUpdate'];

/** Azurite, the blob fault proxy and the ARM fake, in this process. */
export interface AzureEmulator extends AzureEndpoints {
  /** A ClientSecretCredential that gets its tokens from the emulator. */
  credential(): ClientSecretCredential;
  /** `endpoint` and `tlsOptions` for ComputeManagementClient. */
  armClientOptions(): { endpoint: string; tlsOptions: { ca: string } };
  addFault(rule: FaultRule): string;
  removeFault(id: string): boolean;
  clearFaults(): void;
  faultStats(): FaultStat[];
  calls(): CallRecord[];
  clearCalls(): void;
  /** How `region` replicates versions from now on: after `ms`, never (stays Replicating), or failing. */
  setReplication(region: string, mode: ReplicationMode): void;
  /** Galleries, blobs, rules, call log and replication settings back to the start. */
  reset(): Promise<void>;
  stop(): Promise<void>;
}

export async function startAzureEmulator(opts: AzureEmulatorOptions = {}): Promise<AzureEmulator> {
  const location = regionName(opts.location ?? DEFAULTS.location);
  if (!location) throw new Error(`unknown Azure region ${opts.location}`);
  const names = {
    subscriptionId: opts.subscriptionId ?? DEFAULTS.subscriptionId,
    tenantId: opts.tenantId ?? DEFAULTS.tenantId,
    resourceGroup: opts.resourceGroup ?? DEFAULTS.resourceGroup,
    gallery: opts.gallery ?? DEFAULTS.gallery,
  };
  const retryAfterSeconds = opts.retryAfterSeconds ?? DEFAULTS.retryAfterSeconds;
  const tls = selfSignedCertificate();
  const azurite: ChildServer = await startAzurite();
  const stack: { close(): Promise<void> | void }[] = [{ close: () => azurite.stop() }];
  try {
    const engine = new FaultEngine(opts.seed ?? DEFAULTS.seed, IMAGE_OPERATIONS);
    const log = new CallLog();
    const store = new Store();
    const ops = new Operations();
    const replication = new Replication(opts.replicationMs ?? DEFAULTS.replicationMs);
    const hosts: string[] = [`127.0.0.1:${azurite.port}`];
    const sources = new SourceReader(azurite.endpoint, hosts);
    let armBase = '';
    const issuer = new TokenIssuer(
      {
        tenantId: names.tenantId,
        clientId: DEFAULTS.clientId,
        clientSecret: randomBytes(24).toString('base64url'),
      },
      () => armBase,
    );
    const seed = () => {
      store.addResourceGroup(names.resourceGroup);
      store.putGallery({
        rg: names.resourceGroup,
        name: names.gallery,
        location,
        permissions: 'Private',
        groups: new Map(),
        images: new Map(),
      });
    };
    seed();

    const target: ControlTarget = {
      faults: engine,
      calls: () => log.list(),
      clearCalls: () => log.clear(),
      async reset() {
        await sources.clear();
        store.clear();
        ops.clear();
        replication.reset();
        engine.reset();
        log.clear();
        seed();
      },
    };
    const control = (req: IncomingMessage, res: ServerResponse, url: URL) =>
      handleControl(target, req, res, url, azureControlRoutes(replication));

    const blobProxy = new BlobProxy({
      engine,
      log,
      upstream: new HttpUpstream(azurite.port),
      location,
      control,
    });
    const blobPort = await blobProxy.listen(opts.blobPort ?? 0);
    stack.push(blobProxy);
    hosts.push(`127.0.0.1:${blobPort}`, `localhost:${blobPort}`);

    const api = new ComputeApi({
      store,
      ops,
      replication,
      sources,
      issuer,
      subscriptionId: names.subscriptionId,
      baseUrl: () => armBase,
      pageSize: opts.listPageSize ?? DEFAULTS.listPageSize,
      retryAfterSeconds,
    });
    const arm = new ArmFront({ engine, log, tls, api, issuer, store, retryAfterSeconds });
    const armPort = await arm.listen(opts.armPort ?? 0);
    stack.push(arm);
    armBase = `https://127.0.0.1:${armPort}`;

    const endpoints: AzureEndpoints = {
      blob: {
        endpoint: `http://127.0.0.1:${blobPort}/${DEV_ACCOUNT.name}`,
        accountName: DEV_ACCOUNT.name,
        accountKey: DEV_ACCOUNT.key,
        azuriteEndpoint: `${azurite.endpoint}/${DEV_ACCOUNT.name}`,
      },
      arm: {
        endpoint: armBase,
        authorityHost: armBase,
        tenantId: names.tenantId,
        clientId: issuer.app.clientId,
        clientSecret: issuer.app.clientSecret,
        subscriptionId: names.subscriptionId,
        resourceGroup: names.resourceGroup,
        gallery: names.gallery,
        location,
        storageAccountId: `/subscriptions/${names.subscriptionId}/resourceGroups/${names.resourceGroup}/providers/Microsoft.Storage/storageAccounts/${DEV_ACCOUNT.name}`,
        ca: tls.cert,
      },
      controlEndpoint: `http://127.0.0.1:${blobPort}`,
    };
    let stopped = false;
    return {
      ...endpoints,
      credential: () => emulatorCredential(endpoints),
      armClientOptions: () => armClientOptions(endpoints),
      addFault: (rule) => engine.add(rule),
      removeFault: (id) => engine.remove(id),
      clearFaults: () => engine.clear(),
      faultStats: () => engine.stats(),
      calls: () => log.list(),
      clearCalls: () => log.clear(),
      setReplication: (region, mode) => replication.set(region, mode),
      reset: () => target.reset(),
      async stop() {
        if (stopped) return;
        stopped = true;
        for (const s of stack.reverse()) await s.close();
      },
    };
  } catch (e) {
    for (const s of stack.reverse()) await Promise.resolve(s.close()).catch(() => undefined);
    throw e;
  }
}
