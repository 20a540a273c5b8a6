import { readFile } from 'node:fs/promises';
import { parse, TomlError } from 'smol-toml';
import type { z } from 'zod';
import { PlumeError } from './errors.js';

/** Read a TOML file and validate it, with errors that name the file, the key and what was expected. */
export async function loadToml<S extends z.ZodType>(path: string, schema: S): Promise<z.infer<S>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PlumeError(
      'usage',
      `cannot read config ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`,
      'check the --config path',
    );
  }
  return parseToml(text, path, schema);
}

export function parseToml<S extends z.ZodType>(text: string, where: string, schema: S): z.infer<S> {
  let data: unknown;
  try {
    data = parse(text);
  } catch (err) {
    const detail =
      err instanceof TomlError
        ? `line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}`
        : (err as Error).message;
    throw new PlumeError('usage', `${where} is not valid TOML (${detail})`);
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const key = issue.path.join('.') || '(top level)';
    throw new PlumeError('usage', `${where}: ${key}: ${issue.message}`, 'fix the config file', {
      cause: result.error,
    });
  }
  return result.data;
}

/**
 * Validate one table of a config file (a system's section, a provider's target table), naming the key that
 * is wrong the way the config file spells it: `config: systems.NAME.environments.staging.regions: ...`.
 */
export function parseSettings<S extends z.ZodType>(schema: S, data: unknown, where: string): z.infer<S> {
  const result = schema.safeParse(data ?? {});
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const key = [where, ...issue.path.map(String)].join('.');
  throw new PlumeError('usage', `config: ${key}: ${issue.message}`, 'fix the config file', {
    cause: result.error,
  });
}
