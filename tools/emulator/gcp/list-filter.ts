import { fail } from './errors.js';

/**
 * Compute Engine's list `filter`: comparisons `field = value`, `field != value`, `field eq regex`,
 * `field ne regex`, `field : value` (has), `field > value`, `field < value`, combined with AND (or by
 * juxtaposing parenthesised terms) and OR, parentheses grouping. Fields are dotted paths into the resource
 * (`labels.channel`, `deprecated.state`). Values are bare words or quoted strings; a quoted regex keeps its
 * backslashes (gcloud sends `family eq ".*\bcheck\b.*"` for `--filter=family=check`). Anything else is a 400.
 */
export type Predicate = (resource: Record<string, unknown>) => boolean;

interface Token {
  kind: 'lparen' | 'rparen' | 'word' | 'string' | 'op';
  text: string;
}

function tokens(filter: string): Token[] {
  const out: Token[] = [];
  const re = /\s*(?:(\()|(\))|("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(!=|=|:|>|<)|([^\s()=!:<>]+))/gy;
  let m: RegExpExecArray | null;
  let at = 0;
  while (at < filter.length && (m = re.exec(filter))) {
    at = re.lastIndex;
    if (m[1]) out.push({ kind: 'lparen', text: '(' });
    else if (m[2]) out.push({ kind: 'rparen', text: ')' });
    else if (m[3]) out.push({ kind: 'string', text: m[3].slice(1, -1).replace(/\\(["'])/g, '$1') });
    else if (m[4]) out.push({ kind: 'op', text: m[4] });
    else if (m[5]) out.push({ kind: 'word', text: m[5] });
  }
  if (filter.slice(at).trim()) invalidFilter(filter);
  return out;
}

function invalidFilter(filter: string): never {
  return fail(400, 'invalid', `Invalid list filter expression '${filter}'.`);
}

function lookup(resource: Record<string, unknown>, path: string): unknown {
  let v: unknown = resource;
  for (const part of path.split('.')) {
    if (typeof v !== 'object' || v === null) return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  return v;
}

function compare(actual: unknown, op: string, value: string): boolean {
  const text = (v: unknown) => (typeof v === 'object' && v !== null ? JSON.stringify(v) : String(v));
  const values = Array.isArray(actual) ? actual.map(text) : actual === undefined ? [] : [text(actual)];
  switch (op) {
    case '=':
      return values.includes(value);
    case '!=':
      return !values.includes(value);
    case 'eq':
      return values.some((v) => new RegExp(`^(?:${value})$`).test(v));
    case 'ne':
      return !values.some((v) => new RegExp(`^(?:${value})$`).test(v));
    case ':':
      return value === '*' ? values.length > 0 : values.some((v) => v.includes(value));
    case '>':
      return values.some((v) => v > value);
    case '<':
      return values.some((v) => v < value);
    default:
      return false;
  }
}

export function parseFilter(filter: string | null | undefined): Predicate {
  if (!filter || !filter.trim()) return () => true;
  const toks = tokens(filter);
  let i = 0;
  const peek = () => toks[i];
  const orExpr = (): Predicate => {
    const terms = [andExpr()];
    while (peek()?.kind === 'word' && peek()!.text.toUpperCase() === 'OR') {
      i++;
      terms.push(andExpr());
    }
    return (r) => terms.some((t) => t(r));
  };
  const andExpr = (): Predicate => {
    const terms = [term()];
    for (;;) {
      const t = peek();
      if (!t || t.kind === 'rparen' || (t.kind === 'word' && t.text.toUpperCase() === 'OR')) break;
      if (t.kind === 'word' && t.text.toUpperCase() === 'AND') i++;
      terms.push(term());
    }
    return (r) => terms.every((t) => t(r));
  };
  const term = (): Predicate => {
    const t = toks[i++];
    if (!t) return invalidFilter(filter);
    if (t.kind === 'lparen') {
      const inner = orExpr();
      if (toks[i++]?.kind !== 'rparen') invalidFilter(filter);
      return inner;
    }
    if (t.kind !== 'word') return invalidFilter(filter);
    const op = toks[i++];
    const opText =
      op?.kind === 'op'
        ? op.text
        : op?.kind === 'word' && ['eq', 'ne'].includes(op.text)
          ? op.text
          : undefined;
    const value = toks[i++];
    if (!opText || !value || (value.kind !== 'word' && value.kind !== 'string')) return invalidFilter(filter);
    const field = t.text;
    return (r) => compare(lookup(r, field), opText, value.text);
  };
  const predicate = orExpr();
  if (i !== toks.length) invalidFilter(filter);
  return predicate;
}
