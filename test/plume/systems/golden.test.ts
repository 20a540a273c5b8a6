import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../../src/plume/cli.js';
import { serveDirectory, type FileServer } from '../../../tools/compose/http-server.js';

/**
 * The dry-run plan of every Container Linux channel and every Fedora channel × image type × arch, as
 * `plume release --dry-run --output json` prints it, compared with a reviewed file under test/plume/golden/.
 * A change to a plan is a change to what gets published: review the diff, then regenerate with
 * `PLUME_UPDATE_GOLDEN=1 npx vitest run test/plume/systems/golden.test.ts && npx prettier --write test/plume/golden`.
 */

const GOLDEN = new URL('../golden/', import.meta.url).pathname;
const UPDATE = process.env.PLUME_UPDATE_GOLDEN === '1';

let server: FileServer;
let dir: string;
let configPath: string;
let cloudsConfigPath: string;
let keyFile: string;

/**
 * The same setup with GCE and Azure configured as Container Linux published to them (mantle's coreos-cloud
 * project; a gallery shared with the community), its stable builds served from composes/cl/: the build
 * there holds the GCE archive's signature alone, which names the GCE image's day.
 */
const CLOUDS = `
[gcp]
project = "coreos-cloud"
bucket = "coreos-gce-import"
storage_locations = ["us", "eu"]

[azure]
subscription = "00000000-0000-4000-8000-00000000c0de"
resource_group = "coreos-images"
gallery = "CoreOS_Container_Linux"
storage_account = "coreosimages"
location = "westus2"
regions = ["westus2", "eastus", "westeurope"]

[azure.community]
publisher_uri = "https://coreos.com"
publisher_contact = "security@coreos.com"
eula = "https://coreos.com/legal"
public_name_prefix = "CoreOS"

[systems.container-linux.channels.stable]
base_url = "@COMPOSES@/cl/stable/boards"

[systems.container-linux.channels.beta]
base_url = "@COMPOSES@/cl/beta/boards"
`;

beforeAll(async () => {
  server = await serveDirectory(join(GOLDEN, 'composes'));
  dir = mkdtempSync(join(tmpdir(), 'plume-golden-'));
  // Plans only name the key; any readable file stands in for it here.
  keyFile = join(dir, 'buildbot.asc');
  writeFileSync(keyFile, 'public key\n');
  configPath = join(dir, 'plume.toml');
  const fill = (text: string) => text.replaceAll('@KEY@', keyFile).replaceAll('@COMPOSES@', server.url);
  writeFileSync(configPath, fill(readFileSync(join(GOLDEN, 'plume.toml'), 'utf8')));
  cloudsConfigPath = join(dir, 'plume-clouds.toml');
  writeFileSync(cloudsConfigPath, fill(readFileSync(join(GOLDEN, 'plume.toml'), 'utf8') + CLOUDS));
});
afterAll(async () => {
  await server?.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Run the CLI in this process and return what it printed, with the test's own paths made stable. */
async function dryRun(args: string[], config = configPath): Promise<string> {
  let out = '';
  const write = vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
    out += chunk.toString();
    return true;
  });
  let code: number;
  try {
    code = await main(['node', 'plume', ...args, '--dry-run', '--output', 'json', '--config', config, '-q']);
  } finally {
    write.mockRestore();
  }
  expect(code, out).toBe(0);
  return out.replaceAll(server.url, '{composes}').replaceAll(keyFile, '{verify_key}');
}

/** Compared as data (the files are formatted like the rest of the repository); values and order count. */
function compareGolden(name: string, actual: string): void {
  const path = join(GOLDEN, name);
  if (UPDATE) writeFileSync(path, actual);
  if (!existsSync(path))
    throw new Error(
      `no golden file ${name}: review the plan, then run with PLUME_UPDATE_GOLDEN=1 to write it`,
    );
  expect(JSON.parse(actual)).toStrictEqual(JSON.parse(readFileSync(path, 'utf8')));
}

describe('golden plans: container-linux', () => {
  it.each(['alpha', 'beta', 'stable', 'developer', 'user'])('%s', async (channel) => {
    const out = await dryRun([
      'release',
      '--system',
      'container-linux',
      '--channel',
      channel,
      '--version',
      '1688.5.3',
    ]);
    compareGolden(`container-linux-${channel}.json`, out);
  });

  it('pre-release keeps everything private', async () => {
    const out = await dryRun([
      'pre-release',
      '--distro',
      'cl',
      '-C',
      'stable',
      '-B',
      'amd64-usr',
      '-V',
      '1688.5.3',
    ]);
    compareGolden('container-linux-stable-pre-release.json', out);
  });

  it('stable to AWS, GCE and Azure, every provider the config enables', async () => {
    const out = await dryRun(
      ['release', '--system', 'container-linux', '--channel', 'stable', '--version', '1688.5.3'],
      cloudsConfigPath,
    );
    compareGolden('container-linux-stable-clouds.json', out);
  });

  it('a build without a signed GCE archive is published elsewhere, and says why GCE was left out', async () => {
    const out = JSON.parse(
      await dryRun(['release', '-C', 'beta', '-V', '1688.5.3', '--platform', 'gcp,azure'], cloudsConfigPath),
    ) as { targets: { provider: string }[]; skipped: { provider: string; reason: string }[] };
    expect(out.targets.map((t) => t.provider)).toEqual(['azure']);
    expect(out.skipped).toEqual([
      {
        provider: 'gcp',
        reason:
          'the build has no signed coreos_production_gce.tar.gz (not found (HTTP 404): {composes}/cl/beta/boards/amd64-usr/1688.5.3/coreos_production_gce.tar.gz.sig)',
      },
    ]);
  });

  it('pre-release to GCE and Azure keeps them private', async () => {
    const out = await dryRun(
      ['pre-release', '--distro', 'cl', '-C', 'stable', '-V', '1688.5.3', '--platform', 'gcp,azure'],
      cloudsConfigPath,
    );
    compareGolden('container-linux-stable-clouds-pre-release.json', out);
  });
});

const FEDORA: [channel: string, composeId: string, imageTypes: string[]][] = [
  ['rawhide', 'Fedora-Rawhide-20180625.n.0', ['Cloud-Base', 'AtomicHost']],
  ['branched', 'Fedora-28-20180321.n.0', ['Cloud-Base', 'AtomicHost']],
  ['updates', 'Fedora-AtomicHost-28-20180625.1', ['Cloud-Base', 'AtomicHost']],
  // A release candidate and a Beta pin both naming schemes; Fedora 28's release compose held Atomic Host
  // too, released with it (Atomic Host ended with Fedora 29, so Fedora 41's has none).
  ['cloud', 'Fedora-28-20180425.0', ['Cloud-Base', 'AtomicHost']],
  ['cloud', 'Fedora-41-20240912.0', ['Cloud-Base']],
];

describe('golden plans: fedora', () => {
  const cases = FEDORA.flatMap(([channel, composeId, types]) =>
    types.flatMap((imageType) =>
      ['x86_64', 'aarch64'].map((arch) => ({ channel, composeId, imageType, arch })),
    ),
  );
  it.each(cases)('$channel $composeId $imageType $arch', async ({ channel, composeId, imageType, arch }) => {
    const out = await dryRun([
      'release',
      '--system',
      'fedora',
      '--channel',
      channel,
      '--compose-id',
      composeId,
      '--image-type',
      imageType,
      '--arch',
      arch,
    ]);
    compareGolden(`fedora-${channel}-${composeId}-${imageType}-${arch}.json`, out);
  });

  it("without --arch, x86_64, as plume's -A/--architecture defaulted", async () => {
    const out = await dryRun([
      'release',
      '--distro',
      'fedora',
      '--channel',
      'rawhide',
      '--compose-id',
      'Fedora-Rawhide-20180625.n.0',
    ]);
    compareGolden('fedora-rawhide-Fedora-Rawhide-20180625.n.0-Cloud-Base-x86_64.json', out);
  });

  it('staging publishes privately to its own account and regions', async () => {
    const out = await dryRun([
      'release',
      '--distro',
      'fedora',
      '--channel',
      'rawhide',
      '--compose-id',
      'Fedora-Rawhide-20180625.n.0',
      '--arch',
      'x86_64',
      '--environment',
      'dev',
    ]);
    compareGolden('fedora-rawhide-Fedora-Rawhide-20180625.n.0-Cloud-Base-x86_64-staging.json', out);
  });

  it("a --label or --respin other than the compose's own is refused: its composeinfo.json is the truth", async () => {
    for (const [flag, value, actual] of [
      ['--label', 'RC-20180425.0', 'RC-1.1'],
      ['--respin', '3', '0'],
    ] as const) {
      let err = '';
      const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
        err += chunk.toString();
        return true;
      });
      try {
        const code = await main([
          'node',
          'plume',
          'release',
          '--system',
          'fedora',
          '--channel',
          'cloud',
          '--compose',
          `${server.url}/Fedora-28-20180425.0/compose`,
          flag,
          value,
          '--dry-run',
          '--config',
          configPath,
        ]);
        expect(code).toBe(2);
      } finally {
        write.mockRestore();
      }
      expect(err).toContain(
        `plume: error: compose Fedora-28-20180425.0 has ${flag.slice(2)} ${actual}, not ${value}: check ${flag} and the compose`,
      );
    }
  });

  it('AtomicHost on the cloud channel is refused after Atomic Host ended', async () => {
    let err = '';
    const write = vi.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      err += chunk.toString();
      return true;
    });
    try {
      const code = await main([
        'node',
        'plume',
        'release',
        '--system',
        'fedora',
        '--channel',
        'cloud',
        '--compose-id',
        'Fedora-41-20240912.0',
        '--image-type',
        'AtomicHost',
        '--arch',
        'x86_64',
        '--dry-run',
        '--config',
        configPath,
      ]);
      expect(code).toBe(2);
    } finally {
      write.mockRestore();
    }
    expect(err).toContain(
      'AtomicHost is not released on the cloud channel from compose Fedora-41-20240912.0: only from the release composes of Fedora 29 and before: use --channel updates or branched',
    );
  });
});
