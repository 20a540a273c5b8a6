import { invalid } from './errors.js';

/** Checks of request bodies: every field is hostile until it has passed one of these. */

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A JSON body that must be an object. */
export function parseBody(raw: Buffer): Json {
  if (raw.length === 0) invalid('The request content was invalid and could not be deserialized: empty body.');
  let value: unknown;
  try {
    value = JSON.parse(raw.toString('utf8'));
  } catch (e) {
    return invalid(
      `The request content was invalid and could not be deserialized: '${e instanceof Error ? e.message : String(e)}'.`,
    );
  }
  if (!isObject(value))
    invalid('The request content was invalid and could not be deserialized: not an object.');
  return value;
}

export function obj(v: unknown, target: string, required = false): Json | undefined {
  if (v === undefined || v === null) {
    if (required) invalid(`Required parameter '${target}' is missing (null).`, target);
    return undefined;
  }
  if (!isObject(v)) invalid(`The value of parameter '${target}' must be an object.`, target);
  return v;
}

export function str(v: unknown, target: string, required = false, maxLength = 1024): string | undefined {
  if (v === undefined || v === null) {
    if (required) invalid(`Required parameter '${target}' is missing (null).`, target);
    return undefined;
  }
  if (typeof v !== 'string') invalid(`The value of parameter '${target}' must be a string.`, target);
  if (required && v.trim() === '') invalid(`The value of parameter '${target}' is empty.`, target);
  if (v.length > maxLength)
    invalid(`The value of parameter '${target}' is longer than ${maxLength} characters.`, target);
  return v;
}

export function bool(v: unknown, target: string): boolean | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') invalid(`The value of parameter '${target}' must be true or false.`, target);
  return v;
}

export function int(v: unknown, target: string, min: number, max: number): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    invalid(`The value of parameter '${target}' must be an integer from ${min} to ${max}.`, target);
  }
  return v;
}

/** One of `allowed`, compared without case as ARM does; returns the canonical spelling. */
export function oneOf<T extends string>(
  v: unknown,
  target: string,
  allowed: readonly T[],
  required = false,
): T | undefined {
  const s = str(v, target, required);
  if (s === undefined) return undefined;
  const hit = allowed.find((a) => a.toLowerCase() === s.toLowerCase());
  if (!hit)
    invalid(
      `The value '${s}' of parameter '${target}' is not allowed. Allowed values are: ${allowed.join(', ')}.`,
      target,
    );
  return hit;
}

/** An ISO 8601 date-time, returned in ARM's canonical form. */
export function dateTime(v: unknown, target: string): string | undefined {
  const s = str(v, target);
  if (s === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(s) ? Date.parse(s) : NaN;
  if (!Number.isFinite(t))
    invalid(`The value '${s}' of parameter '${target}' is not a valid date-time.`, target);
  return new Date(t).toISOString().replace('.000Z', '+00:00');
}

export function array(v: unknown, target: string, maxItems = 100): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) invalid(`The value of parameter '${target}' must be an array.`, target);
  if (v.length > maxItems) invalid(`Parameter '${target}' has more than ${maxItems} items.`, target);
  return v as unknown[];
}

/** Resource tags: at most 50, string values, names up to 512 and values up to 256 characters. */
export function tags(v: unknown): Record<string, string> | undefined {
  const o = obj(v, 'tags');
  if (!o) return undefined;
  const entries = Object.entries(o);
  if (entries.length > 50) invalid('The resource has more than 50 tags.', 'tags');
  for (const [k, value] of entries) {
    if (k.length === 0 || k.length > 512 || /[<>%&\\?/]/.test(k))
      invalid(`The tag name '${k}' is invalid.`, 'tags');
    if (typeof value !== 'string' || value.length > 256)
      invalid(`The value of tag '${k}' is invalid.`, 'tags');
  }
  return o as Record<string, string>;
}

/** Gallery names: letters, digits, '.' and '_', not starting or ending with '.' or '_', up to 80. */
export const GALLERY_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._]{0,78}[A-Za-z0-9])?$/;
/** Image definition names: letters, digits, '.', '-' and '_', starting and ending with a letter or digit. */
export const IMAGE_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,78}[A-Za-z0-9])?$/;
/** Resource group names. */
export const RESOURCE_GROUP_NAME = /^[-\w._()]{1,90}$/u;
