import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PlumeError } from '../../src/shared/errors.js';
import { parseConfig } from '../../src/plume/config.js';
import { readProfile } from '../../src/plume/providers/azure/clients.js';
import { dataRuns } from '../../src/plume/providers/azure/page-upload.js';
import { definitionProblems, regionStates, sharingPlan } from '../../src/plume/providers/azure/decisions.js';
import { azureModule } from '../../src/plume/providers/azure/module.js';
import { completeImage } from '../../src/plume/providers/azure/settings.js';
import { checkVhdFooter, checkVhdSize, footerChecksum } from '../../src/plume/providers/azure/vhd.js';
import {
  azureDefinition,
  azureExcludeFromLatest,
  azureVersionName,
  type FedoraRelease,
} from '../../src/plume/systems/fedora/targets.js';
import { xzTail } from '../../src/plume/source/xz-tail.js';
import { DISK_TYPE, fixedVhdFooter } from '../../tools/emulator/azure/vhd.js';

const MiB = 2 ** 20;
const SUB = '2a7d8f3e-6c1b-4b7e-9f0a-3d5c7e9b1a24';

function failure(fn: () => unknown): PlumeError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PlumeError) return err;
    throw err;
  }
  throw new Error('expected a PlumeError, nothing was thrown');
}

describe('the VHD footer', () => {
  it('takes a whole number of MiB plus the footer, and nothing else', () => {
    expect(checkVhdSize(64 * MiB + 512)).toBe(64 * MiB);
    expect(failure(() => checkVhdSize(64 * MiB)).oneLine()).toMatch(/not a fixed VHD of whole MiB/);
    expect(failure(() => checkVhdSize(64 * MiB + 1024)).kind).toBe('input');
    expect(failure(() => checkVhdSize(64 * MiB + 700)).oneLine()).toMatch(/not a fixed VHD of whole MiB/);
  });

  it("checks the cookie, the disk type, the size and qemu-img's checksum", () => {
    const good = fixedVhdFooter(8 * MiB);
    expect(footerChecksum(good)).toBe(good.readUInt32BE(64));
    expect(() => checkVhdFooter(good, 8 * MiB + 512)).not.toThrow();
    expect(
      failure(() => checkVhdFooter(fixedVhdFooter(8 * MiB, DISK_TYPE.fixed, 'notavhd'), 8 * MiB + 512))
        .message,
    ).toMatch(/conectix/);
    expect(
      failure(() => checkVhdFooter(fixedVhdFooter(8 * MiB, DISK_TYPE.dynamic), 8 * MiB + 512)).message,
    ).toMatch(/disk type is 3, not 2/);
    expect(failure(() => checkVhdFooter(good, 16 * MiB + 512)).message).toMatch(
      /gives a size of 8388608 bytes/,
    );
    const corrupt = Buffer.from(good);
    corrupt[100] = 0xff;
    expect(failure(() => checkVhdFooter(corrupt, 8 * MiB + 512)).message).toMatch(/checksum/);
  });
});

describe('the pages of a block worth sending', () => {
  it('are the runs of pages holding data, split by gaps of zero pages as large as asked', () => {
    const block = Buffer.alloc(64 * 1024);
    expect(dataRuns(block, 4096)).toEqual([]);
    block[10] = 1; // page 0
    block[2 * 512] = 1; // page 2: a one-page gap, kept
    block[40 * 512 + 511] = 1; // page 40: a 37-page gap, split
    expect(dataRuns(block, 4096)).toEqual([
      { start: 0, end: 3 * 512 },
      { start: 40 * 512, end: 41 * 512 },
    ]);
    expect(dataRuns(block, 64 * 1024)).toEqual([{ start: 0, end: 41 * 512 }]);
    // A block cut short (the blob's last) ends where it ends.
    expect(dataRuns(block.subarray(0, 40 * 512 + 100), 512)).toEqual([
      { start: 0, end: 512 },
      { start: 2 * 512, end: 3 * 512 },
    ]);
  });
});

describe('the end of an xz file, read ahead', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plume-xz-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const raw = Buffer.concat([Buffer.alloc(3 * MiB + 100, 5), Buffer.from('the very end')]);
  const make = (name: string, args: string[]) => {
    const path = join(dir, name);
    writeFileSync(path, raw);
    execFileSync('xz', ['--compress', '--force', ...args, path]);
    const file = readFileSync(`${path}.xz`);
    return (offset: number, length: number) => Promise.resolve(file.subarray(offset, offset + length));
  };
  it('is read from the last blocks alone (as few as hold it) when the file has several', async () => {
    const readAt = make('multi', ['-T2', '--block-size=1MiB']);
    const size = (await readAt(0, 1e9)).length;
    expect(await xzTail(size, readAt, 512)).toEqual(raw.subarray(raw.length - 512));
  });
  it('is not to be had from a file of one block', async () => {
    const readAt = make('single', ['-1']);
    expect(await xzTail((await readAt(0, 1e9)).length, readAt, 512)).toBeUndefined();
  });
});

describe("Fedora's Azure names", () => {
  const r = (o: Partial<FedoraRelease> = {}): FedoraRelease => ({
    channel: 'cloud',
    version: '41',
    arch: 'x86_64',
    respin: 0,
    labelKind: 'RC',
    date: '20240911',
    ...o,
  });
  it('names definitions per release and arch, versions release.date.respin', () => {
    expect(azureDefinition(r())).toEqual({ definition: 'Fedora-Cloud-41-x64', sku: '41-x64' });
    expect(azureDefinition(r({ version: 'Rawhide', arch: 'aarch64', channel: 'rawhide' }))).toEqual({
      definition: 'Fedora-Cloud-Rawhide-Arm64',
      sku: 'Rawhide-Arm64',
    });
    expect(azureVersionName(r())).toBe('41.20240911.0');
    expect(azureVersionName(r({ respin: 2 }))).toBe('41.20240911.2');
    expect(azureVersionName(r({ version: 'Rawhide', channel: 'rawhide' }))).toBe('0.20240911.0');
  });
  it('keeps Betas and branched nightlies out of latest, not releases or Rawhide', () => {
    expect(azureExcludeFromLatest(r())).toBe(false);
    expect(azureExcludeFromLatest(r({ labelKind: 'Beta' }))).toBe(true);
    expect(azureExcludeFromLatest(r({ channel: 'branched', labelKind: 'none' }))).toBe(true);
    expect(azureExcludeFromLatest(r({ channel: 'rawhide', version: 'Rawhide', labelKind: 'none' }))).toBe(
      false,
    );
  });
});

const plan = (settings: Record<string, unknown>, name = '41.20240911.0', isPublic = false) => ({
  name: 'azure',
  key: 'fedora/cloud/x/azure',
  architecture: 'x86_64' as const,
  visibility: { public: isPublic, accounts: [] },
  images: ['eastus', 'westus2'].map((location) => ({ location, variant: 'version', name })),
  settings: {
    subscription: SUB,
    resourceGroup: 'fedora',
    gallery: 'Fedora',
    storageAccount: 'fedoraimages',
    storageContainer: 'plume-images',
    publisher: 'Fedora',
    offer: 'Fedora-Cloud',
    definition: 'Fedora-Cloud-41-x64',
    sku: '41-x64',
    ...settings,
  },
});

describe('a planned Azure target', () => {
  it('is completed from the config and the system', () => {
    const s = completeImage(plan({}));
    expect(s).toMatchObject({
      architecture: 'x64',
      version: '41.20240911.0',
      storageResourceGroup: 'fedora',
    });
  });
  it('says in one line what is missing or wrong', () => {
    expect(failure(() => completeImage(plan({ subscription: undefined }))).oneLine()).toBe(
      'target azure of fedora/cloud/x/azure: azure setting subscription: Invalid input: expected string, received undefined: set subscription in [azure] of the config file',
    );
    expect(failure(() => completeImage(plan({}, '41.0'))).oneLine()).toMatch(
      /is not one Azure image version name/,
    );
    expect(failure(() => completeImage(plan({}, '41.20240911.0', true))).oneLine()).toMatch(
      /\[azure\.community\] is not configured/,
    );
  });
  it('refuses unknown keys in [azure] and names them', () => {
    const err = failure(() => parseConfig('[azure]\nsubscriptions = "x"\n'));
    expect(err.kind).toBe('usage');
    expect(err.message).toMatch(/subscriptions/);
  });
  it('puts the gallery region first among the regions, once', () => {
    const config = parseConfig(
      `[azure]\nlocation = "eastus"\nregions = ["westus2", "eastus", "northeurope"]\n`,
    );
    const [t] = azureModule.targetSettings(config, [[]], {});
    expect(t!.locations).toEqual(['eastus', 'westus2', 'northeurope']);
    expect(t!.primaryLocation).toBe('eastus');
  });
});

const image = completeImage(plan({ features: [{ name: 'SecurityType', value: 'TrustedLaunchSupported' }] }));
const community = {
  publisher_uri: 'https://fedoraproject.org',
  publisher_contact: 'cloud@lists.fedoraproject.org',
  eula: 'https://fedoraproject.org/wiki/Legal:Licenses',
  public_name_prefix: 'Fedora',
};

describe('gallery sharing', () => {
  it('a public release makes a private gallery a community one, in two steps, then nothing', () => {
    const steps = sharingPlan({ location: 'eastus' }, { public: true, accounts: [] }, community);
    expect(steps.map((s) => s.what)).toEqual(['community permissions', 'community sharing']);
    expect(steps[0]!.gallery?.sharingProfile?.communityGalleryInfo?.publicNamePrefix).toBe('Fedora');
    expect(steps[1]!.sharing).toEqual({ operationType: 'EnableCommunity' });
    const shared = {
      location: 'eastus',
      sharingProfile: {
        permissions: 'Community',
        communityGalleryInfo: { publicNamePrefix: 'Fedora', communityGalleryEnabled: true },
      },
    };
    expect(sharingPlan(shared, { public: true, accounts: [] }, community)).toEqual([]);
  });
  it('shares with the subscriptions and tenants not yet in its groups', () => {
    const tenant = 'c24c76aa-8897-4027-9b03-8f7928b54ff6';
    const accounts = [`subscription:${SUB}`, `tenant:${tenant}`];
    const fresh = sharingPlan({ location: 'eastus' }, { public: false, accounts });
    expect(fresh.map((s) => s.what)).toEqual(['group permissions', `sharing with ${SUB}, ${tenant}`]);
    const partly = sharingPlan(
      {
        location: 'eastus',
        sharingProfile: { permissions: 'Groups', groups: [{ type: 'Subscriptions', ids: [SUB] }] },
      },
      { public: false, accounts },
    );
    expect(partly).toEqual([
      {
        what: `sharing with ${tenant}`,
        sharing: { operationType: 'Add', groups: [{ type: 'AADTenants', ids: [tenant] }] },
      },
    ]);
  });
  it('a private release without accounts never touches sharing', () => {
    expect(
      sharingPlan(
        { location: 'eastus', sharingProfile: { permissions: 'Community' } },
        { public: false, accounts: [] },
      ),
    ).toEqual([]);
  });
});

describe('what Azure reports', () => {
  it("keys replication states by plume's region names", () => {
    expect(
      regionStates({
        location: 'eastus',
        replicationStatus: {
          summary: [
            { region: 'East US', state: 'Completed' },
            { region: 'West US 2', state: 'Replicating' },
          ],
        },
      }),
    ).toEqual({ eastus: 'Completed', westus2: 'Replicating' });
  });
  it('names what an existing definition says differently', () => {
    const wrong = definitionProblems(
      {
        location: 'eastus',
        osType: 'Linux',
        osState: 'Generalized',
        hyperVGeneration: 'V1',
        architecture: 'x64',
        identifier: { publisher: 'Fedora', offer: 'Fedora-Cloud', sku: '41' },
        features: [],
      },
      image,
    );
    expect(wrong).toEqual([
      'its hyperVGeneration is V1, not V2',
      'its identifier is Fedora/Fedora-Cloud/41, not Fedora/Fedora-Cloud/41-x64',
      'it lacks the features SecurityType=TrustedLaunchSupported',
    ]);
  });
});

describe('--azure-profile', () => {
  const dir = mkdtempSync(join(tmpdir(), 'plume-azure-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = (name: string, content: string, mode: number) => {
    const path = join(dir, name);
    writeFileSync(path, content);
    chmodSync(path, mode);
    return path;
  };
  const good = JSON.stringify({
    clientId: 'app',
    clientSecret: 's3cret-value',
    tenantId: 't',
    subscriptionId: SUB,
  });

  it('reads a service principal file only others cannot read', () => {
    expect(readProfile(file('ok.json', good, 0o600))).toMatchObject({ clientId: 'app', subscriptionId: SUB });
    const open = failure(() => readProfile(file('open.json', good, 0o644)));
    expect(open.oneLine()).toMatch(/mode 0644 lets group or others read it: chmod 600/);
    expect(open.oneLine()).not.toContain('s3cret-value');
  });
  it('says in one line what is wrong with its content, never echoing the secret', () => {
    const err = failure(() =>
      readProfile(file('bad.json', JSON.stringify({ clientSecret: 's3cret-value', tenantId: 't' }), 0o600)),
    );
    expect(err.kind).toBe('usage');
    expect(err.oneLine()).toMatch(/clientId/);
    expect(err.oneLine()).not.toContain('s3cret-value');
  });
});
