/**
 * Cross-check the ARM fake with the Azure CLI (Debian's azure-cli): `node --import tsx
 * tools/emulator/azure/az-check.ts`. Starts the emulator, creates a definition and a version through
 * @azure/arm-compute, then GETs them with `az rest` and compares with what the SDK read, and checks that
 * az sees ARM's error for a request without api-version. Prints a report; exits 1 on any difference.
 *
 * `az login` cannot be pointed at the fake (az 2.45's MSAL asks Microsoft's public instance discovery
 * about any authority), so az gets a token from the emulator's own token endpoint through
 * ClientSecretCredential and sends it with --skip-authorization-header. az trusts the emulator's
 * certificate through REQUESTS_CA_BUNDLE and keeps its configuration in a temporary AZURE_CONFIG_DIR,
 * both for its own process only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { ComputeManagementClient } from '@azure/arm-compute';
import { BlobServiceClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { fixedVhdFooter, startAzureEmulator } from './index.js';

const run = promisify(execFile);
const API = '2025-03-03';

const emu = await startAzureEmulator({ retryAfterSeconds: 0 });
const dir = mkdtempSync(join(tmpdir(), 'plume-az-check-'));
let failures = 0;
try {
  const { resourceGroup: rg, gallery, subscriptionId } = emu.arm;
  const client = new ComputeManagementClient(emu.credential(), subscriptionId, emu.armClientOptions());
  const poll = { updateIntervalInMs: 10 };
  await client.galleryImages.createOrUpdate(
    rg,
    gallery,
    'fedora-41',
    {
      location: emu.arm.location,
      osType: 'Linux',
      osState: 'Generalized',
      hyperVGeneration: 'V2',
      identifier: { publisher: 'Fedora', offer: 'Fedora-Cloud', sku: '41' },
    },
    poll,
  );
  const blobs = new BlobServiceClient(
    emu.blob.endpoint,
    new StorageSharedKeyCredential(emu.blob.accountName, emu.blob.accountKey),
  );
  const container = blobs.getContainerClient('vhds');
  await container.create();
  const blob = container.getPageBlobClient('f41.vhd');
  await blob.create(4 * 1024 * 1024 + 512);
  await blob.uploadPages(fixedVhdFooter(4 * 1024 * 1024), 4 * 1024 * 1024, 512);
  await client.galleryImageVersions.createOrUpdate(
    rg,
    gallery,
    'fedora-41',
    '41.0.0',
    {
      location: emu.arm.location,
      publishingProfile: { targetRegions: [{ name: 'eastus' }, { name: 'westus2' }] },
      storageProfile: {
        osDiskImage: { source: { uri: blob.url, storageAccountId: emu.arm.storageAccountId } },
      },
    },
    poll,
  );

  const ca = join(dir, 'ca.pem');
  writeFileSync(ca, emu.arm.ca);
  const { token } = await emu.credential().getToken('https://management.azure.com/.default');
  const env = {
    ...process.env,
    REQUESTS_CA_BUNDLE: ca,
    AZURE_CONFIG_DIR: join(dir, 'az'),
    AZURE_CORE_COLLECT_TELEMETRY: 'false',
  };
  const az = async (path: string) => {
    const args = [
      'rest',
      '--method',
      'get',
      '--skip-authorization-header',
      '--headers',
      `Authorization=Bearer ${token}`,
      '--url',
      `${emu.arm.endpoint}${path}`,
    ];
    try {
      const { stdout } = await run('az', args, { env });
      return { ok: true, value: JSON.parse(stdout) as Record<string, unknown> };
    } catch (e) {
      return { ok: false, value: String((e as { stderr?: string }).stderr ?? e) };
    }
  };
  const base = `/subscriptions/${subscriptionId}/resourceGroups/${rg}/providers/Microsoft.Compute/galleries/${gallery}`;
  const check = (what: string, good: boolean, detail: unknown) => {
    if (!good) failures++;
    console.log(`${good ? 'ok  ' : 'FAIL'} ${what}${good ? '' : `: ${JSON.stringify(detail)}`}`);
  };

  const g = await az(`${base}?api-version=${API}`);
  check('az rest GET gallery', g.ok && (g.value as { name?: string }).name === gallery, g.value);
  const v = await az(`${base}/images/fedora-41/versions/41.0.0?api-version=${API}&$expand=ReplicationStatus`);
  const sdk = await client.galleryImageVersions.get(rg, gallery, 'fedora-41', '41.0.0', {
    expand: 'ReplicationStatus',
  });
  const props = (v.value as { properties?: Record<string, unknown> }).properties;
  check(
    'az rest GET version with $expand=ReplicationStatus',
    v.ok && isDeepStrictEqual(props?.replicationStatus, sdk.replicationStatus),
    v.value,
  );
  check('az and the SDK agree on provisioningState', props?.provisioningState === sdk.provisioningState, [
    props?.provisioningState,
    sdk.provisioningState,
  ]);
  const missing = await az(base);
  check(
    'az shows MissingApiVersionParameter without api-version',
    !missing.ok && JSON.stringify(missing.value).includes('MissingApiVersionParameter'),
    missing.value,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
  await emu.stop();
}
process.exit(failures ? 1 : 0);
