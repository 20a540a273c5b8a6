/**
 * A release of one Azure target from a fixed VHD file plume is handed directly, as a process of its own: what
 * `plume release` does for a system whose Azure artifact is compressed in a way that records no size
 * (Container Linux's `.vhd.bz2`), with the real runner, journal, provider and clients. Tests start it as a
 * child (so it can be killed with SIGKILL mid-upload, and so it trusts the emulator's certificate through
 * NODE_EXTRA_CA_CERTS as the CLI does) and read what it prints: the record on stdout, or `plume: error:`
 * and one line on stderr, exit 1.
 *
 * `node --import tsx test/support/azure-release-child.ts SPEC.json` where the spec is a ChildSpec.
 */
import { readFileSync } from 'node:fs';
import { loadConfig } from '../../src/plume/config.js';
import type { ReleasePlan, TargetPlan } from '../../src/plume/plan.js';
import { azureModule } from '../../src/plume/providers/azure/module.js';
import { runRelease } from '../../src/plume/release.js';
import { DEFAULT_SOURCE_POLICY } from '../../src/plume/source/policy.js';
import type { Compression } from '../../src/plume/source/decompress.js';
import { SqliteJournal } from '../../src/plume/state/sqlite-journal.js';
import {
  azureDefinition,
  azureExcludeFromLatest,
  azureFeatures,
  azureVersionName,
  type FedoraRelease,
} from '../../src/plume/systems/fedora/targets.js';
import { errorMessage } from '../../src/shared/errors.js';
import { createLogger } from '../../src/shared/log.js';

export interface ChildSpec {
  config: string;
  state: string;
  /** The image file (a local path) and what is known of it. */
  image: string;
  compression: Compression;
  sha256: string;
  /** `YYYYMMDD`: the compose's date, in the version's name. */
  date: string;
  /** The policy ([images]): largest volume, least data. */
  maxVolumeGiB: number;
  minDataMiB: number;
  /** What a system gives an image that records no size (Container Linux: 8 GiB). */
  fallbackVolumeGiB?: number;
}

async function main(): Promise<number> {
  const spec = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as ChildSpec;
  const { config } = await loadConfig(spec.config);
  const log = createLogger({ name: 'plume' });
  const release: FedoraRelease = {
    channel: 'cloud',
    version: '41',
    arch: 'x86_64',
    respin: 0,
    labelKind: 'none',
    date: spec.date,
  };
  // Fedora's Azure identifier, as its system's settings layer gives it.
  const [settings] = azureModule.targetSettings(
    config,
    [[{ where: 'test', table: { publisher: 'Fedora', offer: 'Fedora-Cloud' } }]],
    {},
  );
  const build = `Fedora-Cloud-Base-Azure-41-${spec.date}.0.x86_64`;
  const key = `fedora/cloud/41/${spec.date}.0/x86_64`;
  const target: TargetPlan = azureModule.check({
    key: `${key}/azure`,
    provider: 'azure',
    name: 'azure',
    architecture: 'x86_64',
    build,
    description: build,
    tags: { Channel: 'cloud', Version: '41' },
    source: {
      url: spec.image,
      sha256: spec.sha256,
      compression: spec.compression,
      ...(spec.fallbackVolumeGiB !== undefined ? { fallbackVolumeGiB: spec.fallbackVolumeGiB } : {}),
      minDataBytes: spec.minDataMiB * 2 ** 20,
      maxVolumeGiB: spec.maxVolumeGiB,
    },
    primaryLocation: settings!.primaryLocation,
    images: settings!.locations.map((location) => ({
      location,
      variant: 'version',
      name: azureVersionName(release),
    })),
    visibility: settings!.visibility,
    settings: {
      ...settings!.settings,
      ...azureDefinition(release),
      features: azureFeatures(release),
      excludeFromLatest: azureExcludeFromLatest(release),
    },
  });
  const plan: ReleasePlan = {
    key,
    system: 'fedora',
    channel: 'cloud',
    arch: 'x86_64',
    version: '41',
    build,
    targets: [target],
    skipped: [],
  };
  const journal = new SqliteJournal(spec.state);
  try {
    const record = await runRelease(plan, {
      providerFor: azureModule.factory(config),
      journal,
      policy: { ...DEFAULT_SOURCE_POLICY, allowFiles: true },
      log,
      repairRounds: config.release.repair_rounds,
    });
    process.stdout.write(`${JSON.stringify(record)}\n`);
    return record.status === 'complete' ? 0 : 3;
  } catch (err) {
    process.stderr.write(`plume: error: ${errorMessage(err)}\n`);
    return 1;
  } finally {
    journal.close();
  }
}

process.exitCode = await main();
