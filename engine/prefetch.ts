// Stats taken ahead, on a worker thread, while the main thread reads the build state.
//
// A build that decides 100,000 targets stats 110,000 files: ~0.5 s of its main thread, plus the
// garbage of as many BigIntStats. A worker thread stats them in the order the rebuilder will ask,
// into shared memory, while the main thread parses the state log and the stat cache; the rebuilder
// then takes each file's stat from there (or stats it itself when the worker is not there yet).
//
// A stat taken ahead is only as good as one taken when asked if nothing was written in between.
// So the builder drops them all when it first runs or restores anything: from then on a command
// may have written any file, declared or not, and every stat is taken fresh, as without this
// module. (Before that, the hasher's memo asks for each path once.)
import { Worker } from 'node:worker_threads';
import { isNormalRel, type FileStat } from './disk.ts';
import { goalTargets, type Graph } from './graph.ts';
import { isGlob } from './spec.ts';

/** Below this many paths, starting a thread (~50 ms to its first stat) costs more than it saves. */
export const PREFETCH_MIN_PATHS = 20_000;

/** Fields per path in the shared array: kind, dev, ino, size, mtimeNs, ctimeNs. */
const F = 6;
/** kind: not stat'ed (an error, e.g. a symlink loop: the main thread stats it and reports it). */
const ERROR = -1n;
const ABSENT = 0n;
const FILE = 1n;
const DIR = 2n;

// CommonJS, evaluated by the worker: it needs nothing but fs, and the engine may itself be one
// bundled file with no module of its own to point a worker at.
const WORKER = `
const { workerData } = require('node:worker_threads');
const fs = require('node:fs');
const { root, list, shared, n } = workerData;
const done = new Int32Array(shared, 0, 1);
const a = new BigInt64Array(shared, 8, n * ${F});
const u = new BigUint64Array(shared, 8, n * ${F});
const paths = list.split('\\0');
for (let i = 0; i < n; i++) {
  const o = i * ${F};
  let st;
  try { st = fs.statSync(root + '/' + paths[i], { bigint: true, throwIfNoEntry: false }); } catch { st = null; }
  if (st === null) a[o] = ${ERROR}n;
  else if (st === undefined) a[o] = ${ABSENT}n;
  else {
    a[o] = st.isFile() ? ${FILE}n : st.isDirectory() ? ${DIR}n : 3n;
    // Device and inode numbers are unsigned (overlayfs and NFS give inodes of 2^63 and more);
    // times may be negative (before 1970).
    u[o + 1] = st.dev; u[o + 2] = st.ino; a[o + 3] = st.size; a[o + 4] = st.mtimeNs; a[o + 5] = st.ctimeNs;
  }
  // Published in steps: the main thread reads a path's fields only below this count.
  if ((i & 63) === 63 || i === n - 1) Atomics.store(done, 0, i + 1);
}
Atomics.notify(done, 0);
`;

export class StatPrefetch {
  private readonly index = new Map<string, number>();
  private readonly done: Int32Array;
  private readonly fields: BigInt64Array;
  private readonly unsigned: BigUint64Array;
  private readonly n: number;
  private worker: Worker | undefined;

  /**
   * Starts stat'ing the files the rebuilder will stat deciding these targets, once each, in the
   * order it reaches them: declared inputs and outputs of the goals' targets, less those known
   * fresh without a decision. Globs and directories are left to it (a match set or a tree is not
   * one stat). No thread is started for fewer than `min` files (`started` says).
   */
  constructor(root: string, g: Graph, closure: Set<string>, knownFresh: Set<string> | undefined, min = PREFETCH_MIN_PATHS) {
    const paths: string[] = [];
    const index = this.index;
    const add = (p: string) => {
      if (!index.has(p) && isNormalRel(p)) {
        index.set(p, paths.length);
        paths.push(p);
      }
    };
    if (root !== '/' && (closure.size - (knownFresh?.size ?? 0)) * 2 >= min) {
      for (const t of goalTargets(g, closure)) {
        if (knownFresh?.has(t.name)) continue;
        for (const p of t.inputs) if (!isGlob(p) && !p.endsWith('/')) add(p);
        for (const p of t.outputs) if (!p.endsWith('/')) add(p);
      }
    }
    const n = (this.n = paths.length < min ? 0 : paths.length);
    const shared = new SharedArrayBuffer(8 + n * F * 8);
    this.done = new Int32Array(shared, 0, 1);
    this.fields = new BigInt64Array(shared, 8, n * F);
    this.unsigned = new BigUint64Array(shared, 8, n * F);
    if (!n) {
      index.clear();
      return;
    }
    try {
      // execArgv: the thread needs only fs, not the loaders (tsx) the build was started with.
      this.worker = new Worker(WORKER, { eval: true, workerData: { root, list: paths.join('\0'), shared, n }, execArgv: [] });
    } catch {
      index.clear(); // no thread (a resource limit): every stat is taken when asked
      return;
    }
    // Never what keeps the build's process alive; a failed worker only means stats taken when asked.
    this.worker.unref();
    this.worker.on('error', () => this.close());
  }

  /** Whether a worker thread was started. */
  get started(): boolean {
    return this.worker !== undefined;
  }

  /**
   * Blocks until the worker has stat'ed every path (or `ms` passed). Only tests ask: a small
   * graph is decided before a thread has even started.
   */
  waitAll(ms: number): void {
    const end = Date.now() + ms;
    for (let d = Atomics.load(this.done, 0); this.worker && d < this.n && Date.now() < end; d = Atomics.load(this.done, 0)) {
      Atomics.wait(this.done, 0, d, Math.max(1, end - Date.now()));
    }
  }

  /**
   * The stat the worker took of `rel`: 'absent' when there was no file, undefined when there is
   * none to give (not asked for, not reached yet, or the stat failed).
   */
  take(rel: string): FileStat | 'absent' | undefined {
    const i = this.index.get(rel);
    if (i === undefined || i >= Atomics.load(this.done, 0)) return undefined;
    const a = this.fields;
    const o = i * F;
    const kind = a[o]!;
    if (kind === ERROR) return undefined;
    if (kind === ABSENT) return 'absent';
    const u = this.unsigned;
    return { dev: Number(u[o + 1]), ino: Number(u[o + 2]), size: Number(a[o + 3]), mtimeNs: a[o + 4]!, ctimeNs: a[o + 5]!, isDir: kind === DIR, isFile: kind === FILE };
  }

  close(): void {
    this.index.clear();
    void this.worker?.terminate();
    this.worker = undefined;
  }
}
