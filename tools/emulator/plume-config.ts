/**
 * plume's config sections for the Google Cloud and Azure emulators: what the tests' worlds, joystick's
 * test configs and `npm run demo` write, so each says once how plume reaches an emulator.
 */
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AzureEmulator } from './azure/index.js';
import type { GcpEmulator } from './gcp/index.js';

/**
 * `[gcp]` (or `table`, e.g. `consumer_config.plume.gcp`) for the Google Cloud emulator: its project, a
 * bucket the caller made, its service account's key file and endpoints; `tuning` adds or overrides keys.
 */
export function gcpConfigSection(gcp: GcpEmulator, bucket: string, tuning = '', table = 'gcp'): string {
  return `
[${table}]
project = "${gcp.project}"
bucket = "${bucket}"
json_key = "${gcp.keyFilePath}"
compute_endpoint = "${gcp.endpoints.compute}"
storage_endpoint = "${gcp.endpoints.storage}"
${tuning}
`;
}

/** How plume reaches the Azure emulator: the credentials file of `--azure-profile` and the CA to trust. */
export interface AzureAccess {
  profilePath: string;
  /** For NODE_EXTRA_CA_CERTS: the emulator's TLS certificate, as a private CA's would be trusted. */
  caPath: string;
}

/**
 * Write a service principal's credentials file (what `--azure-profile` takes: the emulator's Entra ID and
 * Resource Manager, and the storage account's key) and the emulator's certificate into `dir`.
 */
export async function writeAzureAccess(emulator: AzureEmulator, dir: string): Promise<AzureAccess> {
  const profilePath = join(dir, 'azure-profile.json');
  const caPath = join(dir, 'azure-ca.pem');
  await writeFile(
    profilePath,
    JSON.stringify({
      clientId: emulator.arm.clientId,
      clientSecret: emulator.arm.clientSecret,
      tenantId: emulator.arm.tenantId,
      subscriptionId: emulator.arm.subscriptionId,
      activeDirectoryEndpointUrl: emulator.arm.authorityHost,
      resourceManagerEndpointUrl: emulator.arm.endpoint,
      storageAccountKey: emulator.blob.accountKey,
    }),
    { mode: 0o600 },
  );
  await writeFile(caPath, emulator.arm.ca);
  return { profilePath, caPath };
}

/**
 * `[azure]` (or `table`) and its community-sharing table for the Azure emulator's gallery, replicating to
 * `regions` (the first is the gallery's); `tuning` adds or overrides keys.
 */
export function azureConfigSection(
  emulator: AzureEmulator,
  access: Pick<AzureAccess, 'profilePath'>,
  regions: string[],
  tuning = '',
  table = 'azure',
): string {
  return `
[${table}]
subscription = "${emulator.arm.subscriptionId}"
resource_group = "${emulator.arm.resourceGroup}"
gallery = "${emulator.arm.gallery}"
location = "${regions[0]}"
regions = ${JSON.stringify(regions)}
storage_account = "${emulator.blob.accountName}"
profile = "${access.profilePath}"
blob_endpoint = "${emulator.blob.endpoint}"
${tuning}
[${table}.community]
publisher_uri = "https://fedoraproject.org"
publisher_contact = "cloud@lists.fedoraproject.org"
eula = "https://fedoraproject.org/wiki/Legal:Licenses"
public_name_prefix = "Fedora"
`;
}
