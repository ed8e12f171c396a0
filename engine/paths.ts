// Every path a spec declares is relative to the root. These helpers are the one place that
// decides whether a declared path is acceptable, so that no target can write outside the root.
import fs from 'node:fs';
import path from 'node:path';

/** Normalises a root-relative path (posix separators, no `./`), keeping a trailing `/` for directories. */
export function normalizeRel(p: string): string {
  // Most declared paths are already normal: checking costs a regex, normalising a path.posix call
  // and a string per path (100,000 of each in a no-op build of 100,000 targets).
  if (p !== '' && !NEEDS_NORMALIZING.test(p)) return p;
  const isDir = p.endsWith('/');
  let n = path.posix.normalize(p.replace(/\\/g, '/'));
  if (n.startsWith('./')) n = n.slice(2);
  if (n.endsWith('/')) n = n.slice(0, -1);
  return isDir && n !== '.' ? `${n}/` : n;
}

/** Backslashes, `//`, or a `.`/`..` segment: anything path.posix.normalize would change. */
const NEEDS_NORMALIZING = /\\|\/\/|(?:^|\/)\.{1,2}(?:\/|$)/;

/** Entries of one directory asked about after which it is listed once instead of lstat-ed one by one. */
const LIST_AFTER = 64;

/**
 * realpath with a memo of the directories already resolved, for one validation pass: a path that
 * exists and is no symlink resolves to its parent's real path plus its name, so 100,000 outputs in
 * a few directories cost one lstat each instead of a realpath each (which measured ~0.25 ms per
 * target, most of a no-op build at 10,000 targets; bench/scale.ts).
 */
export class RealPaths {
  private readonly memo = new Map<string, string>();
  private readonly lstats = new Map<string, fs.Stats | undefined>();

  private lstat(p: string): fs.Stats | undefined {
    if (this.lstats.has(p)) return this.lstats.get(p);
    const st = lstatOrMissing(p);
    this.lstats.set(p, st);
    return st;
  }

  /** fs.existsSync, with one lstat for the usual case of a path that is no symlink. */
  exists(p: string): boolean {
    const st = this.lstat(p);
    if (!st) return false;
    return st.isSymbolicLink() ? fs.existsSync(p) : true;
  }

  /** Where a dangling symlink points (resolved against its directory), else undefined. */
  danglingTarget(p: string): string | undefined {
    const st = this.lstat(p);
    if (!st?.isSymbolicLink() || fs.existsSync(p)) return undefined;
    return path.resolve(path.dirname(p), fs.readlinkSync(p));
  }

  of(p: string): string {
    const hit = this.memo.get(p);
    if (hit !== undefined) return hit;
    const parent = path.dirname(p);
    const st = parent === p ? undefined : this.lstat(p);
    const real = st && !st.isSymbolicLink() ? path.join(this.of(parent), path.basename(p)) : realpathOr(p);
    this.memo.set(p, real);
    return real;
  }
}

/**
 * Where the build may write, for one validation pass: escapesRoot's answer, computed once per
 * directory. An output in a directory that exists and resolves inside the root is safe unless the
 * output itself is a symlink; only such outputs (and those in missing directories) take the full
 * walk. 10,000 outputs in one directory cost one realpath and one listing.
 */
export class WriteGuard {
  private readonly dirs = new Map<string, boolean>();
  private readonly links = new Map<string, number | Set<string>>();
  private realRoot: string | undefined;
  constructor(private readonly root: string, private readonly realPaths: RealPaths = new RealPaths()) {}

  /** Why `rel` (normalised) may not be written, or undefined when it may. */
  check(rel: string): string | undefined {
    if (rel === '' || rel === '.' || rel === './' || rel.startsWith('/') || rel === '..' || rel.startsWith('../')) return escapesRoot(this.root, rel, this.realPaths);
    const n = rel.endsWith('/') ? rel.slice(0, -1) : rel;
    const slash = n.lastIndexOf('/');
    const dir = slash < 0 ? '' : n.slice(0, slash);
    if (this.safeDir(dir)) {
      let link = true;
      try {
        link = this.isLink(dir, slash < 0 ? n : n.slice(slash + 1));
      } catch { /* ENAMETOOLONG, EACCES...: the full walk names it */ }
      if (!link) return undefined;
    }
    return escapesRoot(this.root, rel, this.realPaths);
  }

  /**
   * Whether one entry of a directory is a symlink: the first few are lstat-ed; after that the
   * directory is listed once and only its symlinks are kept (a list of 100,000 outputs is then
   * answered by a lookup in an empty set). An entry created after the listing is looked at as
   * any path written after validation would be: when its target runs.
   */
  private isLink(dir: string, name: string): boolean {
    const abs = dir === '' ? this.root : `${this.root}/${dir}`;
    let seen = this.links.get(dir) ?? 0;
    if (typeof seen === 'number') {
      if (seen < LIST_AFTER) {
        this.links.set(dir, seen + 1);
        return lstatOrMissing(`${abs}/${name}`)?.isSymbolicLink() ?? false;
      }
      const links = new Set<string>();
      for (const d of fs.readdirSync(abs, { withFileTypes: true })) if (d.isSymbolicLink()) links.add(d.name);
      this.links.set(dir, (seen = links));
    }
    return seen.has(name);
  }

  /** The directory exists, is a directory, and its real path lies inside the root's. */
  private safeDir(dir: string): boolean {
    let ok = this.dirs.get(dir);
    if (ok !== undefined) return ok;
    ok = false;
    try {
      const abs = dir === '' ? this.root : `${this.root}/${dir}`;
      if (fs.statSync(abs, { throwIfNoEntry: false })?.isDirectory()) {
        this.realRoot ??= this.realPaths.of(this.root);
        const real = fs.realpathSync(abs);
        ok = real === this.realRoot || real.startsWith(this.realRoot + path.sep);
      }
    } catch { /* unreadable: the full walk names why */ }
    this.dirs.set(dir, ok);
    return ok;
  }
}

/** Why a path may not be written by the build, or undefined when it may. */
export function escapesRoot(root: string, rel: string, realPaths: RealPaths = new RealPaths(), depth = 0): string | undefined {
  try {
    return whyOutside(root, rel, realPaths, depth);
  } catch (e) {
    // ENAMETOOLONG, ELOOP, EACCES...: a path that cannot even be looked at cannot be written either.
    return `cannot be checked: ${(e as Error).message}`;
  }
}

function whyOutside(root: string, rel: string, realPaths: RealPaths, depth: number): string | undefined {
  if (rel === '' || rel === '.' || rel === './') return 'is the root directory itself';
  if (path.isAbsolute(rel)) return 'is absolute; declare paths relative to the root';
  const n = normalizeRel(rel);
  if (n === '..' || n.startsWith('../')) return 'escapes the root with ..';
  // A symlink on the way may point outside: resolve the longest existing prefix.
  const full = path.join(root, n.replace(/\/$/, ''));
  let probe = full;
  let below: string | undefined;
  const realRoot = realPaths.of(root);
  while (!realPaths.exists(probe) && probe.length > root.length) {
    below = probe;
    probe = path.dirname(probe);
  }
  const real = realPaths.of(probe);
  if (real !== realRoot && !real.startsWith(realRoot + path.sep)) return `resolves outside the root through a symlink (${real})`;
  // A dangling symlink is written through (`echo > link` creates the file it points to): judge
  // where it points. Only the first missing component can be one.
  const target = below === undefined ? undefined : realPaths.danglingTarget(below);
  if (target !== undefined) {
    const via = path.join(target, path.relative(below!, full));
    const inside = [root, realRoot].find((r) => via.startsWith(r + path.sep));
    if (inside === undefined || depth > 40) return `is written through a dangling symlink to ${target}, outside the root`;
    return escapesRoot(root, path.relative(inside, via), realPaths, depth + 1);
  }
  return undefined;
}

/** lstat; a path below a regular file (ENOTDIR) does not exist either (writing it fails later, named). */
function lstatOrMissing(p: string): fs.Stats | undefined {
  try {
    return fs.lstatSync(p, { throwIfNoEntry: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
    throw e;
  }
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
