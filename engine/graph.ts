// Validated targets → the graph: who produces which path, who depends on whom, in what order.
// Cross-target declaration errors (duplicate outputs, cycles, unknown deps, missing inputs,
// unknown goals) are found here, before anything touches the disk.
import fs from 'node:fs';
import path from 'node:path';
import { picomatch } from './globs.ts';
import { DeclarationError, type Diagnostic } from './errors.ts';
import { isGlob, type Target } from './spec.ts';
import { stripSlash } from './paths.ts';

export interface Graph {
  targets: Target[];
  byName: Map<string, Target>;
  /** Target names this target waits for (file links and declared deps), deduplicated. */
  depsOf: Map<string, string[]>;
  dependentsOf: Map<string, string[]>;
  /** Dependency order: every target after all of its dependencies. */
  order: string[];
  /** The producer of a path (exact output, or a directory output containing it). */
  producerOf(p: string): Target | undefined;
}

export function buildGraph(targets: Target[], root: string): Graph {
  const errors: Diagnostic[] = [];
  const byName = new Map<string, Target>();
  for (const t of targets) {
    const prev = byName.get(t.name);
    if (prev) errors.push({ target: t.name, field: 'name', message: `two targets are named '${t.name}'`, hint: 'give one of them another `name`' });
    else byName.set(t.name, t);
  }
  // Output → producer, and directory outputs for prefix lookups. Logs are claimed too: a path has
  // exactly one writer. (Three maps rather than one map of everything: at 100,000 targets each
  // extra Map operation per output is measurable; bench/scale.ts.)
  const fileOut = new Map<string, Target>();
  const dirOut = new Map<string, Target>();
  const logOut = new Map<string, Target>();
  const claimant = (key: string) => fileOut.get(key) ?? (dirOut.size ? dirOut.get(key) : undefined) ?? (logOut.size ? logOut.get(key) : undefined);
  for (const t of targets) {
    const n = t.outputs.length;
    for (let i = 0; i <= n; i++) {
      const o = i < n ? t.outputs[i]! : t.log;
      if (o === undefined) continue;
      const key = stripSlash(o);
      const other = claimant(key);
      if (other && other !== t) {
        errors.push({ target: t.name, field: i < n ? 'outputs' : 'log', message: `'${o}' is also declared by target '${other.name}'`, hint: 'every output and log has exactly one producing target' });
        continue;
      }
      (i < n ? (o.endsWith('/') ? dirOut : fileOut) : logOut).set(key, t);
    }
  }
  // A path inside another target's directory output would have two writers.
  if (dirOut.size) for (const [key, t] of [...fileOut, ...dirOut, ...logOut]) {
    let d = path.posix.dirname(key);
    while (d !== '.' && d !== '/') {
      const owner = dirOut.get(d);
      if (owner && owner !== t) {
        errors.push({ target: t.name, field: 'outputs', message: `'${key}' lies inside directory output '${d}/' of target '${owner.name}'`, hint: 'a directory output belongs to one target' });
        break;
      }
      d = path.posix.dirname(d);
    }
  }
  const producerOf = (p: string): Target | undefined => {
    const key = stripSlash(p);
    const exact = fileOut.get(key) ?? dirOut.get(key);
    if (exact) return exact;
    if (dirOut.size === 0) return undefined;
    let d = path.posix.dirname(key);
    while (d !== '.' && d !== '/') {
      const owner = dirOut.get(d);
      if (owner) return owner;
      d = path.posix.dirname(d);
    }
    return undefined;
  };

  const depsOf = new Map<string, string[]>();
  // Only glob and directory inputs need every output at hand: built on first use.
  let allOutputs: Array<readonly [string, Target]> | undefined;
  let sortedOutputs: Array<readonly [string, Target]> | undefined;
  const outputsOf = () => (allOutputs ??= targets.flatMap((t) => t.outputs.map((o) => [stripSlash(o), t] as const)));
  const sorted = () => (sortedOutputs ??= [...outputsOf()].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)));
  // A target's dependency names, deduplicated: a short list (most targets have one to three), a
  // Set only once it grows (a glob may match thousands of outputs).
  let ds: string[] = [];
  let big: Set<string> | undefined;
  const add = (n: string) => {
    if (big) {
      if (!big.has(n)) { big.add(n); ds.push(n); }
    } else if (!ds.includes(n)) {
      ds.push(n);
      if (ds.length > 16) big = new Set(ds);
    }
  };
  for (const t of targets) {
    ds = [];
    big = undefined;
    t.deps.forEach((d, i) => {
      if (!byName.has(d)) errors.push({ target: t.name, field: `deps[${i}]`, message: `depends on '${d}', which no target is named`, hint: closest(d, [...byName.keys()]) });
      else if (d !== t.name) add(d);
      else errors.push({ target: t.name, field: `deps[${i}]`, message: 'depends on itself' });
    });
    t.inputs.forEach((inp, i) => {
      if (isGlob(inp)) {
        const m = picomatch(inp, { dot: true });
        for (const [o, p] of outputsOf()) if (p !== t && m(o)) add(p.name);
        return;
      }
      const prod = producerOf(inp);
      if (prod) {
        if (prod === t) errors.push({ target: t.name, field: `inputs[${i}]`, message: `'${inp}' is one of its own outputs` });
        else add(prod.name);
        if (!inp.endsWith('/')) return;
      }
      let kind: 'file' | 'dir' | 'missing' = 'missing';
      let why = 'does not exist';
      try {
        kind = fs.statSync(path.join(root, inp)).isDirectory() ? 'dir' : 'file';
      } catch (e) {
        // Name what is wrong with a path that is there but cannot be followed (symlink loop, dangling link).
        const code = (e as NodeJS.ErrnoException).code;
        if (code !== 'ENOENT' && code !== 'ENOTDIR') why = `cannot be read (${(e as Error).message})`;
        else if (code === 'ENOENT' && fs.lstatSync(path.join(root, stripSlash(inp)), { throwIfNoEntry: false })?.isSymbolicLink()) why = `is a symlink to '${fs.readlinkSync(path.join(root, stripSlash(inp)))}', which does not exist`;
      }
      if (kind === 'file') return;
      // A directory input depends on every target writing inside it.
      const inside = outputsUnder(sorted(), stripSlash(inp) + '/');
      for (const p of inside) if (p !== t) add(p.name);
      if (kind === 'missing' && !prod && inside.length === 0) {
        errors.push({ target: t.name, field: `inputs[${i}]`, message: `input '${inp}' ${why} and no target produces it`, hint: 'create the file, fix the path, or declare a target that outputs it' });
      }
    });
    depsOf.set(t.name, ds);
  }
  if (errors.length) throw new DeclarationError(errors);

  const order = topoOrder(targets, depsOf);
  // Most targets of a large graph have one dependent or none: no list is made before the first,
  // and those with none share one frozen empty list.
  const dependentsOf = new Map<string, string[]>();
  for (const t of targets) dependentsOf.set(t.name, NO_DEPENDENTS);
  for (const [n, ds] of depsOf) {
    for (const d of ds) {
      const l = dependentsOf.get(d)!;
      if (l === NO_DEPENDENTS) dependentsOf.set(d, [n]);
      else l.push(n);
    }
  }
  return { targets, byName, depsOf, dependentsOf, order, producerOf };
}

const NO_DEPENDENTS: string[] = Object.freeze([]) as unknown as string[];

/** Producers of the outputs that start with prefix, by binary search over the sorted outputs. */
function outputsUnder(sorted: ReadonlyArray<readonly [string, Target]>, prefix: string): Target[] {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sorted[mid]![0] < prefix) lo = mid + 1;
    else hi = mid;
  }
  const out: Target[] = [];
  for (let i = lo; i < sorted.length && sorted[i]![0].startsWith(prefix); i++) out.push(sorted[i]![1]);
  return out;
}

/** Depth-first order; a back edge is a cycle, reported with its whole path. */
function topoOrder(targets: Target[], depsOf: Map<string, string[]>): string[] {
  const state = new Map<string, 1 | 2>();
  const order: string[] = [];
  const names: string[] = [];
  const at: number[] = [];
  for (const t of targets) {
    if (state.has(t.name)) continue;
    // Iterative DFS: graphs of 100k targets would overflow the stack. Names and the position in
    // each one's dependencies on two stacks: no pair allocated per target.
    names.push(t.name);
    at.push(0);
    state.set(t.name, 1);
    while (names.length) {
      const top = names.length - 1;
      const n = names[top]!;
      const ds = depsOf.get(n)!;
      if (at[top]! < ds.length) {
        const d = ds[at[top]!++]!;
        const st = state.get(d);
        if (st === 1) {
          const cyc = [...names.slice(names.indexOf(d)), d];
          throw new DeclarationError({ target: d, field: 'inputs/deps', message: `dependency cycle: ${cyc.join(' -> ')}`, hint: 'break the cycle by removing one of these links' });
        }
        if (st === undefined) {
          state.set(d, 1);
          names.push(d);
          at.push(0);
        }
      } else {
        state.set(n, 2);
        order.push(n);
        names.pop();
        at.pop();
      }
    }
  }
  return order;
}

/**
 * The goals' targets that do work (not aliases), in dependency order. A list, not a generator:
 * 100,000 steps of one cost ~50 ms where the build's stat prefetch walks them.
 */
export function goalTargets(g: Graph, closure: Set<string>): Target[] {
  const whole = closure.size === g.targets.length;
  const out: Target[] = [];
  for (const name of g.order) {
    if (!whole && !closure.has(name)) continue;
    const t = g.byName.get(name)!;
    if (!t.alias) out.push(t);
  }
  return out;
}

/**
 * Goals → the set of targets to consider (goals and everything they depend on).
 * A goal is a target name, an output path, or a glob over target names.
 */
export function resolveGoals(graph: Graph, goals: string[]): { goals: string[]; closure: Set<string> } {
  let roots: string[];
  if (goals.length === 0) roots = graph.byName.has('default') ? ['default'] : graph.targets.map((t) => t.name);
  else {
    roots = [];
    const errors: Diagnostic[] = [];
    for (const g of goals) {
      if (graph.byName.has(g)) { roots.push(g); continue; }
      const norm = g.replace(/^\.\//, '');
      const prod = graph.byName.get(norm) ?? graph.producerOf(norm);
      if (prod) { roots.push(prod.name); continue; }
      if (isGlob(g)) {
        const m = picomatch(g);
        const hits = graph.targets.filter((t) => m(t.name)).map((t) => t.name);
        if (hits.length) { roots.push(...hits); continue; }
      }
      errors.push({ field: 'goal', message: `unknown goal '${g}'`, hint: closest(g, [...graph.byName.keys()]) ?? 'run with --list to see the targets' });
    }
    if (errors.length) throw new DeclarationError(errors);
  }
  // Every target (a build with no goal and no `default`): the closure is the whole graph.
  if (goals.length === 0 && roots.length === graph.targets.length) return { goals: roots, closure: new Set(graph.order) };
  const closure = new Set<string>();
  const stack = [...roots];
  while (stack.length) {
    const n = stack.pop()!;
    if (closure.has(n)) continue;
    closure.add(n);
    for (const d of graph.depsOf.get(n)!) stack.push(d);
  }
  return { goals: roots, closure };
}

/** "did you mean" for unknown names: the nearest few by edit distance or shared substring. */
export function closest(name: string, candidates: string[]): string | undefined {
  const scored = candidates
    .map((c) => ({ c, d: c.includes(name) || name.includes(c) ? 0.5 : editDistance(name, c) }))
    .sort((a, b) => a.d - b.d)
    .filter((x) => x.d <= Math.max(3, name.length / 2))
    .slice(0, 3);
  return scored.length ? `did you mean ${scored.map((x) => `'${x.c}'`).join(', ')}?` : undefined;
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 10) return 99;
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}
