import { containerLinux } from './container-linux/index.js';
import { fedora } from './fedora/index.js';
import { SystemRegistry } from './registry.js';

/**
 * The systems plume ships. A new one is a module under systems/ and one line here. Container Linux is the
 * system plume was written for: old command lines that name no `--distro` meant it.
 */
export function builtinSystems(): SystemRegistry {
  return new SystemRegistry().register(containerLinux, { asDefault: true }).register(fedora);
}
