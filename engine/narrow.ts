// A build narrowed to what a change reaches.
//
// A stamp whose module record stands (engine/module-record.ts) says the targets module returns the
// specs it returned when the stamp was written; the stamp's check names the paths that moved. The
// rebuilder then has nothing to say of any target that neither reads nor writes a moved path, nor
// lies downstream of one that does (stamp.ts, knownFresh). Ninja answers an edit of one source in
// a 10,000-target graph in ~60 ms; deciding through the whole graph here cost ~300 (validating
// every spec, building the graph, reading every record of the state log, walking every target).
//
// So the stamp keeps the graph's shape: per target of the goals, in dependency order, its spec's
// position in the module's export, its dependencies, and its inputs and outputs as numbers of the
// stamp's path records. From it and the moved paths come the affected targets, and the graph the
// build needs is theirs and their direct dependencies' (whose outputs they read; fresh by the
// stamp's word): only those specs are validated, only their records read. Every other target of
// the goals is fresh, and reported as such.
//
// Whatever the shape cannot speak for is decided by the whole graph, as before: a graph with glob
// inputs (stamp.ts never names moved paths for one), a moved input that is no longer a file (a
// missing or directory input is a declaration matter), an action among the affected targets (its
// ctx.outcomes() reports on every target), and a change that reaches most of the graph.
import fs from 'node:fs';
import path from 'node:path';
import type { Graph } from './graph.ts';
import { validateAt, type Target } from './spec.ts';
import { fieldsOf, type StampFile, type Tracked } from './stamp.ts';

/**
 * The shape of the goals' targets as the stamp keeps it, in two parts joined by `#`. First, per
 * target of the goals in dependency order, `[a]<spec>|<deps>|<dependents>`: `a` for an alias, the
 * position of its spec in the module's export, and the targets it waits for and that wait for it,
 * as positions in this list. Second, per path record of the stamp, the targets that read or write
 * it. `;` between entries, `,` within a list. One string in the stamp's JSON head: a no-op parses
 * it as one string, and a narrowed build decodes only the entries a change reaches.
 */
export function encodeShape(g: Graph, closure: Set<string>, pathIndex: Map<string, number>): string | undefined {
  const whole = closure.size === g.targets.length;
  const specOf = new Map<string, number>();
  g.targets.forEach((t, i) => specOf.set(t.name, i));
  const at = new Map<string, number>();
  const names: string[] = [];
  for (const name of g.order) {
    if (!whole && !closure.has(name)) continue;
    at.set(name, names.length);
    names.push(name);
  }
  const touch: number[][] = Array.from({ length: pathIndex.size }, () => []);
  const entries: string[] = [];
  for (let i = 0; i < names.length; i++) {
    const t = g.byName.get(names[i]!)!;
    const deps = g.depsOf.get(t.name)!.map((d) => at.get(d));
    const dependents = g.dependentsOf.get(t.name)!.filter((d) => whole || closure.has(d)).map((d) => at.get(d));
    for (const p of [...t.inputs, ...t.outputs]) {
      const k = pathIndex.get(p);
      // A glob input is not a path record: such a graph is never narrowed (see the head comment).
      if (k === undefined) return undefined;
      const list = touch[k]!;
      if (list[list.length - 1] !== i) list.push(i);
    }
    entries.push(`${t.alias ? 'a' : ''}${specOf.get(t.name)!}|${deps.join(',')}|${dependents.join(',')}`);
  }
  return `${entries.join(';')}#${touch.map((l) => l.join(',')).join(';')}`;
}

const list = (s: string | undefined): number[] => (s ? s.split(',').map(Number) : []);

/** The shape split into its entries; each is decoded when a change reaches it. */
interface Shape {
  targets: string[];
  touch: string[];
}

function splitShape(text: string): Shape | undefined {
  const cut = text.indexOf('#');
  if (cut < 0) return undefined;
  return { targets: cut === 0 ? [] : text.slice(0, cut).split(';'), touch: text.slice(cut + 1).split(';') };
}

/** One target's entry: its spec's position, whether it is an alias, what it waits for and what waits for it. */
function entry(shape: Shape, i: number): { spec: number; alias: boolean; deps: number[]; dependents: number[] } | undefined {
  const e = shape.targets[i];
  if (e === undefined) return undefined;
  const f = e.split('|');
  const alias = f[0]!.startsWith('a');
  const spec = Number(alias ? f[0]!.slice(1) : f[0]);
  const deps = list(f[1]);
  const dependents = list(f[2]);
  const n = shape.targets.length;
  if (f.length !== 3 || !Number.isInteger(spec) || [...deps, ...dependents].some((d) => !(d >= 0 && d < n))) return undefined;
  return { spec, alias, deps, dependents };
}

/** A narrowed build: its graph, the targets of it the stamp vouches for, and those outside it. */
export interface Narrowed {
  graph: Graph;
  /** Targets in the graph that are only there for their outputs (the affected ones' dependencies). */
  fresh: Set<string>;
  /** The goals' non-alias targets outside the graph, in dependency order: fresh. */
  outside: string[];
  /** How many targets of the goals (aliases included) are outside the graph. */
  outsideTargets: number;
}

export interface NarrowInput {
  root: string;
  stamp: StampFile;
  /** The moved paths, as numbers of the stamp's path records (its check's `moved`). */
  moved: number[];
  /** The module's export, evaluated: the same specs the stamp was written from (its record stands). */
  specs: unknown;
  /** The largest share of the goals' targets a narrowed build may decide (HUBMAKE_NARROW). */
  share: number;
}

/** Why not, or the narrowed build. Reads only the moved paths' stats. */
export function narrow(o: NarrowInput): Narrowed | string {
  const head = o.stamp.head;
  if (typeof head.shape !== 'string') return 'the stamp keeps no shape of the graph';
  if (head.dirs.length) return 'glob inputs';
  if (!Array.isArray(o.specs)) return 'the export is not an array';
  const shape = splitShape(head.shape);
  const fields = fieldsOf(o.stamp);
  if (!shape || !fields || shape.touch.length !== head.count) return 'the stamp is damaged';
  const entries = new Map<number, NonNullable<ReturnType<typeof entry>>>();
  const at = (i: number) => {
    let e = entries.get(i);
    if (!e) {
      e = entry(shape, i);
      if (!e) throw new Damaged();
      entries.set(i, e);
    }
    return e;
  };
  // The targets a change reaches: those that read or write a moved path, and everything
  // downstream of them (stamp.ts's knownFresh, from the shape instead of the graph).
  const hit = new Set<number>();
  const stack: number[] = [];
  for (const k of o.moved) {
    const p = fields[3 * k + 2]!;
    // A moved input that is not a file now is for validation to judge (a missing input with no
    // producer is a declaration error; a directory input depends on what is written inside it).
    if (fields[3 * k] === 'i' && !isFile(path.join(o.root, p))) return `'${p}' is no longer a file`;
    stack.push(...list(shape.touch[k]));
  }
  const most = o.share * shape.targets.length;
  try {
    while (stack.length) {
      const i = stack.pop()!;
      if (hit.has(i)) continue;
      hit.add(i);
      if (hit.size > most) return `it reaches more than ${Math.floor(most)} of ${shape.targets.length} targets`;
      stack.push(...at(i).dependents);
    }
  } catch (e) {
    if (e instanceof Damaged) return 'the stamp is damaged';
    throw e;
  }
  // The log is compacted by a full build once a fifth of it is dead (state.ts): a narrowed one,
  // which appends a start and an end per target it runs, gives way to it then.
  if (head.logLines === undefined || head.live === undefined) return 'the stamp does not count the log';
  if (head.logLines + 2 * hit.size > head.live + head.live / 4 + 100) return 'the state log is due for compaction';
  const need = new Set(hit);
  for (const i of hit) for (const d of at(i).deps) need.add(d);
  const order = [...need].sort((a, b) => a - b);
  let targets: Target[];
  try {
    targets = validateAt(o.specs, order.map((i) => at(i).spec), o.root);
  } catch {
    return 'a spec is not as it was'; // cannot happen while the record stands: the whole graph will say why
  }
  const names = targets.map((t) => t.name);
  for (let k = 0; k < order.length; k++) {
    const t = targets[k]!;
    if (t.alias !== at(order[k]!).alias) return 'a spec is not as it was';
    if (hit.has(order[k]!) && typeof t.run === 'function') return `'${t.name}' is an action (its ctx.outcomes() reports on every target)`;
  }
  const nameOf = new Map(order.map((i, k) => [i, names[k]!]));
  const byName = new Map(targets.map((t) => [t.name, t]));
  const depsOf = new Map<string, string[]>();
  const dependentsOf = new Map<string, string[]>(names.map((n) => [n, []]));
  for (let k = 0; k < order.length; k++) {
    // A dependency's own dependencies are not in the graph: it is fresh, and waits for nothing.
    const ds = hit.has(order[k]!) ? at(order[k]!).deps.map((d) => nameOf.get(d)!) : [];
    depsOf.set(names[k]!, ds);
    for (const d of ds) dependentsOf.get(d)!.push(names[k]!);
  }
  const producers = new Map<string, Target>();
  for (const t of targets) for (const p of t.outputs) producers.set(p, t);
  const graph: Graph = { targets, byName, depsOf, dependentsOf, order: names, producerOf: (p) => producers.get(p) };
  const fresh = new Set<string>();
  for (const i of order) if (!hit.has(i)) fresh.add(nameOf.get(i)!);
  // The goals' non-alias targets are the stamp's names, in the shape's order.
  const outside: string[] = [];
  let k = 0;
  for (let i = 0; i < shape.targets.length; i++) {
    if (shape.targets[i]!.startsWith('a')) continue;
    const name = head.names[k++];
    if (name === undefined) return 'the shape and the names disagree';
    if (!need.has(i)) outside.push(name);
    else if (name !== nameOf.get(i)) return 'a spec is not as it was';
  }
  if (k !== head.names.length) return 'the shape and the names disagree';
  return { graph, fresh, outside, outsideTargets: shape.targets.length - need.size };
}

class Damaged extends Error {}

function isFile(abs: string): boolean {
  try {
    return fs.statSync(abs).isFile();
  } catch {
    return false;
  }
}

/**
 * What the next stamp watches after a narrowed build: what this one watched (the same goals of the
 * same specs), read back from it.
 */
export function trackedOf(s: StampFile): Tracked | undefined {
  const f = fieldsOf(s);
  if (!f) return undefined;
  const paths: string[] = [];
  const outputs: string[] = [];
  for (let i = 0; 3 * i + 2 < f.length; i++) {
    paths.push(f[3 * i + 2]!);
    if (f[3 * i] === 'o') outputs.push(f[3 * i + 2]!);
  }
  return { paths, outputs, guarded: s.head.guarded, names: s.head.names, targets: s.head.targets, globs: [], ...(s.head.shape !== undefined ? { shape: s.head.shape } : {}) };
}
