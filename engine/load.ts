// Loading a targets module: import it, call it if it exports a function, validate the specs and
// build the graph. Any failure here is a declaration error (exit 2) and nothing touches the disk.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';
import { dynamicImport } from './dynamic-import.ts';
import { DeclarationError } from './errors.ts';
import { buildGraph, type Graph } from './graph.ts';
import { validateSpecs } from './spec.ts';
import type { TargetsContext } from './types.ts';

export interface Loaded {
  graph: Graph;
  /** Hash of the module and the local modules it imports (part of every action's identity). */
  moduleHash: string;
  /** Local module files the targets module depends on (watch mode watches them). */
  moduleFiles: string[];
}

/** A targets module imported and its export evaluated, not yet validated. */
export interface Imported extends Omit<Loaded, 'graph'> {
  /** The specs as the module gave them (not kept once validated: the targets hold what counts). */
  specs: unknown;
}

export async function loadTargets(root: string, file: string, opts: { fresh?: boolean; defines?: Record<string, string> } = {}): Promise<Loaded> {
  return validateImported(root, await importTargets(root, file, opts));
}

/** Targets modules this process has imported: how often, and under which URL last (Node's module cache is the process's too). */
const imported = new Map<string, { count: number; latest: string }>();

/** Validates the specs and builds the graph (declaration errors: exit 2). */
export function validateImported(root: string, imported: Imported): Loaded {
  const targets = validateSpecs(imported.specs, root);
  return { graph: buildGraph(targets, root), moduleHash: imported.moduleHash, moduleFiles: imported.moduleFiles };
}

/** Imports the module and evaluates its export; validation is left to validateImported. */
export async function importTargets(root: string, file: string, opts: { fresh?: boolean; defines?: Record<string, string>; watch?: ModuleWatch } = {}): Promise<Imported> {
  const abs = path.resolve(root, file);
  if (!fs.existsSync(abs)) {
    throw new DeclarationError({ field: '--file', message: `targets module '${file}' does not exist in ${root}`, hint: 'create targets/index.ts or pass -f <module>' });
  }
  let mod: { default?: unknown };
  try {
    const url = pathToFileURL(abs).href;
    if (opts.fresh) {
      // Watch mode needs the whole local graph fresh, not only the entry: Node caches ES modules
      // by URL, and a `?v=` query on the entry re-evaluates the entry alone. tsx's tsImport loads
      // through a new loader namespace each call, so every module the entry imports is read and
      // evaluated again (each namespace stays registered; a watch session reloads rarely).
      const { tsImport } = (await dynamicImport('tsx/esm/api')) as typeof import('tsx/esm/api');
      // Where no "type": "module" applies, tsx loads .ts files as CommonJS, whose cache is by file
      // name whatever the namespace: let go of the root's own modules so they are read again.
      const cache = createRequire(import.meta.url).cache;
      for (const k of Object.keys(cache)) {
        const f = k.split('?')[0]!;
        if (f.startsWith(path.resolve(root) + path.sep) && !f.includes(`${path.sep}node_modules${path.sep}`)) delete cache[k];
      }
      mod = (await tsImport(url, { parentURL: import.meta.url })) as { default?: unknown };
      // A module that tsx loads as CommonJS (no "type": "module" above it) comes back wrapped.
      const inner = mod.default as { default?: unknown; __esModule?: boolean } | undefined;
      if (inner && typeof inner === 'object' && !Array.isArray(inner) && 'default' in inner) mod = inner;
    } else {
      // Watched (engine/module-watch.ts) in a process that imported this module before (main()
      // called again, as tests do): Node would hand back the evaluated module, whose loading the
      // watch cannot see, and no record could be made. An ES module entry is evaluated again under
      // a new URL instead (what it imports is still cached, and a record then refused for it; a
      // CommonJS one comes from require.cache whatever the URL, and is refused too). An unwatched
      // import takes the latest evaluation, the one a standing record was made from.
      const seen = imported.get(url);
      const at = opts.watch && seen !== undefined ? `${url}?hubmake-record=${seen.count}` : seen?.latest ?? url;
      imported.set(url, { count: (seen?.count ?? 0) + 1, latest: at });
      mod = (await dynamicImport(at)) as { default?: unknown };
    }
  } catch (e) {
    const err = e as Error;
    throw new DeclarationError({ field: '--file', message: `targets module '${file}' failed to load: ${firstLines(err)}`, hint: 'fix the error in the module (or the configuration it reads) and build again' });
  }
  let exported = mod.default;
  if (typeof exported === 'function') {
    try {
      const ctx: TargetsContext = { root, defines: { ...(opts.defines ?? {}) } };
      exported = await (exported as (c: TargetsContext) => unknown)(ctx);
    } catch (e) {
      throw new DeclarationError({ field: 'default export', message: `the targets function of '${file}' threw: ${firstLines(e as Error)}`, hint: 'fix the error in the module (or the configuration it reads)' });
    }
  }
  // The engine's own reads: a module record (engine/module-record.ts) holds the files loaded.
  const probed: string[] = [];
  const { moduleFiles, moduleHash } = opts.watch ? opts.watch.unwatched(() => hashModules(root, abs, probed)) : hashModules(root, abs, probed);
  opts.watch?.hashed(moduleFiles, probed);
  return { specs: exported, moduleHash, moduleFiles };
}

/** What engine/module-record.ts needs to hear of the engine's own reads of the module's files. */
export interface ModuleWatch {
  unwatched<T>(fn: () => T): T;
  hashed(files: string[], probed: string[]): void;
}

function hashModules(root: string, abs: string, probed: string[]): { moduleFiles: string[]; moduleHash: string } {
  const moduleFiles = localModuleGraph(abs, probed);
  const h = crypto.createHash('sha256');
  for (const f of moduleFiles) {
    h.update(path.relative(root, f));
    h.update('\0');
    h.update(fs.readFileSync(f));
  }
  return { moduleFiles, moduleHash: h.digest('hex') };
}

function firstLines(e: Error): string {
  const msg = e?.message ?? String(e);
  return msg.split('\n').slice(0, 6).join('\n');
}

const IMPORT_RE = /(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\s*\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)|import\s*['"](\.{1,2}\/[^'"]+)['"]/g;

/** The targets module and every local file it imports, transitively (relative imports only). */
export function localModuleGraph(entry: string, probed: string[] = []): string[] {
  const seen = new Set<string>();
  const stack = [entry];
  while (stack.length) {
    const f = stack.pop()!;
    if (seen.has(f)) continue;
    seen.add(f);
    let src: string;
    try {
      src = fs.readFileSync(f, 'utf8');
    } catch {
      continue;
    }
    for (const m of src.matchAll(IMPORT_RE)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec) continue;
      const resolved = resolveLocal(path.dirname(f), spec, probed);
      if (resolved && !resolved.includes(`${path.sep}node_modules${path.sep}`)) stack.push(resolved);
    }
  }
  return [...seen].sort();
}

/** `probed`: every path looked at, up to the one found. */
function resolveLocal(dir: string, spec: string, probed: string[]): string | undefined {
  const base = path.resolve(dir, spec);
  const candidates = [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, `${base}.js`, path.join(base, 'index.ts'), path.join(base, 'index.js')];
  return candidates.find((c) => {
    probed.push(c);
    return fs.existsSync(c) && fs.statSync(c).isFile();
  });
}
