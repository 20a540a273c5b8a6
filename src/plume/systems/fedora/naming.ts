import { parseComposeId } from './compose-id.js';
import { buildName } from './images.js';

/**
 * The names Fedora's consumers match exactly. Two conventions live side by side:
 * - fedimg's *build name*, which the websites' older scripts and the AMI names use:
 *   `Fedora-Cloud-Base-28_Beta-1.1.x86_64` for Beta-1.1, `Fedora-Cloud-Base-28-1.1.x86_64` for RC-1.1;
 * - fedora-image-uploader's *image name*, which the newer websites build:
 *   `Fedora-Cloud-Base-AmazonEC2.x86_64-41-Prerelease-1.2` for Beta-1.2, `...-41-1.4` for RC-1.4.
 */

export type LabelKind = 'Beta' | 'RC' | 'none';

export type ComposeLabel =
  | { kind: 'Beta' | 'RC'; version: string; label: string }
  | { kind: 'none' }
  /** A label Fedora's cloud images are not released under (Alpha, Update, ...). */
  | { kind: 'other'; label: string };

/** `Beta-1.2` → Beta 1.2; `RC-20190611.0` → RC 20190611.0; null or empty → none. */
export function parseLabel(label: string | null | undefined): ComposeLabel {
  if (!label) return { kind: 'none' };
  const m = /^(Beta|RC)-(\d+(?:\.\d+)*)$/.exec(label);
  if (!m) return { kind: 'other', label };
  return { kind: m[1] as 'Beta' | 'RC', version: m[2]!, label };
}

/**
 * fedimg's build name for an image file. The file name is the start (Pungi names files after the release
 * and label: `Fedora-Cloud-Base-28_Beta-1.1.x86_64.raw.xz`). Two later layouts are brought back to it:
 * the dedicated AWS build (`Fedora-Cloud-Base-AmazonEC2.x86_64-41-1.4`, or `...-AmazonEC2-40-1.14.x86_64`)
 * drops its flavour and keeps the arch last, and a labelled compose is named from its label, so a
 * `-Prerelease-` file of a Beta compose still reads `_Beta` where the websites look for it.
 */
export function fedimgBuildName(
  path: string,
  facts: { version: string; arch: string; label?: ComposeLabel },
): string {
  let base = buildName(path);
  const kiwi = /^(.+?)-AmazonEC2\.([A-Za-z0-9_]+)-(.+)$/.exec(base);
  if (kiwi) base = `${kiwi[1]}-${kiwi[3]}.${kiwi[2]}`;
  else base = base.replace(/-AmazonEC2(?=-)/, '');
  const label = facts.label;
  if (label && (label.kind === 'Beta' || label.kind === 'RC')) {
    const at = base.search(new RegExp(`-${facts.version.replace(/\./g, '\\.')}(?=[-_.])`));
    if (at > 0) {
      const beta = label.kind === 'Beta' ? '_Beta' : '';
      return `${base.slice(0, at)}-${facts.version}${beta}-${label.version}.${facts.arch}`;
    }
  }
  return base;
}

export interface UploaderNameFacts {
  /** `Cloud-Base`, `AtomicHost`. */
  imageType: string;
  /** Fedora's arch name (x86_64, aarch64), as in the file names. */
  arch: string;
  /** `41`, `Rawhide`. */
  version: string;
  label: ComposeLabel;
  /** For unlabelled (nightly) composes, the date, type and respin come from the compose id. */
  composeId: string;
}

/**
 * fedora-image-uploader's image name, which its `published.v1.aws` messages carry and the newer websites
 * build: `Fedora-{type}-AmazonEC2.{arch}-{version}-{Prerelease-}{label version}` for Beta and RC composes,
 * and `...-{version}-{date}{.n}.{respin}` for nightlies (Pungi's release field).
 */
export function uploaderImageName(f: UploaderNameFacts): string {
  const head = `Fedora-${f.imageType}-AmazonEC2.${f.arch}-${f.version}`;
  if (f.label.kind === 'Beta') return `${head}-Prerelease-${f.label.version}`;
  if (f.label.kind === 'RC') return `${head}-${f.label.version}`;
  const id = parseComposeId(f.composeId);
  if (!id) return `${head}-${f.composeId}`;
  const suffix = { production: '', nightly: '.n', test: '.t', ci: '.ci', development: '.d' }[id.type];
  return `${head}-${id.date}${suffix}.${id.respin}`;
}

/** The productmd subvariant an image type is filed under, as fedora-image-uploader names it in topics. */
export function subvariantOf(imageType: string): string {
  return imageType === 'Cloud-Base' ? 'Cloud_Base' : imageType;
}
