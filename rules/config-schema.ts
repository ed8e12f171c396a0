// A tiny structural validator for hub.config.json. Hand-written rather than a dependency:
// the file is small, and what matters is that every error names the exact key.

/** Thrown with the dotted key path of the offending value. */
export class ConfigKeyError extends Error {
  constructor(
    readonly key: string,
    readonly problem: string,
  ) {
    super(`${key}: ${problem}`);
  }
}

export type Check = (value: unknown, key: string) => void;

const fail = (key: string, problem: string): never => {
  throw new ConfigKeyError(key || '(top level)', problem);
};
const describe = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v);
const join = (key: string, sub: string | number): string =>
  typeof sub === 'number' ? `${key}[${sub}]` : key ? `${key}.${sub}` : sub;

export const str =
  (pattern?: RegExp, hint?: string): Check =>
  (v, key) => {
    if (typeof v !== 'string' || v === '') fail(key, `expected a non-empty string, got ${describe(v)}`);
    if (pattern && !pattern.test(v as string)) fail(key, `${JSON.stringify(v)} is not ${hint ?? pattern}`);
  };

export const int =
  (min = -Infinity): Check =>
  (v, key) => {
    if (typeof v !== 'number' || !Number.isInteger(v)) fail(key, `expected an integer, got ${describe(v)}`);
    if ((v as number) < min) fail(key, `expected an integer >= ${min}, got ${v}`);
  };

export const num =
  (exclusiveMin = -Infinity): Check =>
  (v, key) => {
    if (typeof v !== 'number' || !Number.isFinite(v)) fail(key, `expected a number, got ${describe(v)}`);
    if ((v as number) <= exclusiveMin) fail(key, `expected a number > ${exclusiveMin}, got ${v}`);
  };

export const oneOf =
  (choices: readonly string[]): Check =>
  (v, key) => {
    if (typeof v !== 'string' || !choices.includes(v)) fail(key, `expected one of ${choices.join(', ')}, got ${JSON.stringify(v)}`);
  };

export const nullable =
  (inner: Check): Check =>
  (v, key) => {
    if (v !== null) inner(v, key);
  };

export const arr =
  (item: Check, opts: { nonEmpty?: boolean; unique?: boolean } = {}): Check =>
  (v, key) => {
    if (!Array.isArray(v)) return fail(key, `expected an array, got ${describe(v)}`);
    if (opts.nonEmpty && v.length === 0) fail(key, 'expected a non-empty array');
    v.forEach((x, i) => item(x, join(key, i)));
    if (opts.unique && new Set(v.map((x) => JSON.stringify(x))).size !== v.length) fail(key, 'has duplicate entries');
  };

/** A record whose keys must pass keyCheck (e.g. a view name) and values valueCheck. */
export const record =
  (keyChoices: readonly string[], value: Check): Check =>
  (v, key) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(key, `expected an object, got ${describe(v)}`);
    for (const [k, x] of Object.entries(v)) {
      if (!keyChoices.includes(k)) fail(join(key, k), `unknown key (expected one of ${keyChoices.join(', ')})`);
      value(x, join(key, k));
    }
  };

/** An object with known keys; keys listed in `optional` may be absent. Unknown keys are errors. */
export const obj =
  (fields: Record<string, Check>, optional: readonly string[] = []): Check =>
  (v, key) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(key, `expected an object, got ${describe(v)}`);
    const o = v as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!(k in fields)) fail(join(key, k), `unknown key (expected one of ${Object.keys(fields).join(', ')})`);
    }
    for (const [k, check] of Object.entries(fields)) {
      if (!(k in o)) {
        if (!optional.includes(k)) fail(join(key, k), 'missing');
        continue;
      }
      check(o[k], join(key, k));
    }
  };
