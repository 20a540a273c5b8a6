import type { ExtraRoutes } from '../control.js';
import { validMode, type Replication } from './replication.js';

/**
 * The Azure emulator's own control route, beside the common ones (../control.ts):
 *
 *   POST /__emulator/replication   body: { region, mode: 'never' | 'fail' | ms }
 */
export function azureControlRoutes(replication: Replication): ExtraRoutes {
  return (route, _id, input) => {
    if (route !== 'POST replication') return undefined;
    const { region, mode } = (input ?? {}) as { region?: unknown; mode?: unknown };
    if (typeof region !== 'string' || !validMode(mode)) {
      return [400, { error: "replication needs { region: string, mode: 'never' | 'fail' | ms }" }];
    }
    replication.set(region, mode);
    return [200, { ok: true }];
  };
}
