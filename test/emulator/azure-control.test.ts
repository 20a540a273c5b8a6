import { fileURLToPath } from 'node:url';
import { ComputeManagementClient } from '@azure/arm-compute';
import { ClientSecretCredential } from '@azure/identity';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  AzureEmulatorClient,
  armClientOptions,
  emulatorCredential,
  startAzureEmulator,
  type AzureEmulator,
  type AzureEndpoints,
} from '../../tools/emulator/azure/index.js';
import { blobService, compute, definition, POLL, rejection, uploadVhd, versionOf } from './azure-helpers.js';
import { standalone as startStandalone, unreachable } from './helpers.js';

const MAIN = fileURLToPath(new URL('../../tools/emulator/azure/main.ts', import.meta.url));

async function standalone(args: string[] = []) {
  const s = await startStandalone<AzureEndpoints>(MAIN, args);
  return { ...s, endpoints: s.ready };
}

const gone = unreachable;

describe('the standalone Azure emulator', () => {
  it('is used from another process with only what it prints, and stops cleanly on SIGTERM', async () => {
    const emu = await standalone(['--retry-after', '0']);
    const e = emu.endpoints;
    try {
      const control = new AzureEmulatorClient(e.controlEndpoint);
      expect(await control.health()).toBe(true);
      const client = new ComputeManagementClient(emulatorCredential(e), e.arm.subscriptionId, {
        ...armClientOptions(e),
        retryOptions: { maxRetries: 0 },
      });
      const { resourceGroup: rg, gallery } = e.arm;
      await client.galleryImages.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        definition({ arm: e.arm } as AzureEmulator),
        POLL,
      );

      await control.addFault({ service: 'arm', operation: 'Galleries_Get', kind: 'access-denied', times: 1 });
      expect((await rejection(client.galleries.get(rg, gallery))).code).toBe('AuthorizationFailed');
      expect((await client.galleries.get(rg, gallery)).name).toBe(gallery);

      const fake = { blob: e.blob, arm: e.arm } as AzureEmulator;
      const uri = await uploadVhd(blobService(fake).getContainerClient('vhds'), 'f41.vhd');
      await control.setReplication('westus2', 'never');
      const poller = client.galleryImageVersions.createOrUpdate(
        rg,
        gallery,
        'fedora-41',
        '41.0.0',
        versionOf(fake, uri, ['eastus', 'westus2']),
        POLL,
      );
      await poller.submitted();
      await control.setReplication('westus2', 0);
      expect((await poller).provisioningState).toBe('Succeeded');
      await expect(control.setReplication('atlantis', 0)).rejects.toThrow(/unknown Azure region/);

      const calls = await control.calls();
      expect(calls.some((c) => c.service === 'blob' && c.operation === 'PutPage')).toBe(true);
      expect(calls.filter((c) => c.fault === 'access-denied')).toHaveLength(1);
      await control.reset();
      expect(await control.calls()).toEqual([]);
      expect((await client.galleries.get(rg, gallery)).name).toBe(gallery);
      expect(await blobService(fake).getContainerClient('vhds').exists()).toBe(false);
    } finally {
      emu.child.kill('SIGTERM');
    }
    expect(await emu.exited).toBe(0);
    expect(await gone(e.blob.azuriteEndpoint)).toBe(true);
  });

  it('leaves no Azurite behind even when killed outright', async () => {
    const emu = await standalone();
    emu.child.kill('SIGKILL');
    await emu.exited;
    expect(await gone(emu.endpoints.blob.azuriteEndpoint)).toBe(true);
  });
});

describe('authentication and TLS', () => {
  let emu: AzureEmulator;
  beforeAll(async () => {
    emu = await startAzureEmulator({ retryAfterSeconds: 0 });
  });
  afterAll(async () => {
    await emu?.stop();
  });
  beforeEach(async () => {
    await emu.reset();
  });

  it('refuses ARM calls without a token it issued', async () => {
    const bogus = {
      getToken: () =>
        Promise.resolve({ token: 'not-a-token-it-issued', expiresOnTimestamp: Date.now() + 3_600_000 }),
    };
    const client = new ComputeManagementClient(bogus, emu.arm.subscriptionId, emu.armClientOptions());
    const err = await rejection(client.galleries.get(emu.arm.resourceGroup, emu.arm.gallery));
    expect([err.statusCode, err.code]).toEqual([401, 'InvalidAuthenticationToken']);
  });

  it('refuses a wrong client secret at the token endpoint, as Entra ID does', async () => {
    const credential = new ClientSecretCredential(emu.arm.tenantId, emu.arm.clientId, 'wrong', {
      authorityHost: emu.arm.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca: emu.arm.ca },
    });
    const client = new ComputeManagementClient(credential, emu.arm.subscriptionId, emu.armClientOptions());
    const err = await rejection(client.galleries.get(emu.arm.resourceGroup, emu.arm.gallery));
    expect(err.message).toContain('AADSTS7000215');
    expect(emu.calls().some((c) => c.service === 'arm')).toBe(false);
  });

  it('is trusted only by clients given its certificate', async () => {
    const untrusting = new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, {
      endpoint: emu.arm.endpoint,
      retryOptions: { maxRetries: 0 },
    });
    const err = await rejection(untrusting.galleries.get(emu.arm.resourceGroup, emu.arm.gallery));
    expect(String(err.code)).toMatch(/SELF_SIGNED|UNABLE_TO_VERIFY/);
  });

  it('must be HTTPS: the SDK sends no bearer token over plain HTTP', async () => {
    const plain = new ComputeManagementClient(emu.credential(), emu.arm.subscriptionId, {
      endpoint: emu.controlEndpoint,
    });
    const err = await rejection(plain.galleries.get(emu.arm.resourceGroup, emu.arm.gallery));
    expect(err.message).toBe(
      'Bearer token authentication is not permitted for non-TLS protected (non-https) URLs.',
    );
  });

  it('lets a version be created end to end with the handle alone', async () => {
    const client = compute(emu);
    const { resourceGroup: rg, gallery } = emu.arm;
    await client.galleryImages.createOrUpdate(rg, gallery, 'fedora-41', definition(emu), POLL);
    const uri = await uploadVhd(blobService(emu).getContainerClient('vhds'), 'f41.vhd');
    const v = await client.galleryImageVersions.createOrUpdate(
      rg,
      gallery,
      'fedora-41',
      '41.20240911.0',
      versionOf(emu, uri),
      POLL,
    );
    expect(v.provisioningState).toBe('Succeeded');
  });
});
