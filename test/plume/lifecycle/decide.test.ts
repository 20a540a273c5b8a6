import { describe, expect, it } from 'vitest';
import { decide } from '../../../src/plume/lifecycle/decide.js';
import { NO_POLICY, policyFor } from '../../../src/plume/lifecycle/policy.js';
import { fedora } from '../../../src/plume/systems/fedora/index.js';
import { containerLinux } from '../../../src/plume/systems/container-linux/index.js';

/** Fedora's own defaults, as `plume prune` takes them from the system. */
const FEDORA = fedora.lifecycleDefaults!();
import type { OwnedImage } from '../../../src/plume/providers/types.js';
import { PlumeError } from '../../../src/shared/errors.js';

const DAY = 86_400_000;
const NOW = Date.parse('2026-03-01T12:00:00Z');
const rawhide = policyFor({}, 'fedora', 'rawhide', FEDORA);

/** One release per day back from NOW, one image in each of two regions. */
function nightly(n: number, extra: Partial<OwnedImage> = {}): OwnedImage[] {
  return Array.from({ length: n }, (_, d) =>
    ['us-east-1', 'eu-west-1'].map((location) => ({
      provider: 'aws',
      location,
      id: `ami-${d}-${location}`,
      name: `Fedora-Rawhide-${d}-${location}`,
      variant: 'gp3',
      release: `fedora/rawhide/Fedora-Rawhide-${String(d).padStart(3, '0')}/Cloud-Base/x86_64`,
      stream: 'fedora/rawhide/x86_64/Cloud-Base',
      builtAt: NOW - d * DAY,
      public: true,
      sharedWith: [],
      backing: [`snap-${d}-${location}`],
      ...extra,
    })),
  ).flat();
}

const ids = (list: { image: OwnedImage }[]) => list.map((d) => d.image.id).sort();

describe('lifecycle policy', () => {
  it("Fedora's defaults: nightlies deprecated after 14 days, deleted after 30, newest 3 kept; releases never deleted", () => {
    expect(rawhide).toMatchObject({ deprecateAfterDays: 14, deleteAfterDays: 30, keepNewest: 3, ga: false });
    expect(policyFor({}, 'fedora', 'branched', FEDORA)).toEqual(rawhide);
    expect(policyFor({}, 'fedora', 'cloud', FEDORA)).toMatchObject({
      deprecateSuperseded: true,
      deleteAfterDays: 0,
      ga: true,
    });
    expect(policyFor({}, 'fedora', 'updates', FEDORA)).toMatchObject({ ga: true, deleteGa: false });
    expect(policyFor({}, 'container-linux', 'stable', containerLinux.lifecycleDefaults?.())).toEqual(
      NO_POLICY,
    );
  });

  it('config overrides key by key', () => {
    const p = policyFor({ fedora: { rawhide: { keep_newest: 5 } } }, 'fedora', 'rawhide', FEDORA);
    expect(p).toEqual({ ...rawhide, keepNewest: 5 });
  });

  it.each([
    [{ keep_newest: 0 }, 'config: lifecycle.fedora.rawhide.keep_newest: Too small'],
    [{ delete_after_days: -1 }, 'config: lifecycle.fedora.rawhide.delete_after_days: Too small'],
    [{ deleet_after_days: 3 }, 'config: lifecycle.fedora.rawhide: Unrecognized key'],
    [{ delete_after_days: 5 }, 'delete_after_days (5) is less than deprecate_after_days (14)'],
  ])('refuses %j with one clear line', (table, message) => {
    let err: unknown;
    try {
      policyFor({ fedora: { rawhide: table } }, 'fedora', 'rawhide', FEDORA);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(PlumeError);
    expect((err as PlumeError).message).toContain(message);
    expect((err as PlumeError).message).not.toContain('\n');
  });
});

describe('decide', () => {
  it('deletes past delete_after_days, deprecates past deprecate_after_days, keeps the newest 3', () => {
    const d = decide(nightly(40), rawhide, NOW);
    const releasesOf = (list: { image: OwnedImage }[]) =>
      [...new Set(list.map((x) => x.image.builtAt))].length;
    expect(releasesOf(d.delete)).toBe(10); // days 30..39
    expect(releasesOf(d.deprecate)).toBe(16); // days 14..29
    expect(releasesOf(d.keep)).toBe(14); // days 0..13
    expect(d.delete.every((x) => NOW - x.image.builtAt >= 30 * DAY)).toBe(true);
    expect(d.delete[0]!.reason).toMatch(/^built 30 days ago \(2026-01-30\), delete after 30$/);
    expect(d.keep.find((x) => x.image.id === 'ami-0-us-east-1')!.reason).toBe(
      'one of the newest 3 releases of the stream (#1)',
    );
  });

  it('never touches the newest K even when old, nor the release the newest record names', () => {
    const old = nightly(10).map((i) => ({ ...i, builtAt: i.builtAt - 100 * DAY }));
    const d = decide(old, rawhide, NOW, { release: old[16]!.release, ids: [] });
    expect(ids(d.keep)).toEqual(
      old
        .filter((i) => ['ami-0', 'ami-1', 'ami-2', 'ami-8'].some((p) => i.id.startsWith(`${p}-`)))
        .map((i) => i.id)
        .sort(),
    );
    expect(d.keep.filter((k) => k.reason.includes('newest release record'))).toHaveLength(2);
    expect(d.delete).toHaveLength(12);
  });

  it('keeps an image the newest record names by id', () => {
    const imgs = nightly(40);
    const d = decide(imgs, rawhide, NOW, { release: 'other', ids: ['ami-35-eu-west-1'] });
    expect(d.keep.map((k) => k.image.id)).toContain('ami-35-eu-west-1');
    expect(d.delete.map((k) => k.image.id)).toContain('ami-35-us-east-1');
  });

  it('does not delete GA, shared or recently launched images, and deprecates them instead', () => {
    const ga = decide(nightly(40), { ...rawhide, ga: true }, NOW);
    expect(ga.delete).toHaveLength(0);
    expect(ga.deprecate.find((x) => x.image.id === 'ami-35-us-east-1')!.reason).toContain(
      'not deleted: a GA release: never deleted',
    );
    const imgs = nightly(40);
    imgs.find((i) => i.id === 'ami-35-us-east-1')!.sharedWith = ['111122223333'];
    imgs.find((i) => i.id === 'ami-36-us-east-1')!.lastLaunchedAt = NOW - 2 * DAY;
    const d = decide(imgs, rawhide, NOW);
    expect(ids(d.deprecate)).toContain('ami-35-us-east-1');
    expect(ids(d.deprecate)).toContain('ami-36-us-east-1');
    expect(ids(d.delete)).not.toContain('ami-35-us-east-1');
    expect(ids(d.delete)).toContain('ami-35-eu-west-1');
    expect(
      decide(imgs, { ...rawhide, deleteShared: true, keepLaunchedWithinDays: 0 }, NOW).delete,
    ).toHaveLength(20);
  });

  it('does not deprecate twice, and deprecates when a deprecation is only scheduled', () => {
    const imgs = nightly(20);
    for (const i of imgs) i.deprecatedAt = i.builtAt + 14 * DAY;
    const d = decide(imgs, rawhide, NOW);
    expect(d.deprecate).toHaveLength(0);
    expect(d.keep.find((x) => x.image.id === 'ami-15-us-east-1')!.reason).toMatch(/^deprecated on /);
    const later = nightly(20).map((i) => ({ ...i, deprecatedAt: NOW + DAY }));
    expect(decide(later, rawhide, NOW).deprecate).toHaveLength(2 * 6);
  });

  it('deprecates releases when superseded and never deletes them (Fedora cloud)', () => {
    const d = decide(nightly(5), policyFor({}, 'fedora', 'cloud', FEDORA), NOW);
    expect(d.delete).toHaveLength(0);
    expect(ids(d.keep)).toEqual(['ami-0-eu-west-1', 'ami-0-us-east-1']);
    expect(d.deprecate).toHaveLength(8);
    expect(d.deprecate[0]!.reason).toMatch(/^superseded by fedora\/rawhide\/Fedora-Rawhide-000/);
  });

  it('keeps the newest K and deletes the rest with delete_beyond_newest', () => {
    const d = decide(nightly(6), { ...NO_POLICY, keepNewest: 2, deleteBeyondNewest: true }, NOW);
    expect(d.keep).toHaveLength(4);
    expect(d.delete).toHaveLength(8);
    expect(d.delete[0]!.reason).toBe('release #3 of the stream, beyond the newest 2');
  });

  it('with no policy keeps everything', () => {
    const d = decide(nightly(60), NO_POLICY, NOW);
    expect(d.keep).toHaveLength(120);
  });

  it('is deterministic whatever the input order', () => {
    const imgs = nightly(35);
    const a = decide(imgs, rawhide, NOW);
    const b = decide([...imgs].reverse(), rawhide, NOW);
    expect(b).toEqual(a);
  });
});
