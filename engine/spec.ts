// Turns whatever a targets module exported into validated targets. Every exit-2 diagnostic about
// a single spec starts here; cross-target checks (duplicates, cycles, missing inputs) are in graph.ts.
import { fastGlob } from './globs.ts';
import { canonicalJson, CanonicalError } from './canonical.ts';
import { DeclarationError, type Diagnostic } from './errors.ts';
import { normalizeRel, WriteGuard } from './paths.ts';
import type { Action, SlurmOptions, TargetSpec } from './types.ts';

/** A validated target. Paths are normalised; directories keep their trailing `/`. */
export interface Target {
  name: string;
  outputs: string[];
  inputs: string[];
  deps: string[];
  params: unknown;
  /** Canonical JSON of params ('' when absent). */
  paramsJson: string;
  env: string[];
  run: string | Action | undefined;
  log: string | undefined;
  rebuild: 'stale' | 'missing';
  description: string | undefined;
  runOnFailure: boolean;
  /** true: always stored in the artifact cache; false: never; undefined: when the run was slow enough. */
  cache: boolean | undefined;
  pool: string | undefined;
  executor: 'local' | 'slurm';
  slurm: SlurmOptions | undefined;
  /** deps only, no outputs and no run. */
  alias: boolean;
}

const KNOWN = new Set([
  'name', 'outputs', 'inputs', 'deps', 'params', 'env', 'run', 'log', 'rebuild', 'description',
  'runOnFailure', 'cache', 'pool', 'executor', 'slurm',
]);
const SLURM_KNOWN = new Set(['partition', 'time', 'cpus', 'mem', 'gres', 'account', 'args']);

export function isGlob(p: string): boolean {
  // Without any of these characters no pattern syntax can be present; skipping fast-glob's check
  // (which builds a Settings object per call) matters at 100,000 paths per build.
  if (!/[*?[\]{}()!+@\\]/.test(p)) return false;
  return fastGlob().isDynamicPattern(p);
}

export function validateSpecs(exported: unknown, root: string): Target[] {
  if (!Array.isArray(exported)) {
    throw new DeclarationError({
      field: 'default export',
      message: `the targets module must export an array of target specs (or a function returning one), got ${describe(exported)}`,
      hint: 'write `export default [{ outputs: [...], run: "..." }]`',
    });
  }
  return validateAt(exported, undefined, root);
}

/**
 * The specs at these positions of an export (those a narrowed build needs of an export validated
 * as a whole before: engine/narrow.ts), or all of them (validateSpecs; holes are skipped).
 */
export function validateAt(exported: unknown[], at: number[] | undefined, root: string): Target[] {
  const errors: Diagnostic[] = [];
  const targets: Target[] = [];
  const guard = new WriteGuard(root);
  const one = (raw: unknown, i: number) => {
    const t = validateOne(raw, i, errors, guard);
    if (t) targets.push(t);
  };
  if (at) for (const i of at) one(exported[i], i);
  else exported.forEach(one);
  if (errors.length) throw new DeclarationError(errors);
  return targets;
}

function validateOne(raw: unknown, index: number, errors: Diagnostic[], guard: WriteGuard): Target | undefined {
  const label0 = `#${index}`;
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
    errors.push({ target: label0, message: `a target spec must be an object, got ${describe(raw)}` });
    return undefined;
  }
  const s = raw as Record<string, unknown>;
  const nameGuess = typeof s.name === 'string' ? s.name : Array.isArray(s.outputs) && typeof s.outputs[0] === 'string' ? normalizeRel(s.outputs[0]) : label0;
  const err = new SpecErrors(errors, nameGuess);
  for (const k of Object.keys(s)) {
    if (!KNOWN.has(k)) err.add(k, `unknown field '${k}'`, `known fields: ${[...KNOWN].join(', ')}`);
  }
  const outputs = mapSame(strings(s, 'outputs', err), normalizeRel);
  const inputs = mapSame(strings(s, 'inputs', err), normalizeInput);
  const deps = strings(s, 'deps', err);
  const env = strings(s, 'env', err);
  const name = optString(s, 'name', err) ?? outputs[0];
  const description = optString(s, 'description', err);
  const pool = optString(s, 'pool', err);
  let log = optString(s, 'log', err);
  if (log !== undefined) log = normalizeRel(log);
  const runOnFailure = optBool(s, 'runOnFailure', false, err);
  const cache = optBool(s, 'cache', undefined, err);

  let run: string | Action | undefined;
  if (s.run !== undefined) {
    if (typeof s.run === 'string' && s.run.trim() !== '') run = s.run;
    else if (typeof s.run === 'function') run = s.run as Action;
    else err.add('run', `must be a shell command string or a function, got ${describe(s.run)}`);
  }
  let rebuild: 'stale' | 'missing' = 'stale';
  if (s.rebuild !== undefined) {
    if (s.rebuild === 'stale' || s.rebuild === 'missing') rebuild = s.rebuild;
    else err.add('rebuild', `must be 'stale' or 'missing', got ${describe(s.rebuild)}`);
  }
  let executor: 'local' | 'slurm' = 'local';
  if (s.executor !== undefined) {
    if (s.executor === 'local' || s.executor === 'slurm') executor = s.executor;
    else err.add('executor', `must be 'local' or 'slurm', got ${describe(s.executor)}`);
  }
  let slurm: SlurmOptions | undefined;
  if (s.slurm !== undefined) {
    if (s.slurm === null || typeof s.slurm !== 'object' || Array.isArray(s.slurm)) err.add('slurm', `must be an object, got ${describe(s.slurm)}`);
    else {
      const so = s.slurm as Record<string, unknown>;
      for (const k of Object.keys(so)) if (!SLURM_KNOWN.has(k)) err.add(`slurm.${k}`, `unknown field`, `known: ${[...SLURM_KNOWN].join(', ')}`);
      if (so.cpus !== undefined && !(Number.isInteger(so.cpus) && (so.cpus as number) > 0)) err.add('slurm.cpus', 'must be a positive integer');
      for (const k of ['partition', 'time', 'mem', 'gres', 'account']) if (so[k] !== undefined && typeof so[k] !== 'string') err.add(`slurm.${k}`, 'must be a string');
      if (so.args !== undefined && !(Array.isArray(so.args) && so.args.every((a) => typeof a === 'string'))) err.add('slurm.args', 'must be an array of strings');
      slurm = so as SlurmOptions;
    }
  }
  let paramsJson = '';
  if (s.params !== undefined) {
    try {
      paramsJson = canonicalJson(s.params);
    } catch (e) {
      if (e instanceof CanonicalError) err.add(e.path, e.message, 'params must be plain JSON data');
      else throw e;
    }
  }

  const alias = outputs.length === 0 && run === undefined;
  if (executor === 'slurm' && typeof run === 'function') err.add('executor', "an in-process action cannot run on Slurm", "give the target a shell command in `run`, or drop executor: 'slurm'");
  if (run !== undefined && outputs.length === 0) err.add('outputs', 'a target with `run` must declare at least one output', 'list the files the command writes in `outputs`');
  if (outputs.length === 0 && run === undefined && deps.length === 0 && inputs.length === 0) err.add('outputs', 'declares no outputs, run or deps', 'give it outputs and run, or deps to make it an alias');
  if (outputs.length > 0 && run === undefined) err.add('run', 'a target with outputs needs `run` (a command or a function)');
  if (alias && typeof s.name !== 'string') err.add('name', 'an alias (deps without outputs) needs a name');
  outputs.forEach((o, i) => {
    if (isGlob(o)) err.add(`outputs[${i}]`, `'${o}' is a glob pattern; outputs must be literal paths`);
    const why = guard.check(o);
    if (why) err.add(`outputs[${i}]`, `'${o}' ${why}`, 'outputs must stay inside the root directory');
  });
  if (log !== undefined) {
    const why = guard.check(log);
    if (why) err.add('log', `'${log}' ${why}`, 'logs must stay inside the root directory');
    if (log.endsWith('/')) err.add('log', `'${log}' is a directory; name a file`);
  }
  inputs.forEach((p, i) => {
    if (isAbsoluteLike(p)) err.add(`inputs[${i}]`, `'${p}' is absolute; declare inputs relative to the root`);
  });
  if (name === undefined) return undefined;
  return {
    name, outputs, inputs, deps, params: s.params, paramsJson, env, run, log, rebuild, description,
    runOnFailure, cache, pool, executor, slurm, alias,
  };
}

/** Collects one spec's diagnostics under the name it will be reported by. */
class SpecErrors {
  constructor(private readonly errors: Diagnostic[], private readonly target: string) {}
  add(field: string, message: string, hint?: string): void {
    const d: Diagnostic = { target: this.target, field, message };
    if (hint) d.hint = hint;
    this.errors.push(d);
  }
}

const EMPTY: string[] = [];

const normalizeInput = (p: string) => (isGlob(p) ? p.replace(/^\.\//, '') : normalizeRel(p));

/** xs.map(f), but xs itself when f changes nothing: declared paths are usually normal already. */
function mapSame(xs: string[], f: (x: string) => string): string[] {
  for (let i = 0; i < xs.length; i++) {
    const y = f(xs[i]!);
    if (y !== xs[i]) {
      const out = xs.slice(0, i);
      out.push(y);
      for (let j = i + 1; j < xs.length; j++) out.push(f(xs[j]!));
      return out;
    }
  }
  return xs;
}

/** An array of non-empty strings without NUL bytes; the common, valid case allocates nothing. */
function strings(s: Record<string, unknown>, field: string, err: SpecErrors): string[] {
  const v = s[field];
  if (v === undefined) return EMPTY;
  if (!Array.isArray(v)) {
    err.add(field, `must be an array of strings, got ${describe(v)}`);
    return EMPTY;
  }
  let ok = true;
  for (let i = 0; i < v.length; i++) {
    const x: unknown = v[i];
    if (typeof x !== 'string' || x === '' || x.includes('\0')) { ok = false; break; }
  }
  if (ok) return v as string[];
  const out: string[] = [];
  v.forEach((x: unknown, i) => {
    if (typeof x !== 'string' || x === '') err.add(`${field}[${i}]`, `must be a non-empty string, got ${describe(x)}`);
    // No path, name or variable can hold a NUL byte (the file system would throw later).
    else if (x.includes('\0')) err.add(`${field}[${i}]`, `${JSON.stringify(x)} contains a NUL byte`);
    else out.push(x);
  });
  return out;
}

function optString(s: Record<string, unknown>, field: string, err: SpecErrors): string | undefined {
  const v = s[field];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v === '') {
    err.add(field, `must be a non-empty string, got ${describe(v)}`);
    return undefined;
  }
  if (v.includes('\0')) {
    err.add(field, `${JSON.stringify(v)} contains a NUL byte`);
    return undefined;
  }
  return v;
}

function optBool<D extends boolean | undefined>(s: Record<string, unknown>, field: string, dflt: D, err: SpecErrors): boolean | D {
  const v = s[field];
  if (v === undefined) return dflt;
  if (typeof v !== 'boolean') {
    err.add(field, `must be true or false, got ${describe(v)}`);
    return dflt;
  }
  return v;
}

function isAbsoluteLike(p: string): boolean {
  return p.startsWith('/') || /^[A-Za-z]:[\\/]/.test(p);
}

export function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `the string ${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)}`;
  if (typeof v === 'object') return 'an object';
  return `${typeof v} ${String(v)}`;
}
