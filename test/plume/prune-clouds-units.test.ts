import { describe, expect, it } from 'vitest';
import type { TargetRecord } from '../../src/plume/record.js';
import { newestRecords } from '../../src/plume/prune.js';
import {
  definitionDeletable,
  galleryPrincipals,
  isOwned as azureOwned,
  ownedVersion,
} from '../../src/plume/providers/azure/prune.js';
import { labelsFor } from '../../src/plume/providers/gcp/labels.js';
import {
  isOwned as gceOwned,
  newestByStream,
  ownedImage,
  streamFilter,
} from '../../src/plume/providers/gcp/prune.js';

/** The pure parts of GCE's and Azure's prune: what is plume's, how an image reads to the policy. */

const RAWHIDE = { system: 'fedora', channel: 'rawhide' };
const KEY = 'fedora/rawhide/Fedora-Rawhide-20260301.n.0/Cloud-Base/x86_64/gcp';
const labels = labelsFor({ key: KEY, tags: { Date: '2026-03-01', ImageType: 'Cloud-Base', Arch: 'x86_64' } });

describe("GCE: which images are plume's", () => {
  const image = { name: 'fedora-rawhide', status: 'READY', architecture: 'X86_64', labels };

  it('finds a stream by plume-system and plume-channel labels (and the image type, lowercased)', () => {
    expect(streamFilter({ ...RAWHIDE, imageType: 'Cloud-Base' })).toBe(
      '(labels.plume-system = fedora) (labels.plume-channel = rawhide) (labels.imagetype = cloud-base)',
    );
  });

  it('takes READY images with the release label of the channel, arch and image type only', () => {
    expect(gceOwned(image, RAWHIDE)).toBe(true);
    expect(gceOwned(image, { ...RAWHIDE, arch: 'x86_64', imageType: 'Cloud-Base' })).toBe(true);
    expect(gceOwned(image, { ...RAWHIDE, arch: 'aarch64' })).toBe(false);
    expect(gceOwned(image, { ...RAWHIDE, imageType: 'Container' })).toBe(false);
    expect(gceOwned({ ...image, status: 'PENDING' }, RAWHIDE)).toBe(false);
    expect(gceOwned(image, { system: 'fedora', channel: 'branched' })).toBe(false);
    const { 'plume-release': _, ...unreleased } = labels;
    expect(gceOwned({ ...image, labels: unreleased }, RAWHIDE)).toBe(false);
  });

  it('reads sharing from the imageUser members and a DEPRECATED state as deprecated now', () => {
    const owned = ownedImage(
      'p-images',
      { ...image, deprecated: { state: 'DEPRECATED' }, creationTimestamp: '2026-03-02T00:00:00Z' },
      RAWHIDE,
      ['allAuthenticatedUsers', 'user:b@example.org', 'group:a@example.org'],
    );
    expect(owned).toMatchObject({
      id: 'projects/p-images/global/images/fedora-rawhide',
      location: 'global',
      stream: 'fedora/rawhide/x86_64/cloud-base',
      builtAt: Date.parse('2026-03-01'),
      deprecatedAt: Date.parse('2026-03-02T00:00:00Z'),
      public: true,
      sharedWith: ['group:a@example.org', 'user:b@example.org'],
      backing: [],
    });
    expect(ownedImage('p-images', image, RAWHIDE, []).deprecatedAt).toBeUndefined();
  });

  it('names the newest image of each stream as the replacement', () => {
    const a = ownedImage('p', { ...image, name: 'a' }, RAWHIDE, []);
    const b = ownedImage(
      'p',
      { ...image, name: 'b', labels: { ...labels, date: '2026-03-05' } },
      RAWHIDE,
      [],
    );
    expect(newestByStream([b, a]).get(a.stream)?.name).toBe('b');
  });
});

describe("Azure: which versions are plume's", () => {
  const definition = { location: 'eastus', name: 'Fedora-Rawhide', architecture: 'x64' as const };
  const version = {
    location: 'eastus',
    id: '/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/galleries/gal/images/Fedora-Rawhide/versions/0.1.0',
    name: '0.1.0',
    provisioningState: 'Succeeded' as const,
    tags: {
      'plume-release': 'fedora/rawhide/X/Cloud-Base/x86_64/azure',
      Date: '2026-03-01',
      ImageType: 'Cloud-Base',
    },
  };

  it('takes Succeeded versions tagged with a release of the channel only', () => {
    expect(azureOwned(version, definition, RAWHIDE)).toBe(true);
    expect(azureOwned(version, definition, { ...RAWHIDE, arch: 'x86_64', imageType: 'Cloud-Base' })).toBe(
      true,
    );
    expect(
      azureOwned(version, { ...definition, architecture: 'Arm64' }, { ...RAWHIDE, arch: 'x86_64' }),
    ).toBe(false);
    expect(azureOwned({ ...version, provisioningState: 'Creating' }, definition, RAWHIDE)).toBe(false);
    expect(azureOwned({ ...version, tags: { Date: '2026-03-01' } }, definition, RAWHIDE)).toBe(false);
    expect(azureOwned(version, definition, { system: 'fedora', channel: 'raw' })).toBe(false);
  });

  it("reads the gallery's sharing into each version, and the end of life as its deprecation", () => {
    const sharing = galleryPrincipals({
      location: 'eastus',
      sharingProfile: {
        permissions: 'Groups',
        groups: [
          { type: 'Subscriptions', ids: ['sub-2'] },
          { type: 'AADTenants', ids: ['ten-1'] },
        ],
      },
    });
    expect(sharing).toEqual({ public: false, sharedWith: ['subscription:sub-2', 'tenant:ten-1'] });
    expect(galleryPrincipals({ location: 'eastus', sharingProfile: { permissions: 'Community' } })).toEqual({
      public: true,
      sharedWith: [],
    });
    const eol = new Date('2026-03-10T00:00:00Z');
    expect(
      ownedVersion(
        'gal',
        definition,
        { ...version, publishingProfile: { endOfLifeDate: eol } },
        RAWHIDE,
        sharing,
      ),
    ).toMatchObject({
      location: 'gal',
      name: 'Fedora-Rawhide/0.1.0',
      stream: 'fedora/rawhide/x86_64/Cloud-Base',
      deprecatedAt: eol.getTime(),
      sharedWith: ['subscription:sub-2', 'tenant:ten-1'],
    });
  });

  it('deletes a definition only when empty and past its own end of life', () => {
    const now = Date.parse('2026-03-01T00:00:00Z');
    const past = { location: 'eastus', endOfLifeDate: new Date(now - 1) };
    expect(definitionDeletable(past, 0, now)).toBe(true);
    expect(definitionDeletable(past, 1, now)).toBe(false);
    expect(definitionDeletable({ location: 'eastus', endOfLifeDate: new Date(now + 1) }, 0, now)).toBe(false);
    expect(definitionDeletable({ location: 'eastus' }, 0, now)).toBe(false);
  });
});

describe('the newest release record of a stream', () => {
  it('is found whatever the case of the image type (GCE streams are read from lowercase labels)', () => {
    const record = {
      provider: 'gcp',
      status: 'complete',
      mode: 'release',
      finishedAt: '2026-03-01T00:00:00Z',
      plan: { key: KEY, architecture: 'x86_64', tags: { ImageType: 'Cloud-Base' } },
      images: [{ id: 'projects/p/global/images/x' }],
    } as unknown as TargetRecord;
    const map = newestRecords([record]);
    expect(map.get('gcp fedora/rawhide/x86_64/cloud-base')).toEqual({
      release: KEY,
      ids: ['projects/p/global/images/x'],
    });
  });
});
