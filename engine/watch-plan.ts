// What watch mode watches and what a changed path means, decided from the graph alone (pure but
// for one stat per directory input): every input of the goals' targets that no target produces,
// the targets module's local import graph, and the configuration beside it. Outputs and logs
// never count as changes, so a build can never trigger itself.
import fs from 'node:fs';
import path from 'node:path';
import picomatch from 'picomatch';
import type { Graph } from './graph.ts';
import { stripSlash } from './paths.ts';
import { isGlob } from './spec.ts';
import { STATE_DIR } from './state.ts';
import type { WatchRoot } from './dirwatch.ts';

/**
 * Configuration files watched besides the targets module's imports: JSON files at the root named
 * `*.config.json` (hub.config.json). A module reading other files declares them with --watch-extra.
 */
export const CONFIG_GLOB = '*.config.json';

/** Quiet period after a change before building: long enough for an editor's save (write, rename). */
export { DEFAULT_DEBOUNCE_MS } from './cli.ts';

export interface WatchPlan {
  roots: WatchRoot[];
  /** Literal files watched (inputs, module files, configuration). */
  files: number;
  /** What a changed path means: targets whose inputs it touches, and whether the graph must be reloaded. */
  classify(rel: string): { targets: string[]; reload: boolean } | undefined;
  skipDir(abs: string): boolean;
}

type Matcher = (p: string) => boolean;

/** The base directory of a glob and how deep below it a match can lie (Infinity with `**`). */
export function globReach(pattern: string): { base: string; depth: number } {
  const scan = picomatch.scan(pattern);
  const rest = scan.glob.split('/').filter(Boolean);
  const depth = rest.some((s) => s.includes('**')) ? Infinity : Math.max(0, rest.length - 1);
  return { base: scan.base, depth };
}

export function planWatch(root: string, graph: Graph, closure: Set<string>, moduleFiles: string[], extras: string[]): WatchPlan {
  const roots: WatchRoot[] = [];
  const literal = new Map<string, string[]>(); // file path → targets reading it
  const dirs: Array<{ prefix: string; target: string }> = [];
  const globs: Array<{ match: Matcher; target: string }> = [];
  const reloadFiles = new Set<string>();
  const reloadGlobs: Matcher[] = [picomatch(CONFIG_GLOB)];
  const abs = (rel: string) => path.join(root, rel);
  const watchFile = (rel: string) => roots.push({ dir: path.dirname(abs(rel)), depth: 0 });
  const watchGlob = (pattern: string) => {
    const r = globReach(pattern);
    roots.push({ dir: abs(r.base || '.'), depth: r.depth });
  };

  for (const name of closure) {
    const t = graph.byName.get(name)!;
    for (const inp of t.inputs) {
      if (isGlob(inp)) {
        // Same options as the glob's expansion when hashing, so a watched match is a hashed one.
        globs.push({ match: picomatch(inp, { dot: false }), target: name });
        watchGlob(inp);
        continue;
      }
      const key = stripSlash(inp);
      const prod = graph.producerOf(key);
      let dir = inp.endsWith('/');
      if (!dir) {
        try {
          dir = fs.statSync(abs(key)).isDirectory();
        } catch { /* missing: produced by a target */ }
      }
      if (dir) {
        // A directory input: its whole tree, less what targets write inside it.
        if (prod) continue; // a directory output, or inside one
        dirs.push({ prefix: key, target: name });
        roots.push({ dir: abs(key), depth: Infinity });
      } else if (!prod) {
        const list = literal.get(key);
        if (list) list.push(name);
        else literal.set(key, [name]);
        watchFile(key);
      }
    }
  }
  for (const f of moduleFiles) {
    const rel = toRel(root, f);
    reloadFiles.add(rel);
    roots.push({ dir: path.dirname(f), depth: 0 });
  }
  roots.push({ dir: root, depth: 0 }); // root-level configuration
  for (const x of extras) {
    const p = x.replace(/^\.\//, '');
    if (isGlob(p)) {
      reloadGlobs.push(picomatch(p, { dot: false }));
      watchGlob(p);
    } else {
      reloadFiles.add(stripSlash(p));
      watchFile(stripSlash(p));
    }
  }

  const logs = new Set(graph.targets.flatMap((t) => (t.log ? [t.log] : [])));
  /** Written by the build: an output, a log, or the temp file of an atomic write of one. */
  const written = (rel: string): boolean => {
    if (graph.producerOf(rel) || logs.has(rel)) return true;
    const tmp = /^(.*)\.tmp-\d+-[a-z0-9]+$/.exec(rel);
    return !!tmp && (!!graph.producerOf(tmp[1]!) || logs.has(tmp[1]!));
  };
  const internal = (rel: string) => rel === STATE_DIR || rel.startsWith(`${STATE_DIR}/`) || /(^|\/)(node_modules|\.git)(\/|$)/.test(rel);

  return {
    roots,
    files: literal.size + reloadFiles.size,
    classify(rel) {
      if (internal(rel)) return undefined;
      const reload = reloadFiles.has(rel) || reloadGlobs.some((m) => m(rel));
      const targets = new Set<string>();
      if (!written(rel)) {
        for (const n of literal.get(rel) ?? []) targets.add(n);
        for (const d of dirs) if (rel === d.prefix || rel.startsWith(d.prefix + '/')) targets.add(d.target);
        for (const g of globs) if (g.match(rel)) targets.add(g.target);
      }
      if (!reload && targets.size === 0) return undefined;
      return { targets: [...targets], reload };
    },
    skipDir(a) {
      const rel = toRel(root, a);
      if (rel === '' || rel.startsWith('..')) return false;
      if (internal(rel)) return true;
      // A directory output, or a directory inside one: everything in it is written by the build.
      const prod = graph.producerOf(rel);
      return !!prod && prod.outputs.some((o) => o.endsWith('/') && (rel === stripSlash(o) || rel.startsWith(o)));
    },
  };
}

/**
 * The targets a build after these changes must consider: the dirty ones (inputs changed) and
 * everything in the goals downstream of them, plus, upstream of those, every target whose last
 * outcome in this session was not a success (failed, blocked, not started), so that nothing runs
 * on top of a dependency that is not up to date. Targets outside this set are known to be fresh.
 */
export function staleScope(graph: Graph, closure: Set<string>, dirty: Iterable<string>, notOk: Set<string>): Set<string> {
  const scope = new Set<string>();
  const down = [...dirty].filter((n) => closure.has(n));
  while (down.length) {
    const n = down.pop()!;
    if (scope.has(n)) continue;
    scope.add(n);
    for (const d of graph.dependentsOf.get(n) ?? []) if (closure.has(d)) down.push(d);
  }
  const up = [...scope];
  while (up.length) {
    const n = up.pop()!;
    for (const d of graph.depsOf.get(n) ?? []) {
      if (!closure.has(d) || scope.has(d) || !notOk.has(d)) continue;
      scope.add(d);
      up.push(d);
    }
  }
  return scope;
}

function toRel(root: string, abs: string): string {
  return path.relative(root, abs).split(path.sep).join('/');
}
