// Content hashes of files and directory trees, behind a stat cache: a file's hash is reused while
// (device, inode, size, mtime ns, ctime ns) are unchanged. A file whose mtime is too close to the
// moment it was hashed may be rewritten within the same timestamp tick, so such an entry is not
// trusted next time (git's "racy" problem): it is re-hashed.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { fastGlob } from './globs.ts';
import type { Disk, FileStat } from './disk.ts';
import type { StatPrefetch } from './prefetch.ts';
import { ReadAhead, readAheadPays } from './read-ahead.ts';

/** File-system timestamps advance in ticks; stay clear of one generously. */
const RACY_WINDOW_NS = 100_000_000n;

/**
 * Changed so recently (mtime or ctime within the window of `now`) that a change in the same
 * timestamp tick could still follow unseen: its stat cannot vouch for it (files and directories).
 */
export function racy(st: { mtimeNs: bigint; ctimeNs: bigint }, now: bigint): boolean {
  return now - st.mtimeNs <= RACY_WINDOW_NS || now - st.ctimeNs <= RACY_WINDOW_NS;
}
/**
 * Read size for hashing. Reads this small stay in the CPU's cache between the read and the hash:
 * 1 GiB warm hashed ~5% faster with 128 KiB than with 4 MiB reads (1,490 against 1,410 MB/s,
 * interleaved runs, 2026-11-29), and cold no slower (the kernel's readahead keeps sequential reads
 * of this size fed). 256 KiB, half the syscalls, measured 1.5-4% faster again than 128 KiB on the
 * Xeon VM (2026-12-02, warm, interleaved: engine 825-870 against 837-894 ms; a bare read-and-hash
 * loop 792-829 against 828-857 ms). Files up to this size are read and hashed in one go.
 */
export const CHUNK = 256 << 10;
/** One read buffer per process: hashing is synchronous, so it is never shared by two reads. */
let chunkBuf: Buffer | undefined;
/**
 * Files from this size on may be read by a worker thread while this one hashes (engine/read-ahead.ts),
 * once their first PROBE_BYTES, read and hashed here, show reading to be slow. Smaller ones would
 * not repay the thread's start, paid once per process (~40 ms).
 */
export const READ_AHEAD_BYTES = 64 << 20;
const PROBE_BYTES = 8 << 20;
/** The reader thread, started by the first big file; undefined after it could not be started. */
let reader: ReadAhead | undefined | null = null;

export const MISSING = 'missing';

/** dev, ino, size, mtimeNs, ctimeNs, hash, trusted */
export type StatEntry = [number, number, number, string, string, string, 0 | 1];

export class Hasher {
  /** Files hashed (not served from the stat cache) in this process: benchmarks read it. */
  hashedFiles = 0;
  hashedBytes = 0;
  /** Stats served by the worker that took them ahead (engine/prefetch.ts). */
  statsAhead = 0;
  private readonly memo = new Map<string, string>();
  /** Each glob's match set as this build listed it; null when it listed two different ones. */
  private readonly listings = new Map<string, string[] | null>();
  private dirty = false;

  constructor(private readonly disk: Disk, private readonly cache: Map<string, StatEntry>, private prefetch?: StatPrefetch) {}

  /**
   * The build is about to write files (run or restore a target): stats taken ahead of it may no
   * longer be what is on disk, even of files no target declares (engine/prefetch.ts).
   */
  dropPrefetch(): void {
    this.prefetch?.close();
    this.prefetch = undefined;
  }

  private statOf(rel: string): FileStat | undefined {
    const ahead = this.prefetch?.take(rel);
    if (ahead === undefined) return this.disk.stat(rel);
    this.statsAhead++;
    return ahead === 'absent' ? undefined : ahead;
  }

  get changed(): boolean {
    return this.dirty;
  }

  entries(): Map<string, StatEntry> {
    return this.cache;
  }

  /** What this build hashed a path to, and the stat cache entry that vouches for it (the settled stamp reads them). */
  seen(rel: string): { hash: string; entry: StatEntry | undefined } | undefined {
    const hash = this.memo.get(rel);
    return hash === undefined ? undefined : { hash, entry: this.cache.get(rel) };
  }

  /**
   * Re-hashes files whose entry was not trusted when they were hashed (written within the racy
   * window) and whose timestamps are now old enough, up to `maxBytes` in all. An entry becomes
   * trusted only if the bytes are still those this build hashed: the hash its decisions and
   * records used stays what `seen` reports either way.
   */
  confirm(paths: Iterable<string>, maxBytes: number): void {
    let budget = maxBytes;
    const now = this.disk.nowNs();
    for (const rel of paths) {
      const e = this.cache.get(rel);
      const used = this.memo.get(rel);
      if (!e || e[6] === 1 || used === undefined || used !== e[5]) continue;
      const st = this.disk.stat(rel);
      if (!st?.isFile || racy(st, now)) continue;
      if ((budget -= st.size) < 0) return;
      let h: string;
      try {
        h = hashFileBytes(this.disk.abs(rel), st.size, true);
      } catch {
        continue;
      }
      this.hashedFiles++;
      this.hashedBytes += st.size;
      if (h !== used) continue;
      this.cache.set(rel, [st.dev, st.ino, st.size, st.mtimeNs.toString(), st.ctimeNs.toString(), h, 1]);
      this.dirty = true;
    }
  }

  /** Forget what this build knows of a path (after a target wrote it). */
  invalidate(rel: string): void {
    if (!rel.endsWith('/')) {
      this.memo.delete(rel);
      return;
    }
    // A directory output: forget the tree and everything memoised inside it.
    const key = rel.slice(0, -1);
    this.memo.delete(key);
    for (const k of this.memo.keys()) if (k.startsWith(rel)) this.memo.delete(k);
  }

  /** sha256 of a file's bytes, or of a directory tree; MISSING when absent. */
  hashPath(rel: string): string {
    const key = rel.endsWith('/') ? rel.slice(0, -1) : rel;
    const m = this.memo.get(key);
    if (m !== undefined) return m;
    const st = this.statOf(key);
    let h: string;
    if (!st) h = MISSING;
    else if (st.isDir) h = this.hashTree(key);
    else h = this.hashFileWithStat(key, st);
    this.memo.set(key, h);
    return h;
  }

  private hashFileWithStat(rel: string, st: FileStat): string {
    const e = this.cache.get(rel);
    const mt = st.mtimeNs.toString();
    const ct = st.ctimeNs.toString();
    if (e && e[6] === 1 && e[0] === st.dev && e[1] === st.ino && e[2] === st.size && e[3] === mt && e[4] === ct) return e[5];
    if (!st.isFile) throw notRegular(this.disk.abs(rel));
    const h = hashFileBytes(this.disk.abs(rel), st.size, true);
    this.hashedFiles++;
    this.hashedBytes += st.size;
    const now = this.disk.nowNs();
    const trusted: 0 | 1 = racy(st, now) ? 0 : 1;
    this.cache.set(rel, [st.dev, st.ino, st.size, mt, ct, h, trusted]);
    this.dirty = true;
    return h;
  }

  /** A tree hash: sorted relative paths and the content hash of each file. */
  private hashTree(rel: string): string {
    const files = fastGlob().sync('**/*', { cwd: this.disk.abs(rel), dot: true, onlyFiles: true, followSymbolicLinks: true }).sort();
    const h = crypto.createHash('sha256');
    for (const f of files) {
      h.update(f);
      h.update('\0');
      h.update(this.hashPath(`${rel}/${f}`));
      h.update('\n');
    }
    return `tree:${h.digest('hex')}`;
  }

  /** Files matching a glob, sorted, relative to the root. Build-internal directories are never inputs. */
  expandGlob(pattern: string): string[] {
    const matches = this.listGlob(pattern);
    // The settled stamp compares a listing taken after the build with the one its decisions used.
    const before = this.listings.get(pattern);
    if (before === undefined) this.listings.set(pattern, matches);
    else if (before && !sameList(before, matches)) this.listings.set(pattern, null);
    return matches;
  }

  /** The match set this build used for a glob: undefined when it did not list it, or listed two different ones. */
  listing(pattern: string): string[] | undefined {
    return this.listings.get(pattern) ?? undefined;
  }

  /** Lists a glob now, without recording it. */
  listGlob(pattern: string): string[] {
    return fastGlob().sync(pattern, { cwd: this.disk.root, dot: false, onlyFiles: true, ignore: ['.hubmake/**', 'node_modules/**'] }).sort();
  }
}

export function sameList(a: string[], b: string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * sha256 of a file's bytes, read until end of file (not just `size` bytes: a file that grew since
 * its stat is hashed as it is now). Open + read into a reused buffer + close; a file that fits in
 * one read is hashed with one-shot crypto.hash, which skips a Hash object per file (~1.2x faster
 * per small file than the streaming loop, bench/hashing.ts). `regular`: the caller's stat already
 * showed a regular file, so the fstat that refuses FIFOs and devices is skipped.
 */
export function hashFileBytes(abs: string, size: number, regular = false): string {
  const buf = (chunkBuf ??= Buffer.allocUnsafe(CHUNK));
  // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever (and block
  // Ctrl-C with it); such a path is refused by name instead. No effect on regular files.
  const fd = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  // The reader thread, while it reads this file ahead (engine/read-ahead.ts).
  let ahead: ReadAhead | undefined;
  try {
    if (!regular && !fs.fstatSync(fd).isFile()) throw notRegular(abs);
    const read = (at: number) => {
      try {
        return fs.readSync(fd, buf, at, CHUNK - at, null);
      } catch (e) {
        throw new Error(`cannot read '${abs}': ${(e as Error).message}`);
      }
    };
    let n = read(0);
    if (n < CHUNK) {
      const more = n === 0 ? 0 : read(n);
      if (more === 0) return oneShot(buf.subarray(0, n));
      n += more;
    }
    const h = crypto.createHash('sha256');
    // HUBMAKE_READ_AHEAD: 'off' never has a file read ahead, 'on' every big file at once, unset
    // lets the first PROBE_BYTES decide (readAheadPays).
    const mode = size >= READ_AHEAD_BYTES ? process.env.HUBMAKE_READ_AHEAD : 'off';
    let probe = mode === 'off' ? Infinity : mode === 'on' ? 0 : PROBE_BYTES;
    let done = 0;
    let readMs = 0;
    let hashMs = 0;
    for (let k = 1; ; k++) {
      // Timed only while the probe is undecided: not for small files, nor after the decision.
      const timing = probe !== Infinity;
      const t0 = timing ? performance.now() : 0;
      h.update(n === CHUNK ? buf : buf.subarray(0, n));
      done += n;
      if (done >= probe) {
        // Once: the rest is read ahead by the thread, or not at all.
        probe = Infinity;
        const r = mode === 'on' || readAheadPays(readMs, hashMs) ? readAhead() : undefined;
        if (r?.start(fd, done)) ahead = r;
      }
      // Every 16 reads (4 MiB): the thread may read on.
      if (ahead && (k & 15) === 0) ahead.progress(done);
      const t1 = timing ? performance.now() : 0;
      n = read(0);
      if (timing) {
        hashMs += t1 - t0;
        readMs += performance.now() - t1;
      }
      if (n === 0) break;
    }
    return h.digest('hex');
  } finally {
    // The thread lets go of the descriptor before it is closed.
    ahead?.stop();
    fs.closeSync(fd);
  }
}

/** The process's reader thread, started by the first file that needs it; undefined when it cannot be. */
function readAhead(): ReadAhead | undefined {
  if (reader === null) {
    try {
      reader = new ReadAhead();
    } catch {
      reader = undefined;
    }
  }
  return reader;
}

export function notRegular(abs: string): Error {
  return new Error(`'${abs}' is not a regular file (a FIFO, socket or device); it cannot be hashed`);
}

const oneShot: (b: Buffer) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (b) => (crypto as unknown as { hash: (a: string, d: Buffer, e: string) => string }).hash('sha256', b, 'hex')
    : (b) => crypto.createHash('sha256').update(b).digest('hex');

