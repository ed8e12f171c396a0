// The engine's C helpers (engine/*.c), compiled by `npm install` / `npm ci` (scripts/bundle.mjs)
// into dist/engine when a C compiler is there. Each has a JavaScript path that does the same job,
// so a machine without a compiler builds the same, only slower.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';

const found = new Map<string, string | undefined>();

/**
 * The compiled helper `name` (dist/engine/<name>), built from engine/<source>, when its recorded
 * source sha256 is the source's now: a binary compiled from another version of the source may speak
 * another protocol. Undefined when it is not built here. Looked up once per process.
 */
export function nativeProgram(name: string, source: string): string | undefined {
  if (found.has(name)) return found.get(name);
  let hit: string | undefined;
  // From the sources this module is engine/native.ts; from the bundle, dist/engine/cli.cjs.
  for (const [bin, src] of [[`../dist/engine/${name}`, `./${source}`], [`./${name}`, `../../engine/${source}`]] as const) {
    try {
      const binPath = fileURLToPath(new URL(bin, import.meta.url));
      fs.accessSync(binPath, fs.constants.X_OK);
      const built = fs.readFileSync(`${binPath}.source-sha256`, 'utf8').trim();
      const now = createHash('sha256').update(fs.readFileSync(fileURLToPath(new URL(src, import.meta.url)))).digest('hex');
      if (built === now) {
        hit = binPath;
        break;
      }
    } catch { /* not built here (no C compiler at install), or not this layout */ }
  }
  found.set(name, hit);
  return hit;
}
