// The part of vitest's API that the RPM's %check tests use, on Node's own test runner (node:test).
// vitest itself runs on esbuild, rolldown and lightningcss, which are prebuilt binaries: Fedora's build
// may not run those, so %check compiles the service-free unit tests with tsc (pure JavaScript) and runs
// them with `node --test`, importing this module as 'vitest'. `npm test` runs the same files with vitest.
// A matcher missing here fails the RPM build in CI (scripts/check-deploy.sh) with "is not a function".
import assert from 'node:assert/strict';
import { format } from 'node:util';
import { after, before, afterEach as nodeAfterEach, beforeEach as nodeBeforeEach, describe as nodeDescribe, it as nodeIt } from 'node:test';

export const describe = (name, fn) => nodeDescribe(name, fn);
export const beforeAll = (fn) => before(fn);
export const afterAll = (fn) => after(fn);
export const beforeEach = (fn) => nodeBeforeEach(fn);
export const afterEach = (fn) => nodeAfterEach(fn);

// vitest's test names for each: printf-style %s/%d/%j, or $key for the fields of an object case.
function caseName(template, args) {
  if (args.length === 1 && args[0] !== null && typeof args[0] === 'object' && !Array.isArray(args[0]))
    return template.replace(/\$(\w+)/g, (_, key) => String(args[0][key]));
  return template.includes('%') ? format(template, ...args) : template;
}
function each(cases) {
  return (template, fn) => {
    for (const c of cases) {
      const args = Array.isArray(c) ? c : [c];
      nodeIt(caseName(template, args), () => fn(...args));
    }
  };
}
export const it = Object.assign((name, fn) => nodeIt(name, fn), { each });
export const test = it;

const isObject = (v) => v !== null && typeof v === 'object';

// vitest's asymmetric matchers (expect.stringContaining and the like): an expected value that
// decides for itself whether an actual value matches, wherever it sits in an expected object.
class Asymmetric {
  constructor(test, description) {
    this.test = test;
    this.description = description;
  }
}
const asymmetric = (test, description) => new Asymmetric(test, description);

// toEqual: recursive equality that ignores undefined properties and object types; toStrictEqual does not.
function equal(a, b, strict) {
  if (b instanceof Asymmetric) return b.test(a);
  if (Object.is(a, b)) return true;
  if (!isObject(a) || !isObject(b)) return false;
  if (a instanceof Date || b instanceof Date) return a instanceof Date && b instanceof Date && a.getTime() === b.getTime();
  if (a instanceof RegExp || b instanceof RegExp) return String(a) === String(b);
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  if (strict && Object.getPrototypeOf(a) !== Object.getPrototypeOf(b)) return false;
  if (a instanceof Map && b instanceof Map)
    return a.size === b.size && [...a].every(([k, v]) => b.has(k) && equal(v, b.get(k), strict));
  if (a instanceof Set && b instanceof Set) return a.size === b.size && [...a].every((v) => b.has(v));
  if (ArrayBuffer.isView(a) && ArrayBuffer.isView(b)) return Buffer.compare(Buffer.from(a.buffer, a.byteOffset, a.byteLength), Buffer.from(b.buffer, b.byteOffset, b.byteLength)) === 0;
  const keys = (o) => Object.keys(o).filter((k) => strict || o[k] !== undefined);
  const ka = keys(a);
  const kb = keys(b);
  if (ka.length !== kb.length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && equal(a[k], b[k], strict));
}

// toMatchObject: every property of the expected object is in the actual one (recursively); arrays match
// element by element and in length.
function matches(actual, expected) {
  if (expected instanceof Asymmetric) return expected.test(actual);
  if (Array.isArray(expected))
    return Array.isArray(actual) && actual.length === expected.length && expected.every((e, i) => matches(actual[i], e));
  if (isObject(expected) && !(expected instanceof Date) && !(expected instanceof RegExp))
    return isObject(actual) && Object.keys(expected).every((k) => k in actual && matches(actual[k], expected[k]));
  return equal(actual, expected, false);
}

function thrownMatches(err, expected) {
  if (expected === undefined) return true;
  const message = err instanceof Error ? err.message : String(err);
  if (typeof expected === 'string') return message.includes(expected);
  if (expected instanceof RegExp) return expected.test(message);
  if (typeof expected === 'function') return err instanceof expected;
  if (isObject(expected)) return matches(err, expected);
  return false;
}

const show = (v) => format('%o', v);

function matchers(actual, negate) {
  const check = (pass, message) => {
    if (pass === negate) assert.fail(negate ? `not: ${message}` : message);
  };
  const m = {
    toBe: (e) => check(Object.is(actual, e), `expected ${show(actual)} to be ${show(e)}`),
    toEqual: (e) => check(equal(actual, e, false), `expected ${show(actual)} to equal ${show(e)}`),
    toStrictEqual: (e) => check(equal(actual, e, true), `expected ${show(actual)} to strictly equal ${show(e)}`),
    toMatchObject: (e) => check(matches(actual, e), `expected ${show(actual)} to match ${show(e)}`),
    toMatch: (e) =>
      check(typeof e === 'string' ? String(actual).includes(e) : e.test(String(actual)), `expected ${show(actual)} to match ${e}`),
    toContain: (e) =>
      check(
        typeof actual === 'string' ? actual.includes(e) : [...actual].some((x) => x === e),
        `expected ${show(actual)} to contain ${show(e)}`,
      ),
    toHaveLength: (n) => check(actual?.length === n, `expected length ${n}, got ${actual?.length}`),
    toBeUndefined: () => check(actual === undefined, `expected ${show(actual)} to be undefined`),
    toBeDefined: () => check(actual !== undefined, 'expected a defined value'),
    toBeNull: () => check(actual === null, `expected ${show(actual)} to be null`),
    toBeTruthy: () => check(Boolean(actual), `expected ${show(actual)} to be truthy`),
    toBeFalsy: () => check(!actual, `expected ${show(actual)} to be falsy`),
    toBeGreaterThan: (n) => check(actual > n, `expected ${actual} > ${n}`),
    toBeInstanceOf: (c) => check(actual instanceof c, `expected ${show(actual)} to be an instance of ${c.name}`),
    toThrow: (e) => {
      let thrown = false;
      let err;
      try {
        actual();
      } catch (caught) {
        thrown = true;
        err = caught;
      }
      check(thrown && thrownMatches(err, e), `expected a throw matching ${show(e)}, got ${thrown ? show(err) : 'none'}`);
    },
  };
  return m;
}

export function expect(actual) {
  const m = matchers(actual, false);
  m.not = matchers(actual, true);
  m.rejects = {
    toThrow: async (e) => {
      try {
        await actual;
      } catch (err) {
        if (!thrownMatches(err, e)) assert.fail(`expected a rejection matching ${show(e)}, got ${show(err)}`);
        return;
      }
      assert.fail('expected a rejection');
    },
  };
  m.resolves = new Proxy(
    {},
    { get: (_, name) => async (...args) => matchers(await actual, false)[name](...args) },
  );
  return m;
}
expect.unreachable = (message = 'this line should not be reached') => assert.fail(message);
expect.stringContaining = (s) => asymmetric((v) => typeof v === 'string' && v.includes(s), `stringContaining ${s}`);
expect.stringMatching = (re) =>
  asymmetric((v) => typeof v === 'string' && (typeof re === 'string' ? v.includes(re) : re.test(v)), `stringMatching ${re}`);
expect.objectContaining = (o) => asymmetric((v) => matches(v, o), 'objectContaining');
expect.arrayContaining = (xs) =>
  asymmetric((v) => Array.isArray(v) && xs.every((x) => v.some((y) => equal(y, x, false))), 'arrayContaining');
expect.any = (c) =>
  asymmetric(
    (v) => v !== null && v !== undefined && (Object(v) instanceof c || (c === String && typeof v === 'string') || (c === Number && typeof v === 'number')),
    `any ${c.name}`,
  );

export const vi = {
  // spyOn(object, method).mockImplementation(fn): replaces the method until mockRestore().
  spyOn(object, method) {
    const original = object[method];
    const calls = [];
    let impl = (...args) => original.apply(object, args);
    object[method] = (...args) => {
      calls.push(args);
      return impl(...args);
    };
    const spy = {
      mock: { calls },
      mockImplementation(fn) {
        impl = fn;
        return spy;
      },
      mockRestore() {
        object[method] = original;
      },
    };
    return spy;
  },
};
