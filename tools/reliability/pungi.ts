import { parseComposeId } from '../../src/plume/systems/fedora/compose-id.js';

/**
 * Pungi's `pungi.compose.status.change` body for a compose id, with every field Pungi sets (the full flat
 * shape), derived from the id the way Pungi derives the id from them.
 */
export function pungiBody(
  composeId: string,
  location: string,
  status: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  const id = parseComposeId(composeId);
  if (!id) throw new Error(`not a compose id: ${composeId}`);
  const production = id.type === 'production';
  return {
    status,
    compose_id: composeId,
    location,
    compose_date: id.date,
    compose_type: id.type,
    compose_respin: id.respin,
    compose_label: production ? `RC-${id.date}.${id.respin}` : null,
    release_short: id.releaseShort,
    release_name: id.releaseShort,
    release_version: id.version,
    release_type: id.releaseType,
    release_is_layered: false,
    ...extra,
  };
}
