// Watching directories, not files: one fs.watch (one inotify watch) per directory, whose events
// name the entry that changed. A directory of 100,000 data files costs one watch, where chokidar 5
// opens one per file (measured: 100,101 watches, 16 s to get ready, 815 MB; see docs/watch.md).
// Which directories to watch, and how deep, comes from the watch plan; this module only keeps the
// watches in step with the tree (new subdirectories are watched, removed ones are let go) and
// reports every path that changed. It decides nothing about what a change means.
import fs from 'node:fs';
import path from 'node:path';

export interface WatchRoot {
  /** Absolute directory. It need not exist yet: its nearest existing ancestor is watched until it appears. */
  dir: string;
  /** Levels below `dir` to watch: 0 for its own entries only, Infinity for the whole tree. */
  depth: number;
}

export class DirWatcher {
  private readonly watchers = new Map<string, fs.FSWatcher>();
  private readonly rootList: WatchRoot[];
  private closed = false;
  private ready = false;

  /**
   * @param top      directory above which nothing is watched (the build root)
   * @param roots    directories to watch and how deep
   * @param skipDir  directories never entered (node_modules, state, output directories)
   * @param onPath   an absolute path that was created, changed or removed
   */
  constructor(
    private readonly top: string,
    roots: WatchRoot[],
    private readonly skipDir: (abs: string) => boolean,
    private readonly onPath: (abs: string) => void,
    /** A directory that could not be watched (e.g. ENOSPC: the inotify watch limit), once per directory. */
    private readonly onError: (abs: string, e: Error) => void = () => {},
  ) {
    // One root per directory, with the deepest depth asked for.
    const byDir = new Map<string, number>();
    for (const r of roots) byDir.set(r.dir, Math.max(byDir.get(r.dir) ?? -1, r.depth));
    this.rootList = [...byDir].map(([dir, depth]) => ({ dir, depth }));
  }

  /** Number of distinct watch roots (directories asked for). */
  get roots(): number {
    return this.rootList.length;
  }

  /** Number of directories watched now. */
  get count(): number {
    return this.watchers.size;
  }

  start(): void {
    // One walk from the top reaches every root inside it, watching the directories on the way
    // for their own entries only, so a root that does not exist yet (a glob's base before its
    // first file) or is removed and made again is found when it appears.
    this.walk(this.top, false);
    for (const r of this.rootList) if (r.dir !== this.top && !inside(this.top, r.dir)) this.walk(r.dir, false);
    this.ready = true;
  }

  close(): void {
    this.closed = true;
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
  }

  /**
   * How much of a directory is wanted: `depth`, the levels left below it when it lies within a
   * root's reach; `onPath`, when it leads to a root. Neither: not watched.
   */
  private want(dir: string): { depth: number | undefined; onPath: boolean } | undefined {
    let depth: number | undefined;
    let onPath = false;
    for (const r of this.rootList) {
      if (dir === r.dir) depth = Math.max(depth ?? 0, r.depth);
      else if (inside(r.dir, dir)) {
        const level = path.relative(r.dir, dir).split(path.sep).length;
        if (level <= r.depth) depth = Math.max(depth ?? 0, r.depth - level);
      } else if (inside(dir, r.dir) && (dir === this.top || inside(this.top, dir))) onPath = true;
    }
    return depth === undefined && !onPath ? undefined : { depth, onPath };
  }

  /** Watches a directory and the subdirectories it wants; reports the files found when `report`. */
  private walk(start: string, report: boolean): void {
    const stack = [start];
    while (stack.length) {
      const dir = stack.pop()!;
      if (this.closed || this.watchers.has(dir) || this.skipDir(dir)) continue;
      const w = this.want(dir);
      if (w === undefined) continue;
      let entries: fs.Dirent[];
      try {
        entries = fs.readdirSync(dir, { withFileTypes: true });
      } catch {
        continue; // gone already, or unreadable
      }
      if (!this.add(dir)) continue;
      for (const e of entries) {
        const abs = path.join(dir, e.name);
        if (e.isDirectory()) {
          // Within reach, or (on the way to a root) the next step towards it.
          if ((w.depth !== undefined && w.depth > 0) || this.want(abs) !== undefined) stack.push(abs);
        } else if (report && w.depth !== undefined) this.onPath(abs);
      }
    }
  }

  private add(dir: string): boolean {
    let w: fs.FSWatcher;
    try {
      w = fs.watch(dir, { persistent: true }, (event, name) => this.changed(dir, event, name));
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code !== 'ENOENT') this.onError(dir, err);
      return false;
    }
    // A watched directory that disappears ends its watch with an error on some systems.
    w.on('error', () => this.forget(dir));
    this.watchers.set(dir, w);
    return true;
  }

  private changed(dir: string, event: string, name: string | Buffer | null): void {
    if (this.closed) return;
    if (name === null) {
      this.onPath(dir);
      return;
    }
    const abs = path.join(dir, name.toString());
    if (event === 'rename') {
      // Created, removed or moved: follow new directories, let go of removed ones.
      if (isDir(abs)) {
        if (!this.watchers.has(abs) && this.ready) this.walk(abs, true);
      } else if (this.watchers.has(abs)) this.forget(abs); // only a watched directory has watches below it
    }
    if (this.want(dir)?.depth === undefined && this.want(abs) === undefined) return; // off the way to any root
    this.onPath(abs);
  }

  /** Stops watching a directory that is gone, and everything below it. */
  private forget(dir: string): void {
    for (const [d, w] of this.watchers) {
      if (d === dir || inside(dir, d)) {
        w.close();
        this.watchers.delete(d);
      }
    }
  }
}

function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

/** Whether `p` lies strictly inside directory `dir`. */
function inside(dir: string, p: string): boolean {
  return p.length > dir.length && p.startsWith(dir) && (p[dir.length] === path.sep || dir.endsWith(path.sep));
}
