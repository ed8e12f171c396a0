// A build narrowed to what a change reaches.
//
// A stamp whose module record stands (engine/module-record.ts) says the targets module returns the
// specs it returned when the stamp was written; the stamp's check names the paths that moved. The
// rebuilder then has nothing to say of any target that neither reads nor writes a moved path, nor
// lies downstream of one that does (stamp.ts, knownFresh). Ninja answers an edit of one source in
// a 10,000-target graph in ~60 ms; deciding through the whole graph here cost ~300 (validating
// every spec, building the graph, reading every record of the state log, walking every target).
//
// So a full build that writes a stamp also draws the goals' outline (below): per target, in
// dependency order, its spec's position in the module's export, what it waits for and what waits
// for it; per path of the stamp, the targets that read or write it; and each target as validated.
// From it and the moved paths come the targets the change reaches, and the graph the build needs:
// theirs and their direct dependencies' (whose outputs they read; fresh by the stamp's word), taken
// from the outline, or validated from the module's export when an action is among them. The
// session then reads only their records (state.ts), takes their stat entries from the stamp
// (stampStats), and the builder reports every other target of the goals fresh.
//
// Whatever the outline cannot speak for is decided by the whole graph, as before: a graph with
// glob inputs (stamp.ts never names moved paths for one), a moved input that is no longer a file
// (a missing or directory input is a declaration matter), an action among the affected targets
// (its ctx.outcomes() reports on every target), a change that reaches most of the graph, and a
// state log due for compaction.
import fs from 'node:fs';
import path from 'node:path';
import type { Graph } from './graph.ts';
import { validateAt, type Target } from './spec.ts';
import { entryOfSig, fieldsOf, type StampFile, type Tracked } from './stamp.ts';
import { firstLine, writeFileAtomic } from './disk.ts';
import type { StatEntry } from './hash.ts';
import { asRecord, hashAt } from './path-hashes.ts';
import type { TargetHistory } from './state.ts';

/**
 * The shape of the goals' targets as the outline keeps it (below), in two parts joined by `#`. First, per
 * target of the goals in dependency order, `[a]<spec>|<deps>|<dependents>`: `a` for an alias, the
 * position of its spec in the module's export, and the targets it waits for and that wait for it,
 * as positions in this list. Second, per path record of the stamp, the targets that read or write
 * it. `;` between entries, `,` within a list: a narrowed build decodes only the entries a change
 * reaches.
 */
function encodeShape(g: Graph, closure: Set<string>, pathIndex: Map<string, number>): string | undefined {
  const whole = closure.size === g.targets.length;
  const specOf = new Map<string, number>();
  g.targets.forEach((t, i) => specOf.set(t.name, i));
  const at = new Map<string, number>();
  const names = goalOrder(g, closure);
  names.forEach((n, i) => at.set(n, i));
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

/** The goals' targets in dependency order: the shape's entries, and the stored targets' lines. */
function goalOrder(g: Graph, closure: Set<string>): string[] {
  return closure.size === g.targets.length ? g.order : g.order.filter((n) => closure.has(n));
}

const list = (s: string | undefined): number[] => (s ? s.split(',').map(Number) : []);

/** The shape split into its entries; each is decoded when a change reaches it. */
export interface Shape {
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

/** What a change reaches, by the stamp's shape: the targets to decide and those their graph needs. */
export interface Reach {
  stamp: StampFile;
  outline: Outline;
  shape: Shape;
  /** The targets the change reaches (positions in the shape). */
  hit: Set<number>;
  /** Those and their direct dependencies, in the shape's (dependency) order. */
  need: number[];
  entry: (i: number) => Entry;
}

type Entry = NonNullable<ReturnType<typeof entry>>;

/**
 * Why not, or what the moved paths (numbers of the stamp's path records, its check's `movedAt`)
 * reach. Reads only the moved inputs' stats. `share`: the largest share of the goals' targets a
 * narrowed build may decide (HUBMAKE_NARROW).
 */
export function reach(root: string, stamp: StampFile, moved: number[], share: number): Reach | string {
  const head = stamp.head;
  if (head.dirs.length) return 'glob inputs';
  const outline = readOutline(path.dirname(stamp.file), head.key);
  if (typeof outline === 'string') return outline;
  const shape = outline.shape;
  const fields = fieldsOf(stamp);
  if (!fields || shape.touch.length !== head.count) return 'the stamp is damaged';
  const entries = new Map<number, Entry>();
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
  for (const k of moved) {
    const p = fields[3 * k + 2]!;
    // A moved input that is not a file now is for validation to judge (a missing input with no
    // producer is a declaration error; a directory input depends on what is written inside it).
    if (fields[3 * k] === 'i' && !isFile(path.join(root, p))) return `'${p}' is no longer a file`;
    // One by one: a path every target reads lists them all, too many for one call's arguments.
    for (const i of list(shape.touch[k])) stack.push(i);
  }
  const most = share * shape.targets.length;
  const need = new Set<number>();
  try {
    while (stack.length) {
      const i = stack.pop()!;
      if (hit.has(i)) continue;
      hit.add(i);
      if (hit.size > most) return `it reaches more than ${Math.floor(most)} of ${shape.targets.length} targets`;
      for (const d of at(i).dependents) stack.push(d);
    }
    for (const i of hit) {
      need.add(i);
      for (const d of at(i).deps) need.add(d);
    }
  } catch (e) {
    if (e instanceof Damaged) return 'the stamp is damaged';
    throw e;
  }
  // The log is compacted by a full build once a fifth of it is dead (state.ts): a narrowed one,
  // which appends a start and an end per target it runs, gives way to it then.
  if (head.logLines === undefined || head.live === undefined || head.strings === undefined) return 'the stamp does not count the log';
  if (head.logLines + 2 * hit.size > head.live + head.live / 4 + 100) return 'the state log is due for compaction';
  return { stamp, outline, shape, hit, need: [...need].sort((a, b) => a - b), entry: at };
}

/** The needed targets from the module's export (the same specs the stamp was written from: its record stands). */
export function validatedAt(r: Reach, specs: unknown, root: string): Target[] | string {
  if (!Array.isArray(specs)) return 'the export is not an array';
  try {
    return validateAt(specs, r.need.map((i) => r.entry(i).spec), root);
  } catch {
    return 'a spec is not as it was'; // cannot happen while the record stands: the whole graph will say why
  }
}

/** The narrowed build over these targets (the needed ones, in order), or why not. */
export function narrowedGraph(r: Reach, targets: Target[]): Narrowed | string {
  const { hit, need: order, shape } = r;
  const head = r.stamp.head;
  const names = targets.map((t) => t.name);
  for (let k = 0; k < order.length; k++) {
    const t = targets[k]!;
    if (t.alias !== r.entry(order[k]!).alias) return 'a spec is not as it was';
    if (hit.has(order[k]!) && typeof t.run === 'function') return `'${t.name}' is an action (its ctx.outcomes() reports on every target)`;
  }
  const nameOf = new Map(order.map((i, k) => [i, names[k]!]));
  const byName = new Map(targets.map((t) => [t.name, t]));
  const depsOf = new Map<string, string[]>();
  const dependentsOf = new Map<string, string[]>(names.map((n) => [n, []]));
  for (let k = 0; k < order.length; k++) {
    // A dependency's own dependencies are not in the graph: it is fresh, and waits for nothing.
    const ds = hit.has(order[k]!) ? r.entry(order[k]!).deps.map((d) => nameOf.get(d)!) : [];
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
  const needed = new Set(order);
  let k = 0;
  for (let i = 0; i < shape.targets.length; i++) {
    if (shape.targets[i]!.startsWith('a')) continue;
    const name = head.names[k++];
    if (name === undefined) return 'the shape and the names disagree';
    if (!needed.has(i)) outside.push(name);
    else if (name !== nameOf.get(i)) return 'a spec is not as it was';
  }
  if (k !== head.names.length) return 'the shape and the names disagree';
  return { graph, fresh, outside, outsideTargets: shape.targets.length - order.length };
}

class Damaged extends Error {}

// ---- the stat cache, from the stamp ----

/**
 * The stat cache entries a narrowed build's hashing needs, without reading the stat cache (a
 * JSON document of every file: ~15 ms at 10,000 targets, more than the rest of the reading).
 * A path the stamp saw unmoved is as it was when the stamp's build left every target fresh or
 * built: its stat is the stamp's signature (taken from the stat cache entry the build hashed it
 * through), and its content the hash its producer's last success wrote, or the one every reader's
 * last success read. Readers whose rebuild policy is 'missing' keep old records, and are not
 * asked. Paths it cannot vouch for (moved, compared by content, or whose records disagree) are
 * left out: the hasher hashes them.
 */
export function stampStats(stamp: StampFile, movedAt: number[], g: Graph, history: ReadonlyMap<string, TargetHistory>): Map<string, StatEntry> {
  const hashes = new Map<string, string | null>();
  const note = (p: string, h: string) => {
    const had = hashes.get(p);
    if (had === undefined) hashes.set(p, h);
    else if (had !== h) hashes.set(p, null);
  };
  for (const t of g.targets) {
    const ok = history.get(t.name)?.ok;
    if (!ok) continue;
    for (const p of t.outputs) {
      const h = hashAt(ok.out, p);
      if (h !== undefined) note(p, h);
    }
  }
  for (const t of g.targets) {
    const ok = history.get(t.name)?.ok;
    if (!ok || t.rebuild !== 'stale') continue;
    const recorded = asRecord(ok.in);
    for (const p of t.inputs) {
      const h = recorded[p];
      if (h !== undefined) note(p, h);
    }
  }
  const out = new Map<string, StatEntry>();
  const fields = fieldsOf(stamp);
  if (!fields) return out;
  const moved = new Set(movedAt);
  for (let i = 0; 3 * i + 2 < fields.length; i++) {
    const p = fields[3 * i + 2]!;
    const h = hashes.get(p);
    if (!h || moved.has(i)) continue;
    const e = entryOfSig(fields[3 * i + 1]!, h);
    if (e) out.set(p, e);
  }
  return out;
}

// ---- the outline: the shape and the targets, beside the stamp ----
//
// `settled.outline` holds what a narrowed build needs of the graph, under the key of the specs it
// was drawn from (engine/stamp.ts): its first line is that key, its second the shape, its third
// the byte offset of each target's line in the rest, and then the goals' validated targets, one
// JSON line each in the shape's order (an action's is `null`). A narrowed build whose targets are
// all commands reads theirs and need not run the targets module at all. Apart from the stamp,
// whose head every no-op parses, and written by a full build only when its key is another (the
// first build after the specs changed): drawing it costs ~30 ms at 10,000 targets. The key holds
// the stamp's VERSION: a change to what the outline holds must change VERSION too.

const OUTLINE_FILE = 'settled.outline';

/** The outline as read: the shape, and where each stored target lies in its bytes. */
export interface Outline {
  shape: Shape;
  at: unknown[];
  bytes: Buffer;
  body: number;
}

/** The key the outline is of, from its first line; undefined when none. */
function outlineKey(file: string): string | undefined {
  let fd: number | undefined;
  try {
    fd = fs.openSync(file, 'r');
    const first = firstLine(fd, fs.fstatSync(fd).size);
    return first ? (JSON.parse(first.text) as string) : undefined;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
}

/**
 * After a full build wrote a stamp with this key: its goals' outline, unless already drawn for
 * it. None for a graph the shape cannot draw (glob inputs).
 */
export function writeOutline(stateDir: string, key: string, g: Graph, closure: Set<string>, paths: string[]): void {
  const file = path.join(stateDir, OUTLINE_FILE);
  if (outlineKey(file) === key) return;
  const index = new Map<string, number>();
  paths.forEach((p, i) => index.set(p, i));
  const shape = encodeShape(g, closure, index);
  if (shape === undefined) return;
  const at: number[] = [];
  let off = 0;
  const lines = goalOrder(g, closure).map((n) => {
    const t = g.byName.get(n)!;
    const line = typeof t.run === 'function' ? 'null' : JSON.stringify(t);
    at.push(off);
    off += Buffer.byteLength(line) + 1;
    return line;
  });
  writeFileAtomic(file, `${JSON.stringify(key)}\n${JSON.stringify(shape)}\n${JSON.stringify(at)}\n${lines.join('\n')}\n`);
}

function readOutline(stateDir: string, key: string): Outline | string {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(path.join(stateDir, OUTLINE_FILE));
  } catch {
    return 'no outline of the graph';
  }
  const ends: number[] = [];
  for (let at = 0; ends.length < 3; at = ends[ends.length - 1]! + 1) {
    const e = bytes.indexOf(10, at);
    if (e < 0) return 'the outline is damaged';
    ends.push(e);
  }
  try {
    if (JSON.parse(bytes.toString('utf8', 0, ends[0])) !== key) return 'the outline is of other specs';
    const shape = splitShape(JSON.parse(bytes.toString('utf8', ends[0]! + 1, ends[1])) as string);
    const at = JSON.parse(bytes.toString('utf8', ends[1]! + 1, ends[2])) as unknown;
    if (!shape || !Array.isArray(at) || at.length !== shape.targets.length) return 'the outline is damaged';
    return { shape, at, bytes, body: ends[2]! + 1 };
  } catch {
    return 'the outline is damaged';
  }
}

/** The needed targets as the outline stores them, or why not. */
export function storedAt(r: Reach): Target[] | string {
  const { at, bytes, body } = r.outline;
  try {
    const out: Target[] = [];
    for (const i of r.need) {
      const start = body + (at[i] as number);
      const t = JSON.parse(bytes.toString('utf8', start, bytes.indexOf(10, start))) as Target | null;
      if (t === null) return 'an action is among them';
      if (!isStored(t)) return 'the outline is damaged';
      out.push(t);
    }
    return out;
  } catch {
    return 'the outline is damaged';
  }
}

const strs = (x: unknown) => Array.isArray(x) && x.every((e) => typeof e === 'string');

/** A target as JSON.stringify wrote it: the fields the build reads, of their types. */
function isStored(t: unknown): t is Target {
  const o = t as Record<string, unknown>;
  return !!o && typeof o === 'object' && typeof o.name === 'string' && strs(o.outputs) && strs(o.inputs) && strs(o.deps) && strs(o.env) && typeof o.paramsJson === 'string' && (o.run === undefined || typeof o.run === 'string') && typeof o.alias === 'boolean' && typeof o.runOnFailure === 'boolean' && (o.rebuild === 'stale' || o.rebuild === 'missing') && (o.executor === 'local' || o.executor === 'slurm');
}

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
export function trackedOf(s: StampFile, movedAt: number[]): Tracked | undefined {
  const f = fieldsOf(s);
  if (!f) return undefined;
  const paths: string[] = [];
  const outputs: string[] = [];
  const kinds: string[] = [];
  const sigs: Array<string | undefined> = [];
  for (let i = 0; 3 * i + 2 < f.length; i++) {
    paths.push(f[3 * i + 2]!);
    kinds.push(f[3 * i]!);
    sigs.push(f[3 * i + 1]!);
    if (f[3 * i] === 'o') outputs.push(f[3 * i + 2]!);
  }
  for (const i of movedAt) sigs[i] = undefined;
  return { paths, outputs, guarded: s.head.guarded, names: s.head.names, targets: s.head.targets, globs: [], from: { kinds, sigs } };
}
