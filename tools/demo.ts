/**
 * `npm run demo`: a whole release on this machine, no cloud account needed. Starts the local emulators of
 * the three clouds (AWS: moto plus plume's proxy that fills its gaps; Google Cloud: Firebase's Cloud
 * Storage emulator and a Compute Engine fake; Azure: Azurite and a Compute Gallery fake), generates a
 * Fedora-shaped compose with a sparse 1 GiB Cloud Base image (raw.xz for AWS, the GCE tar.gz, the Azure
 * fixed VHD), serves it over HTTP, runs `plume release` to all three and verifies the result.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startAzureEmulator } from './emulator/azure/index.js';
import { startGcpEmulator } from './emulator/gcp/index.js';
import { startEmulator } from './emulator/index.js';
import { azureConfigSection, gcpConfigSection, writeAzureAccess } from './emulator/plume-config.js';
import { serveDirectory } from './compose/http-server.js';
import { writeSampleCompose } from './compose/sample-compose.js';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, '.demo');
const regions = ['us-east-1', 'us-east-2', 'us-west-2', 'eu-west-1', 'ap-southeast-2'];
const azureRegions = ['eastus', 'westus2', 'northeurope'];
const bucket = 'plume-demo-images';

function plume(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  console.log(`\n$ plume ${args.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'plume.js'), ...args], {
      env,
      stdio: 'inherit',
    });
    child.on('error', reject);
    child.on('close', (code) => resolve(code ?? 1));
  });
}

async function main(): Promise<number> {
  await rm(join(dir, 'state'), { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  console.log('starting the AWS emulator (moto_server + plume proxy)...');
  const emulator = await startEmulator({ pendingMs: 300 });
  console.log(
    "starting the Google Cloud emulator (Firebase's Cloud Storage emulator + a Compute Engine fake)...",
  );
  const gcp = await startGcpEmulator();
  gcp.createBucket(bucket);
  console.log('starting the Azure emulator (Azurite + a Compute Gallery fake)...');
  const azure = await startAzureEmulator({ location: azureRegions[0], replicationMs: 500 });
  const azureAccess = await writeAzureAccess(azure, dir);
  const composesDir = join(dir, 'composes');
  const composeId = 'Fedora-Cloud-30-20190611.0';
  // The GCE archive and the Azure VHD came later than the raw image: a compose from before lacks them.
  const imagesJson = join(composesDir, composeId, 'compose', 'metadata', 'images.json');
  const listed = existsSync(imagesJson) ? await readFile(imagesJson, 'utf8') : '';
  if (!['"raw-xz"', '"tar-gz"', '"vhd-compressed"'].every((type) => listed.includes(type))) {
    console.log(
      'generating a sample compose with a sparse 1 GiB Fedora Cloud Base image, for each cloud (once)...',
    );
    await rm(composesDir, { recursive: true, force: true });
    await writeSampleCompose({
      dir: composesDir,
      rawSize: 2 ** 30,
      dataFraction: 0.05,
      arches: ['x86_64', 'aarch64'],
      gce: true,
      azure: true,
    });
  }
  const files = await serveDirectory(composesDir);
  const config = join(dir, 'plume.toml');
  await writeFile(
    config,
    `# Written by npm run demo: the emulators' endpoints, five AWS regions, three Azure regions, state under .demo/state.
[aws]
base_region = "us-east-1"
regions = ${JSON.stringify(regions)}
volume_types = ["gp3", "gp2"]
endpoint = "${emulator.endpoint}"
poll_min_ms = 100
poll_max_ms = 500

${gcpConfigSection(gcp, bucket, 'poll_min_ms = 100\npoll_max_ms = 500')}
${azureConfigSection(azure, azureAccess, azureRegions, 'poll_min_ms = 100\npoll_max_ms = 500')}
[source]
allowed_hosts = ["127.0.0.1"]

[state]
path = "${join(dir, 'state', 'state.db')}"
records_dir = "${join(dir, 'state', 'releases')}"
`,
  );
  const env = {
    ...process.env,
    AWS_ACCESS_KEY_ID: 'AKIADEMO000000000000',
    AWS_SECRET_ACCESS_KEY: 'demo-secret-not-a-real-key',
    AWS_EC2_METADATA_DISABLED: 'true',
    // The Azure emulator's certificate, trusted as a private CA's would be.
    NODE_EXTRA_CA_CERTS: azureAccess.caPath,
  };
  const composeUrl = `${files.url}/${composeId}/compose`;
  const selectors = [
    '--system',
    'fedora',
    '--channel',
    'cloud',
    '--arch',
    'x86_64',
    '--compose',
    composeUrl,
    '--config',
    config,
  ];
  try {
    let code = await plume(['release', ...selectors], env);
    if (code !== 0) return code;
    const record = join(
      dir,
      'state',
      'releases',
      'fedora_cloud_Fedora-Cloud-30-20190611.0_Cloud-Base_x86_64.json',
    );
    code = await plume(['verify', '--record', record, '--config', config], env);
    if (code !== 0) return code;
    console.log('\nRunning the same release again resumes and creates nothing:');
    code = await plume(['release', ...selectors, '--quiet'], env);
    console.log(
      `\nThe release record is ${record}; \`plume amis --record ${record} --format websites\` prints the websites' JSON.`,
    );
    return code;
  } finally {
    await files.close();
    await emulator.stop();
    await gcp.stop();
    await azure.stop();
  }
}

process.exitCode = await main();
