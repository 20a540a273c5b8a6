import { SystemRegistry } from './registry.js';
import { fedora } from './fedora/index.js';

/** The systems plume ships. A new one is a module under systems/ and one line here. */
export function builtinSystems(): SystemRegistry {
  return new SystemRegistry().register(fedora);
}
