/**
 * Cross-check the Google Cloud emulator with gcloud (Debian's google-cloud-cli): `node --import tsx
 * tools/emulator/gcp/gcloud-check.ts`. Starts the emulator, uploads an image archive through
 * @google-cloud/storage and creates an image through @google-cloud/compute, then asks gcloud
 * (`compute images describe/list`, `storage ls`) and compares with what the clients read, and checks that
 * gcloud reports Compute Engine's 404 for a missing image. Prints a report; exits 1 on any difference.
 *
 * gcloud signs in with the emulator's key file (`auth activate-service-account`: it honours the key's
 * token_uri), reaches the fronts through `api_endpoint_overrides`, takes the project from
 * CLOUDSDK_CORE_PROJECT (`config set project` would ask Resource Manager about it) and keeps its
 * configuration in a temporary CLOUDSDK_CONFIG, all for its own processes only.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDeepStrictEqual, promisify } from 'node:util';
import { GlobalOperationsClient, ImagesClient } from '@google-cloud/compute';
import { Storage } from '@google-cloud/storage';
import { JWT } from 'google-auth-library';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { startGcpEmulator } from './index.js';

const run = promisify(execFile);
const BUCKET = 'plume-images';

/** A tar of one 1 MiB member named disk.raw (ustar header written by hand), gzip'd. */
function archive(): Buffer {
  const header = Buffer.alloc(512);
  header.write('disk.raw', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${(2 ** 20).toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return gzipSync(Buffer.concat([header, Buffer.alloc(2 ** 20), Buffer.alloc(1024)]));
}

const emu = await startGcpEmulator({ pendingMs: 0 });
const dir = mkdtempSync(join(tmpdir(), 'plume-gcloud-check-'));
let failures = 0;
const check = (what: string, ok: boolean, detail = '') => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}${ok ? '' : `: ${detail}`}`);
  if (!ok) failures++;
};
try {
  emu.createBucket(BUCKET);
  const key = JSON.parse(readFileSync(emu.keyFilePath, 'utf8')) as {
    client_email: string;
    private_key: string;
    token_uri: string;
  };
  const auth = new JWT({
    email: key.client_email,
    key: key.private_key,
    scopes: ['https://www.googleapis.com/auth/cloud-platform'],
  });
  auth.transporter.interceptors.request.add({
    resolved: (o) => {
      if (String(o.url) === 'https://oauth2.googleapis.com/token') o.url = new URL(key.token_uri);
      return Promise.resolve(o);
    },
  });
  const storage = new Storage({
    projectId: emu.project,
    apiEndpoint: emu.endpoints.storage,
    useAuthWithCustomEndpoint: true,
    authClient: auth,
  });
  await storage.bucket(BUCKET).file('check/disk.tar.gz').save(archive(), { resumable: false });
  const images = new ImagesClient({ ...emu.endpoints.computeClient, authClient: auth });
  const operations = new GlobalOperationsClient({ ...emu.endpoints.computeClient, authClient: auth });
  const [op] = await images.insert({
    project: emu.project,
    imageResource: {
      name: 'gcloud-check',
      family: 'check',
      architecture: 'X86_64',
      labels: { channel: 'cloud' },
      rawDisk: { source: `https://storage.googleapis.com/${BUCKET}/check/disk.tar.gz` },
    },
  });
  await operations.wait({ project: emu.project, operation: (op.latestResponse as { name: string }).name });
  const [sdk] = await images.get({ project: emu.project, image: 'gcloud-check' });
  await Promise.all([images.close(), operations.close()]);

  const env = {
    ...process.env,
    CLOUDSDK_CONFIG: dir,
    CLOUDSDK_CORE_PROJECT: emu.project,
    CLOUDSDK_CORE_DISABLE_PROMPTS: '1',
    CLOUDSDK_CORE_DISABLE_USAGE_REPORTING: 'true',
    CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK: 'true',
    CLOUDSDK_API_ENDPOINT_OVERRIDES_COMPUTE: `${emu.endpoints.compute}/compute/v1/`,
    CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE: `${emu.endpoints.storage}/storage/v1/`,
  };
  const gcloud = async (...args: string[]) => {
    try {
      const { stdout, stderr } = await run('gcloud', args, { env, timeout: 120_000 });
      return { code: 0, stdout, stderr };
    } catch (e) {
      const err = e as { code?: number; stdout?: string; stderr?: string };
      return { code: err.code ?? 1, stdout: err.stdout ?? '', stderr: err.stderr ?? '' };
    }
  };
  const login = await gcloud('auth', 'activate-service-account', '--key-file', emu.keyFilePath);
  check('gcloud signs in with the key file', login.code === 0, login.stderr);

  const described = await gcloud('compute', 'images', 'describe', 'gcloud-check', '--format=json');
  const cli = described.code === 0 ? (JSON.parse(described.stdout) as Record<string, unknown>) : {};
  for (const field of [
    'name',
    'family',
    'status',
    'architecture',
    'diskSizeGb',
    'archiveSizeBytes',
    'labels',
    'selfLink',
    'storageLocations',
  ] as const)
    check(
      `images describe: ${field}`,
      isDeepStrictEqual(cli[field], sdk[field]),
      `gcloud ${JSON.stringify(cli[field])}, SDK ${JSON.stringify(sdk[field])}`,
    );

  const listed = await gcloud(
    'compute',
    'images',
    'list',
    '--no-standard-images',
    '--filter=family=check',
    '--format=json(name)',
  );
  const names = listed.code === 0 ? (JSON.parse(listed.stdout) as { name: string }[]).map((i) => i.name) : [];
  check(
    'images list --filter=family=check',
    isDeepStrictEqual(names, ['gcloud-check']),
    `${listed.stderr} ${JSON.stringify(names)}`,
  );

  const missing = await gcloud('compute', 'images', 'describe', 'no-such-image');
  check(
    'images describe of a missing image: the 404 in Compute Engine words',
    missing.code !== 0 &&
      missing.stderr.includes(
        `The resource 'projects/${emu.project}/global/images/no-such-image' was not found`,
      ),
    missing.stderr,
  );

  const ls = await gcloud('storage', 'ls', `gs://${BUCKET}/check/`);
  check(
    'storage ls',
    ls.code === 0 && ls.stdout.trim() === `gs://${BUCKET}/check/disk.tar.gz`,
    `${ls.stdout} ${ls.stderr}`,
  );
} finally {
  await emu.stop();
  rmSync(dir, { recursive: true, force: true });
}
console.log(failures ? `${failures} difference(s)` : 'gcloud agrees with the emulator');
process.exit(failures ? 1 : 0);
