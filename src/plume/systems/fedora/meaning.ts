import { parseComposeId } from './compose-id.js';
import { parseLabel, type LabelKind } from './naming.js';

export type FedoraChannel = 'rawhide' | 'branched' | 'updates' | 'cloud';
export type FedoraImageType = 'Cloud-Base' | 'AtomicHost';

/** What a Pungi message says about its compose; any field may be missing (then the id tells). */
export interface ComposeDescription {
  composeId: string;
  /** `Fedora`, `Fedora-Cloud`, `Fedora-AtomicHost`, ... */
  releaseShort?: string;
  /** production, nightly, test, ci, development. */
  composeType?: string;
  /** `Beta-1.2`, `RC-1.4`, `RC-20190611.0`, or null for nightlies. */
  composeLabel?: string | null;
  /** `30`, `Rawhide`. */
  releaseVersion?: string;
  /** Where the compose is (its `compose/` URL): evidence for the channel where the id leaves it open. */
  location?: string;
}

export type ComposeMeaning =
  | {
      ours: true;
      channel: FedoraChannel;
      /** The image types a compose of this kind is released as (the compose must then hold them). */
      imageTypes: FedoraImageType[];
      labelKind: LabelKind;
      /** The label's own version (`1.2` of `Beta-1.2`), when labelled. */
      labelVersion?: string;
      version: string;
    }
  | { ours: false; reason: string };

/** Fedora Atomic Host ended with Fedora 29: later composes have no AtomicHost image to look for. */
export const LAST_ATOMIC_RELEASE = 29;

function withAtomic(version: string): FedoraImageType[] {
  const n = Number(version);
  return Number.isInteger(n) && n <= LAST_ATOMIC_RELEASE ? ['Cloud-Base', 'AtomicHost'] : ['Cloud-Base'];
}

/**
 * The directory the compose was written under, when it names a nightly channel: Pungi writes composes to
 * `.../compose/rawhide/{id}/compose` and `.../compose/branched/{id}/compose`. Only the directory right
 * above the compose's own counts, so nothing else in a URL can pass for it.
 */
export function locationChannel(
  composeId: string,
  location: string | undefined,
): 'rawhide' | 'branched' | undefined {
  if (!location) return undefined;
  let path: string;
  try {
    path = new URL(location).pathname;
  } catch {
    path = location;
  }
  const parts = path.split('/').filter(Boolean);
  const at = parts.lastIndexOf(composeId);
  const parent = at > 0 ? parts[at - 1] : undefined;
  return parent === 'rawhide' || parent === 'branched' ? parent : undefined;
}

/**
 * What a compose means for Fedora's cloud images, from what its message says (the compose id fills in what
 * the message lacks). Pure; the controller asks it before reading any metadata.
 * - `Fedora-Rawhide-…n.N` nightlies are `rawhide`; nightlies of a numbered release are `branched`, except
 *   where the compose lives under `rawhide/`: before Rawhide composes were named so, they carried the
 *   number of the release Rawhide would become (`Fedora-24-20151208.n.7`), and only the location tells;
 * - `Fedora-Cloud` production composes (the two-week and release composes) and production `Fedora`
 *   composes labelled Beta or RC are `cloud`. A release's own compose (`Fedora`) also holds its Atomic Host
 *   images until Atomic Host ended (Fedora 29), and those were released with it: fedimg published every
 *   cloud image of Fedora 28's release candidate, and the release's Atomic Host AMIs are those. They go
 *   with the compose, on `cloud`, rather than on `updates` (the two-week Atomic composes that came after);
 * - `Fedora-Atomic` / `Fedora-AtomicHost` production composes (the two-week Atomic releases) are `updates`;
 * - test, CI and development composes, updates composes (packages, no images), unlabelled or otherwise
 *   labelled production composes and other products are not ours, with the reason.
 */
export function composeMeaning(c: ComposeDescription): ComposeMeaning {
  const id = parseComposeId(c.composeId);
  const short = c.releaseShort ?? id?.releaseShort;
  const rawVersion = c.releaseVersion ?? id?.version;
  if (!short || !rawVersion)
    return { ours: false, reason: `cannot tell the release of compose ${c.composeId}` };
  const version = rawVersion.toLowerCase() === 'rawhide' ? 'Rawhide' : rawVersion;
  const type = c.composeType ?? id?.type ?? 'production';
  if (type !== 'production' && type !== 'nightly')
    return {
      ours: false,
      reason: `${c.composeId} is a ${type} compose; only production and nightly composes are released`,
    };
  if (id && id.releaseType !== 'ga')
    return {
      ours: false,
      reason: `${c.composeId} is an ${id.releaseType} compose, which holds packages, not cloud images`,
    };
  const label = type === 'production' ? parseLabel(c.composeLabel) : parseLabel(null);
  if (label.kind === 'other')
    return {
      ours: false,
      reason: `${c.composeId} is labelled ${label.label}; only Beta and RC composes are released`,
    };
  const labelled =
    label.kind === 'none'
      ? { labelKind: 'none' as const }
      : { labelKind: label.kind, labelVersion: label.version };

  switch (short) {
    case 'Fedora':
      if (type === 'nightly')
        return version === 'Rawhide' || locationChannel(c.composeId, c.location) === 'rawhide'
          ? { ours: true, channel: 'rawhide', imageTypes: ['Cloud-Base'], labelKind: 'none', version }
          : { ours: true, channel: 'branched', imageTypes: withAtomic(version), labelKind: 'none', version };
      if (version === 'Rawhide')
        return {
          ours: false,
          reason: `${c.composeId} is a production compose of Rawhide, which is only composed nightly`,
        };
      if (label.kind === 'none')
        return { ours: false, reason: `${c.composeId} is a production compose without a Beta or RC label` };
      return { ours: true, channel: 'cloud', imageTypes: withAtomic(version), ...labelled, version };
    case 'Fedora-Cloud':
      if (type !== 'production')
        return {
          ours: false,
          reason: `${c.composeId} is a nightly Fedora-Cloud compose; only its production composes are released`,
        };
      return { ours: true, channel: 'cloud', imageTypes: ['Cloud-Base'], ...labelled, version };
    case 'Fedora-Atomic':
    case 'Fedora-AtomicHost':
      if (type !== 'production')
        return {
          ours: false,
          reason: `${c.composeId} is a nightly Atomic compose; only the two-week releases are released`,
        };
      return { ours: true, channel: 'updates', imageTypes: ['AtomicHost'], ...labelled, version };
    default:
      return {
        ours: false,
        reason: `${short} composes (${c.composeId}) are not Fedora cloud image releases`,
      };
  }
}
