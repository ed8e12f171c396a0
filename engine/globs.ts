// fast-glob and picomatch, loaded on first use. Most graphs declare no glob and no directory
// input, and loading the two packages (CommonJS, through the ES module loader) measured ~110 ms
// of a 10,000-target no-op: a build that never matches a pattern does not pay for them.
//
// Beside the compiled engine (dist/engine/cli.cjs), `npm run bundle` writes both packages as one
// file, globs.cjs, evaluated as the engine is, without tsx's require hook: through it, their ~80
// files cost ~30 ms of every build with a glob (the hub's no-op: ~95 → ~65 ms of engine). The
// sources, and a compiled engine without that file, load them from node_modules.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type FastGlob from 'fast-glob';
import type Picomatch from 'picomatch';
import { evaluateCommonJs } from './compiled.ts';

interface Globs {
  fastGlob: typeof FastGlob;
  picomatch: typeof Picomatch;
}

/** Written by scripts/bundle.mjs next to cli.cjs. */
export const BUNDLED_GLOBS = 'globs.cjs';

let globs: Globs | undefined;

function load(): Globs {
  if (globs) return globs;
  const bundled = path.join(path.dirname(fileURLToPath(import.meta.url)), BUNDLED_GLOBS);
  if (fs.existsSync(bundled)) return (globs = evaluateCommonJs<Globs>(bundled));
  const require = createRequire(import.meta.url);
  return (globs = { fastGlob: require('fast-glob') as typeof FastGlob, picomatch: require('picomatch') as typeof Picomatch });
}

export function fastGlob(): typeof FastGlob {
  return load().fastGlob;
}

export function picomatch(pattern: string, options?: Picomatch.PicomatchOptions): Picomatch.Matcher {
  return load().picomatch(pattern, options);
}
