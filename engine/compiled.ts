// Which copy of the engine a build runs: the compiled bundle under dist/engine (written by
// `npm run bundle`, which `npm install` and `npm ci` run as `prepare`) when it was compiled from
// exactly the sources on disk, else the TypeScript sources themselves. Loading ~40 modules through
// tsx's loader costs ~100 ms of every build, no-ops included; the bundle is one file of plain
// JavaScript, evaluated in ~10 ms. The check reads and hashes every source the bundle was made
// from (~1 ms), so an edited engine file is never shadowed by a stale bundle, whatever the
// timestamps say.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import vm from 'node:vm';

export const BUNDLE_DIR = 'dist/engine';
export const MANIFEST = 'manifest.json';

export interface BundleManifest {
  /** Source path (relative to the project) → sha256 of its bytes when the bundle was compiled. */
  sources: Record<string, string>;
  entry: string;
}

/** Path of the compiled command line when it matches the sources under `project`, else undefined (and why). */
export function compiledEngine(project: string): { file?: string; why?: string } {
  if (process.env.HUBMAKE_SOURCES) return { why: 'HUBMAKE_SOURCES is set' };
  const dir = path.join(project, BUNDLE_DIR);
  let m: BundleManifest;
  try {
    m = JSON.parse(fs.readFileSync(path.join(dir, MANIFEST), 'utf8')) as BundleManifest;
  } catch {
    return { why: `no compiled engine in ${BUNDLE_DIR} (npm run bundle writes it)` };
  }
  for (const [rel, sum] of Object.entries(m.sources ?? {})) {
    let now: string;
    try {
      now = crypto.createHash('sha256').update(fs.readFileSync(path.join(project, rel))).digest('hex');
    } catch {
      return { why: `${rel} is gone since the engine was compiled` };
    }
    if (now !== sum) return { why: `${rel} changed since the engine was compiled (npm run bundle)` };
  }
  return { file: path.join(dir, m.entry) };
}

type Cli = typeof import('./cli.ts');

/**
 * Evaluates the compiled command line, a CommonJS file, as Node's own loader would, but without
 * tsx's: tsx transforms every file `require()` loads (~90 ms for the bundle) and sends every ESM
 * import through its loader thread (~35 ms for an ESM bundle's chunks and built-ins), although
 * plain JavaScript needs neither. `import()` inside it (the targets module, which may be
 * TypeScript) still goes through the main loader, tsx's hooks included.
 */
export function loadCompiled(file: string): Cli {
  // The bundle's import() sites (engine/dynamic-import.ts) resolve from this module, inside the
  // engine as the sources' own import() does.
  return evaluateCommonJs<Cli>(file, { __hubmake_import: (specifier: string) => import(specifier) });
}

/** A CommonJS file of plain JavaScript, evaluated without tsx's require hook (see loadCompiled). */
export function evaluateCommonJs<T>(file: string, extra: Record<string, unknown> = {}): T {
  const fn = vm.compileFunction(fs.readFileSync(file, 'utf8'), ['exports', 'require', 'module', '__filename', '__dirname', ...Object.keys(extra)], { filename: file });
  const mod = { exports: {} as T };
  fn.call(mod.exports, mod.exports, createRequire(file), mod, file, path.dirname(file), ...Object.values(extra));
  return mod.exports;
}
