/**
 * Pungi compose ids: `{release_short}-{version}[-{release_type}]-{date}{type suffix}.{respin}`, e.g.
 * `Fedora-Cloud-30-20190611.0`, `Fedora-Rawhide-20240501.n.0`, `Fedora-40-20240414.0`,
 * `Fedora-AtomicHost-28-20180625.1`, `Fedora-29-updates-20190101.0`. The suffix is `.n` nightly, `.t` test,
 * `.ci`, `.d` development, none for production. Rawhide composes carry no version number: the version is
 * `Rawhide`. The release type is `ga` unless the id names another (`updates`, `updates-testing`).
 */
export interface ComposeId {
  id: string;
  releaseShort: string;
  version: string;
  date: string;
  type: 'production' | 'nightly' | 'test' | 'ci' | 'development';
  respin: number;
  releaseType: string;
}

const SUFFIX: Record<string, ComposeId['type']> = { n: 'nightly', t: 'test', ci: 'ci', d: 'development' };

const PATTERN =
  /^(?<short>[A-Za-z][A-Za-z0-9_]*(?:-[A-Za-z][A-Za-z0-9_]*)*?)-(?:(?<version>\d+(?:\.\d+)?|Rawhide|rawhide)-)?(?:(?<rtype>updates(?:-testing)?)-)?(?<date>\d{8})(?:\.(?<suffix>n|t|ci|d))?\.(?<respin>\d+)$/;

export function parseComposeId(id: string): ComposeId | undefined {
  const m = PATTERN.exec(id);
  if (!m?.groups) return undefined;
  const g = m.groups;
  let short = g.short!;
  let version = g.version;
  // `Fedora-Rawhide-20240501.n.0`: the version is the last word of what looks like the short name.
  if (!version && /-Rawhide$/i.test(short)) {
    short = short.replace(/-Rawhide$/i, '');
    version = 'Rawhide';
  }
  if (!version) return undefined;
  return {
    id,
    releaseShort: short,
    version: version.toLowerCase() === 'rawhide' ? 'Rawhide' : version,
    date: g.date!,
    type: g.suffix ? SUFFIX[g.suffix]! : 'production',
    respin: Number(g.respin),
    releaseType: g.rtype ?? 'ga',
  };
}
