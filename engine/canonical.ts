// Canonical JSON: the one serialisation of params that the fingerprint hashes, so that key
// order never matters and values JSON cannot carry (functions, BigInt, cycles) are refused
// instead of silently dropped.

export class CanonicalError extends Error {
  constructor(readonly path: string, message: string) {
    super(message);
  }
}

export function canonicalJson(value: unknown, path = 'params'): string {
  const seen = new Set<object>();
  const walk = (v: unknown, at: string): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return JSON.stringify(v);
      case 'number':
        if (!Number.isFinite(v)) throw new CanonicalError(at, `${at} is ${v}, which JSON cannot represent`);
        return JSON.stringify(v);
      case 'undefined':
        throw new CanonicalError(at, `${at} is undefined; use null or leave the key out`);
      case 'bigint':
        throw new CanonicalError(at, `${at} is a BigInt, which JSON cannot represent; use a string or number`);
      case 'function':
      case 'symbol':
        throw new CanonicalError(at, `${at} is a ${typeof v}, which cannot be hashed as JSON`);
    }
    const obj = v as object;
    if (seen.has(obj)) throw new CanonicalError(at, `${at} refers back to itself (a cycle)`);
    seen.add(obj);
    let out: string;
    if (Array.isArray(obj)) {
      out = `[${obj.map((x, i) => walk(x, `${at}[${i}]`)).join(',')}]`;
    } else {
      const proto = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null) {
        throw new CanonicalError(at, `${at} is a ${obj.constructor?.name ?? 'non-plain'} object; only plain objects, arrays, strings, numbers, booleans and null are allowed`);
      }
      const rec = obj as Record<string, unknown>;
      const keys = Object.keys(rec).filter((k) => rec[k] !== undefined).sort();
      out = `{${keys.map((k) => `${JSON.stringify(k)}:${walk(rec[k], `${at}.${k}`)}`).join(',')}}`;
    }
    seen.delete(obj);
    return out;
  };
  return walk(value, path);
}

/** Flattens a JSON value into `path → leaf JSON` so that --explain can name the key that changed. */
export function flattenJson(value: unknown, at = ''): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (v: unknown, p: string) => {
    if (v !== null && typeof v === 'object') {
      const entries = Array.isArray(v) ? v.map((x, i) => [`${p}[${i}]`, x] as const) : Object.entries(v).map(([k, x]) => [p ? `${p}.${k}` : k, x] as const);
      if (entries.length === 0) out.set(p || '(root)', JSON.stringify(v));
      for (const [k, x] of entries) walk(x, k);
    } else {
      out.set(p || '(root)', JSON.stringify(v));
    }
  };
  walk(value, at);
  return out;
}
