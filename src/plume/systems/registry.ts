import { PlumeError } from '../../shared/errors.js';
import type { System } from './types.js';

/** The systems plume knows. Built-in ones register at start-up; tests and plugins may add their own. */
export class SystemRegistry {
  private readonly systems = new Map<string, System>();
  private readonly aliases = new Map<string, string>();
  private defaultName: string | undefined;

  /** `asDefault`: the system old command lines without `--system`/`--distro` meant. */
  register(system: System, opts: { asDefault?: boolean } = {}): this {
    if (this.has(system.name))
      throw new PlumeError(
        'usage',
        `system ${system.name} is defined twice`,
        'give the system in the config file another name',
      );
    this.systems.set(system.name, system);
    for (const alias of system.aliases ?? []) this.aliases.set(alias, system.name);
    if (opts.asDefault) this.defaultName = system.name;
    return this;
  }

  has(name: string): boolean {
    return this.systems.has(name) || this.aliases.has(name);
  }

  /** The system to use when a command line names none, if there is one. */
  defaultSystem(): string | undefined {
    return this.defaultName;
  }

  /** A new registry with these systems and the given ones (the registry passed in stays as it was). */
  extend(systems: System[]): SystemRegistry {
    const out = new SystemRegistry();
    for (const s of this.all()) out.register(s, { asDefault: s.name === this.defaultName });
    for (const s of systems) out.register(s);
    return out;
  }

  get(name: string): System {
    const system = this.systems.get(name) ?? this.systems.get(this.aliases.get(name) ?? '');
    if (!system)
      throw new PlumeError(
        'usage',
        `unknown system ${JSON.stringify(name)}`,
        `choose one of: ${this.names().join(', ')}`,
      );
    return system;
  }

  names(): string[] {
    return [...this.systems.keys()].sort();
  }

  all(): System[] {
    return this.names().map((n) => this.systems.get(n)!);
  }
}

/** Check a value against a system's list, with the one-line error a person needs. */
export function requireOneOf(
  what: string,
  value: string | undefined,
  allowed: readonly string[],
  system: string,
): string {
  if (value === undefined || value === '')
    throw new PlumeError(
      'usage',
      `--${what} is required for ${system}`,
      `choose one of: ${allowed.join(', ')}`,
    );
  if (!allowed.includes(value))
    throw new PlumeError(
      'usage',
      `unknown ${what} ${JSON.stringify(value)} for ${system}`,
      `choose one of: ${allowed.join(', ')}`,
    );
  return value;
}
