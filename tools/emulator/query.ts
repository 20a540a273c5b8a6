/**
 * EC2 query-protocol parameters flatten lists and structures into dotted keys
 * (`BlockDeviceMapping.1.Ebs.SnapshotId=...`); these helpers fold them back.
 */

export type Flat = Map<string, string>;

export function flat(params: URLSearchParams): Flat {
  return new Map(params.entries());
}

/** `Prefix.N.rest=v` entries grouped by N (ascending), each group keyed by `rest`. */
export function groups(src: Flat, prefix: string): Flat[] {
  const byIndex = new Map<number, Flat>();
  const head = `${prefix}.`;
  for (const [key, value] of src) {
    if (!key.startsWith(head)) continue;
    const rest = key.slice(head.length);
    const dot = rest.indexOf('.');
    const n = Number(dot < 0 ? rest : rest.slice(0, dot));
    if (!Number.isInteger(n)) continue;
    let group = byIndex.get(n);
    if (!group) byIndex.set(n, (group = new Map<string, string>()));
    group.set(dot < 0 ? '' : rest.slice(dot + 1), value);
  }
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([, g]) => g);
}

/** `Prefix.N=v` values in N order (ImageId.1, ImageId.2, ...). */
export function list(src: Flat, prefix: string): string[] {
  return groups(src, prefix)
    .map((g) => g.get(''))
    .filter((v): v is string => v !== undefined);
}

export interface Filter {
  name: string;
  values: string[];
}

export function filters(src: Flat): Filter[] {
  return groups(src, 'Filter').map((g) => ({ name: g.get('Name') ?? '', values: list(g, 'Value') }));
}

/** The parameters without any Filter.*, with `keep` re-added and renumbered from 1. */
export function withFilters(params: URLSearchParams, keep: Filter[]): URLSearchParams {
  const out = new URLSearchParams();
  for (const [k, v] of params) if (!k.startsWith('Filter.')) out.append(k, v);
  keep.forEach((f, i) => {
    out.append(`Filter.${i + 1}.Name`, f.name);
    f.values.forEach((v, j) => out.append(`Filter.${i + 1}.Value.${j + 1}`, v));
  });
  return out;
}

export interface Tag {
  key: string;
  value: string;
}

export interface TagSpecification {
  resourceType: string;
  tags: Tag[];
}

export function tagSpecifications(src: Flat): TagSpecification[] {
  return groups(src, 'TagSpecification').map((g) => ({
    resourceType: g.get('ResourceType') ?? '',
    tags: groups(g, 'Tag').map((t) => ({ key: t.get('Key') ?? '', value: t.get('Value') ?? '' })),
  }));
}

/** Flattened CreateTags parameters for these resources and tags. */
export function createTagsParams(resourceIds: string[], tags: Tag[]): Record<string, string> {
  const out: Record<string, string> = {};
  resourceIds.forEach((id, i) => (out[`ResourceId.${i + 1}`] = id));
  tags.forEach((t, i) => {
    out[`Tag.${i + 1}.Key`] = t.key;
    out[`Tag.${i + 1}.Value`] = t.value;
  });
  return out;
}

/** EC2 filter values are globs: `*` any run of characters, `?` one character. */
export function globMatch(pattern: string, value: string): boolean {
  const re = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${re}$`, 's').test(value);
}

export function bool(v: string | undefined): boolean | undefined {
  if (v === undefined) return undefined;
  return v.toLowerCase() === 'true';
}

export function int(v: string | undefined): number | undefined {
  if (v === undefined || v === '') return undefined;
  const n = Number(v);
  return Number.isFinite(n) ? n : undefined;
}
