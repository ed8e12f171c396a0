// Every path a spec declares is relative to the root. These helpers are the one place that
// decides whether a declared path is acceptable, so that no target can write outside the root.
import fs from 'node:fs';
import path from 'node:path';

/** Normalises a root-relative path (posix separators, no `./`), keeping a trailing `/` for directories. */
export function normalizeRel(p: string): string {
  const isDir = p.endsWith('/');
  let n = path.posix.normalize(p.replace(/\\/g, '/'));
  if (n.startsWith('./')) n = n.slice(2);
  if (n.endsWith('/')) n = n.slice(0, -1);
  return isDir && n !== '.' ? `${n}/` : n;
}

/** Why a path may not be written by the build, or undefined when it may. */
export function escapesRoot(root: string, rel: string): string | undefined {
  if (rel === '' || rel === '.' || rel === './') return 'is the root directory itself';
  if (path.isAbsolute(rel)) return 'is absolute; declare paths relative to the root';
  const n = normalizeRel(rel);
  if (n === '..' || n.startsWith('../')) return 'escapes the root with ..';
  // A symlink on the way may point outside: resolve the longest existing prefix.
  let probe = path.join(root, n.replace(/\/$/, ''));
  const realRoot = realpathOr(root);
  while (!fs.existsSync(probe) && probe.length > root.length) probe = path.dirname(probe);
  const real = realpathOr(probe);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return `resolves outside the root through a symlink (${real})`;
  return undefined;
}

function realpathOr(p: string): string {
  try {
    return fs.realpathSync(p);
  } catch {
    return path.resolve(p);
  }
}

export function stripSlash(p: string): string {
  return p.endsWith('/') ? p.slice(0, -1) : p;
}
