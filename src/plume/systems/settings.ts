import type { SettingsLayer } from '../plan.js';

export { parseSettings } from '../../shared/toml.js';

/**
 * The part of a system's settings table (an environment, a channel) for one provider: its own sub-table
 * (`[systems.fedora.environments.production.gcp]`), and for AWS, plume's first provider, whose keys older
 * configs wrote at the top of the table, the top level without the sub-tables as well.
 */
export function providerLayer(
  table: Record<string, unknown> | undefined,
  provider: string,
  where: string,
): SettingsLayer[] {
  if (!table) return [];
  const isTable = (v: unknown) => typeof v === 'object' && v !== null && !Array.isArray(v);
  const own = table[provider];
  const layers: SettingsLayer[] = [];
  if (provider === 'aws') {
    const top = Object.fromEntries(Object.entries(table).filter(([, v]) => !isTable(v)));
    if (Object.keys(top).length > 0) layers.push({ where, table: top });
  }
  if (isTable(own)) layers.push({ where: `${where}.${provider}`, table: own as Record<string, unknown> });
  return layers;
}

/** `prod` and `dev` were plume's environment names; production and staging are the ones the config uses. */
export function environmentName(name: string | undefined, fallback = 'production'): string {
  const n = (name ?? fallback).toLowerCase();
  if (n === 'prod') return 'production';
  if (n === 'dev' || n === 'stg' || n === 'stage') return 'staging';
  return n;
}
