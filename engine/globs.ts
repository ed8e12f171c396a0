// fast-glob and picomatch, loaded on first use. Most graphs declare no glob and no directory
// input, and loading the two packages (CommonJS, through the ES module loader) measured ~110 ms
// of a 10,000-target no-op: a build that never matches a pattern does not pay for them.
import { createRequire } from 'node:module';
import type FastGlob from 'fast-glob';
import type Picomatch from 'picomatch';

const require = createRequire(import.meta.url);
let fg: typeof FastGlob | undefined;
let pm: typeof Picomatch | undefined;

export function fastGlob(): typeof FastGlob {
  return (fg ??= require('fast-glob') as typeof FastGlob);
}

export function picomatch(pattern: string, options?: Picomatch.PicomatchOptions): Picomatch.Matcher {
  pm ??= require('picomatch') as typeof Picomatch;
  return pm(pattern, options);
}
