import type { ExtraRoutes } from './control.js';
import type { EmulatorProxy } from './proxy.js';

/**
 * The AWS emulator's own control routes, beside the common ones (control.ts):
 *
 *   GET    /__emulator/snapshots/{id}                             -> SnapshotStats (404 if unknown)
 *   POST   /__emulator/pending          body: { ms, region? }
 */
export function awsControlRoutes(proxy: EmulatorProxy): ExtraRoutes {
  return (route, id, input) => {
    switch (route) {
      case 'GET snapshots/:id': {
        const stats = proxy.ebs.stats(id!);
        return stats ? [200, stats] : [404, { error: `unknown snapshot ${id}` }];
      }
      case 'POST pending': {
        const { ms, region } = (input ?? {}) as { ms?: unknown; region?: unknown };
        if (typeof ms !== 'number') return [400, { error: 'pending needs { ms: number, region?: string }' }];
        proxy.timing.set(ms, typeof region === 'string' ? region : undefined);
        return [200, { ok: true }];
      }
      default:
        return undefined;
    }
  };
}
