import { targetsOf, type ReleaseRecord } from '../../record.js';
import type { OutputFile } from '../types.js';
import { GCE_PUBLISH_FILE, LIST_PREFIX } from './specs.js';

export interface AmiListEntry {
  name: string;
  hvm: string;
}

/** Every region's AMI over all the release's AWS targets (commercial and GovCloud), sorted by region. */
export function amiList(records: ReleaseRecord[]): AmiListEntry[] {
  const byRegion = new Map<string, string>();
  for (const r of records)
    for (const t of targetsOf(r, 'aws')) for (const i of t.images) byRegion.set(i.location, i.id);
  return [...byRegion.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, hvm]) => ({ name, hvm }));
}

/**
 * The AMI lists plume published beside each release, which Container Linux's download pages and scripts
 * read: `{prefix}all.json` (`{"amis":[{"name": region, "hvm": ami}]}`), `{prefix}hvm.txt`
 * (`region=ami|region=ami`) and one `{prefix}hvm_{region}.txt` per region, under
 * `container-linux/{channel}/{board}/{version}/` as in the build bucket. Plus the image list
 * `--write-image-list` writes (`{"aws": {"amis": [...]}}`).
 */
export function amiListFiles(records: ReleaseRecord[]): OutputFile[] {
  const first = records[0];
  if (!first) return [];
  const entries = amiList(records);
  const dir = `container-linux/${first.channel}/${first.arch}/${first.version}`;
  const file = (name: string, contents: string): OutputFile => ({
    path: `${dir}/${LIST_PREFIX}${name}`,
    contents,
  });
  return [
    file('all.json', `${JSON.stringify({ amis: entries }, null, 2)}\n`),
    file('hvm.txt', `${entries.map((e) => `${e.name}=${e.hvm}`).join('|')}\n`),
    ...entries.map((e) => file(`hvm_${e.name}.txt`, `${e.hvm}\n`)),
    {
      path: `${dir}/images.json`,
      contents: `${JSON.stringify({ aws: { amis: entries } }, null, 2)}\n`,
      kind: 'image-list',
    },
  ];
}

/** The id of each image of a provider's targets (GCE: `projects/P/global/images/N`; Azure: the version's). */
function imageIds(records: ReleaseRecord[], provider: string): string[] {
  return records.flatMap((r) => targetsOf(r, provider).flatMap((t) => t.images.map((i) => i.id)));
}

/**
 * Everything a release writes beside its records: the AMI lists when it published to AWS, and as mantle's
 * GCE release did, `coreos_production_gce.txt` naming the GCE image (`projects/P/global/images/N`). The
 * image list (`--write-image-list`) has mantle's `aws` and `azure` (`{"image": ...}`) keys, and `gce` the
 * same way, for what the release published to.
 */
export function releaseFiles(records: ReleaseRecord[]): OutputFile[] {
  const first = records[0];
  if (!first) return [];
  const dir = `container-linux/${first.channel}/${first.arch}/${first.version}`;
  const hasAws = records.some((r) => targetsOf(r, 'aws').length > 0);
  const gce = imageIds(records, 'gcp');
  const azure = imageIds(records, 'azure');
  const files = hasAws ? amiListFiles(records).filter((f) => f.kind !== 'image-list') : [];
  if (gce[0]) files.push({ path: `${dir}/${GCE_PUBLISH_FILE}`, contents: `${gce[0]}\n` });
  const list = {
    ...(hasAws ? { aws: { amis: amiList(records) } } : {}),
    ...(azure[0] ? { azure: { image: azure[0] } } : {}),
    ...(gce[0] ? { gce: { image: gce[0] } } : {}),
  };
  files.push({
    path: `${dir}/images.json`,
    contents: `${JSON.stringify(list, null, 2)}\n`,
    kind: 'image-list',
  });
  return files;
}
