import { PlumeError } from '../../../shared/errors.js';

/**
 * `{name}` placeholders in the templates of a system defined in configuration. The names a template may use
 * are checked when the config is read, so a typo fails at start-up, not halfway through a release.
 */
const PLACEHOLDER = /\{([a-z_]+)\}/g;

export function placeholders(template: string): string[] {
  return [...template.matchAll(PLACEHOLDER)].map((m) => m[1]!);
}

/** The first placeholder a template uses that is not allowed, if any. */
export function unknownPlaceholder(template: string, allowed: readonly string[]): string | undefined {
  return placeholders(template).find((p) => !allowed.includes(p));
}

export type Values = Record<string, string | undefined>;

/**
 * Fill a template. `encode` escapes each value (for URLs); a value the request did not give is a usage
 * error naming the flag to pass.
 */
export function render(
  template: string,
  values: Values,
  what: string,
  encode: (v: string) => string = (v) => v,
): string {
  return template.replace(PLACEHOLDER, (_m, name: string) => {
    const v = values[name];
    if (v === undefined || v === '')
      throw new PlumeError(
        'usage',
        `${what} uses {${name}}, which this release does not give`,
        `pass --${name.replace(/_/g, '-')}`,
      );
    return encode(v);
  });
}
