// The content-addressed store: every file hubmake keeps (outputs preserved before a rerun, the
// artifact cache) lives once, under its sha256, at <dir>/<2 hex>/<64 hex>. A blob is written to a
// private temp file in <dir>/tmp, hashed there, made read-only and renamed into place, so several
// writers (builds on other machines sharing a cache directory) never see or leave half a blob, and
// two writers of the same content simply replace one identical file with another.
//
// Copy, never hard link, in both directions. A hard link shares the inode: a command that rewrites
// an output in place (open with O_TRUNC, as `cmd > out` does) would rewrite the stored blob too,
// and making blobs read-only would not help, because the mode belongs to the shared inode, so
// chmod on the workspace path (or a tool that fails on a read-only output) breaks either side.
// `copyFileSync` with COPYFILE_FICLONE makes a reflink where the file system supports it (btrfs,
// XFS, APFS: no data copied, copy-on-write keeps the two apart) and a plain copy elsewhere. Every
// read back is verified by sha256, so a blob damaged on disk is detected, removed and reported.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { fastGlob } from './globs.ts';
import { withDir, writeFileAtomic } from './disk.ts';
import { hashFileBytes, notRegular } from './hash.ts';
import { stripSlash } from './paths.ts';

/** One stored file. `x` marks an executable file. */
export interface BlobRef {
  h: string;
  size: number;
  x?: 1;
}

/** A target's outputs as stored: what each declared output hashed to, and every file's blob. */
export interface OutputSet {
  /** Declared output (directories end with `/`) → its recorded hash (file sha256 or `tree:...`). */
  outputs: Record<string, string>;
  /** Root-relative file path (files inside directory outputs included) → blob. */
  files: Record<string, BlobRef>;
}

/** A blob that is missing or whose bytes no longer match its name. */
export class BlobError extends Error {
  constructor(readonly hash: string, why: string) {
    super(`stored blob ${hash.slice(0, 12)} ${why}`);
    this.name = 'BlobError';
  }
}

const HEX64 = /^[0-9a-f]{64}$/;
/** Leftover temp files of killed writers are removed by gc once they are this old. */
const STALE_TMP_MS = 60 * 60 * 1000;

export function tmpName(): string {
  return `${process.pid}-${crypto.randomBytes(6).toString('hex')}`;
}

export class BlobStore {
  constructor(readonly dir: string) {}

  pathOf(h: string): string {
    return path.join(this.dir, h.slice(0, 2), h);
  }

  /** Present with the expected size (cheap; the bytes are verified when read back). */
  has(h: string, size?: number): boolean {
    const st = fs.statSync(this.pathOf(h), { throwIfNoEntry: false });
    return !!st && st.isFile() && (size === undefined || st.size === size);
  }

  /**
   * Stores a copy of a file. With `known` (its hash as the stat cache says) an existing blob of
   * that hash and size is reused without copying; otherwise the copy is hashed after it is made,
   * so the name always matches the bytes stored, whatever happened to the file meanwhile.
   */
  put(abs: string, known?: string): BlobRef {
    const st = fs.statSync(abs);
    const x: 1 | undefined = st.mode & 0o111 ? 1 : undefined;
    const ref = (h: string, size: number): BlobRef => (x ? { h, size, x } : { h, size });
    if (known && HEX64.test(known) && this.has(known, st.size)) return ref(known, st.size);
    const tmp = path.join(this.dir, 'tmp', tmpName());
    try {
      // A small file is read once, hashed and written as it is read (open, read, write, close:
      // half the system calls of copy + stat + hash + chmod, which cost ~1 ms per output of a
      // 10,000-command build); a big one is copied by the kernel (a reflink where the file
      // system has them) and hashed after. Either way the name is the hash of the bytes stored.
      const small = st.size < SMALL ? copyHashing(abs, tmp) : undefined;
      const { h, size } = small ?? copyThenHash(abs, tmp);
      const dest = this.pathOf(h);
      try {
        withDir(dest, () => fs.renameSync(tmp, dest));
      } catch (e) {
        // Another user's identical blob in a sticky shared directory cannot be replaced: reuse it.
        if (!this.has(h, size)) throw e;
        fs.rmSync(tmp, { force: true });
      }
      return ref(h, size);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw e;
    }
  }

  /**
   * Copies a blob to `dest` (a temp path the caller renames into place) and verifies its sha256.
   * A damaged blob is deleted, so that the next put stores good bytes instead of reusing it.
   */
  fetch(ref: BlobRef, dest: string): void {
    const src = this.pathOf(ref.h);
    try {
      fs.copyFileSync(src, dest, fs.constants.COPYFILE_FICLONE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobError(ref.h, 'is missing');
      throw e;
    }
    const size = fs.statSync(dest).size;
    const h = size === ref.size ? hashFileBytes(dest, size) : `size ${size}`;
    if (h !== ref.h) {
      fs.rmSync(dest, { force: true });
      fs.rmSync(src, { force: true });
      throw new BlobError(ref.h, 'is corrupt (its sha256 does not match); removed it');
    }
    // Restored files are ordinary writable files: the blob's read-only mode is not copied.
    fs.chmodSync(dest, ref.x ? 0o755 : 0o644);
  }

  /** Every blob: hash, size, mtime. */
  *list(): Generator<{ h: string; size: number }> {
    let shards: string[];
    try {
      shards = fs.readdirSync(this.dir);
    } catch {
      return;
    }
    for (const s of shards) {
      if (!/^[0-9a-f]{2}$/.test(s)) continue;
      let names: string[];
      try {
        names = fs.readdirSync(path.join(this.dir, s));
      } catch {
        continue;
      }
      for (const h of names) {
        if (!HEX64.test(h)) continue;
        const st = fs.statSync(path.join(this.dir, s, h), { throwIfNoEntry: false });
        if (st) yield { h, size: st.size };
      }
    }
  }

  /** Removes blobs nobody references any more, and temp files of writers killed long ago. */
  sweep(live: Set<string>): { removed: number; bytes: number } {
    let removed = 0;
    let bytes = 0;
    for (const b of this.list()) {
      if (live.has(b.h)) continue;
      fs.rmSync(this.pathOf(b.h), { force: true });
      removed++;
      bytes += b.size;
    }
    const tmpDir = path.join(this.dir, 'tmp');
    let tmps: string[] = [];
    try {
      tmps = fs.readdirSync(tmpDir);
    } catch { /* none */ }
    const now = Date.now();
    for (const n of tmps) {
      const st = fs.statSync(path.join(tmpDir, n), { throwIfNoEntry: false });
      if (st && now - st.mtimeMs > STALE_TMP_MS) fs.rmSync(path.join(tmpDir, n), { force: true });
    }
    return { removed, bytes };
  }
}

/** Files of a directory output, as the hasher sees them (dot files included, links followed). */
export function filesUnder(root: string, dirOut: string): string[] {
  const rel = stripSlash(dirOut);
  return fastGlob().sync('**/*', { cwd: path.join(root, rel), dot: true, onlyFiles: true, followSymbolicLinks: true }).sort().map((f) => `${rel}/${f}`);
}

/**
 * Copies the present outputs into the store. `hashes` gives each declared output's hash as
 * recorded (absent outputs are left out); `known` may give a file's hash to skip copying bytes
 * the store already holds.
 */
export function snapshot(store: BlobStore, root: string, hashes: Record<string, string>, known?: (rel: string) => string | undefined): { outputSet: OutputSet; bytes: number } {
  const outputSet: OutputSet = { outputs: {}, files: {} };
  let bytes = 0;
  const add = (rel: string) => {
    const ref = store.put(path.join(root, rel), known?.(rel));
    outputSet.files[rel] = ref;
    bytes += ref.size;
  };
  for (const [out, h] of Object.entries(hashes)) {
    outputSet.outputs[out] = h;
    if (out.endsWith('/')) for (const f of filesUnder(root, out)) add(f);
    else add(out);
  }
  return { outputSet, bytes };
}

/** Every blob an output set needs is present with its size. */
export function complete(store: BlobStore, b: OutputSet): boolean {
  return Object.values(b.files).every((r) => store.has(r.h, r.size));
}

/**
 * Writes an output set's outputs back into the root: every file is first copied next to its place and
 * verified, and only when all are good are they renamed into place (a directory output is built
 * beside the old one and swapped in whole, so no stray file of a failed run survives in it).
 * Throws BlobError, having changed nothing, when a blob is missing or damaged.
 */
export function materialize(store: BlobStore, root: string, b: OutputSet): { files: number; bytes: number } {
  const staged: Array<{ tmp: string; dest: string }> = [];
  let files = 0;
  let bytes = 0;
  const suffix = `.hubmake-restore-${tmpName()}`;
  try {
    for (const out of Object.keys(b.outputs)) {
      const dest = path.join(root, stripSlash(out));
      const tmp = dest + suffix;
      fs.mkdirSync(path.dirname(dest), { recursive: true });
      staged.push({ tmp, dest });
      if (out.endsWith('/')) {
        fs.mkdirSync(tmp, { recursive: true });
        for (const [rel, ref] of Object.entries(b.files)) {
          if (!rel.startsWith(out)) continue;
          const f = path.join(tmp, rel.slice(out.length));
          fs.mkdirSync(path.dirname(f), { recursive: true });
          store.fetch(ref, f);
          files++;
          bytes += ref.size;
        }
      } else {
        const ref = b.files[out];
        if (!ref) throw new BlobError('-'.repeat(12), `for ${out} is not listed in the outputSet`);
        store.fetch(ref, tmp);
        files++;
        bytes += ref.size;
      }
    }
  } catch (e) {
    for (const s of staged) fs.rmSync(s.tmp, { recursive: true, force: true });
    throw e;
  }
  for (const s of staged) {
    const st = fs.lstatSync(s.dest, { throwIfNoEntry: false });
    if (st?.isDirectory()) {
      const old = s.dest + `.hubmake-old-${tmpName()}`;
      fs.renameSync(s.dest, old);
      fs.renameSync(s.tmp, s.dest);
      fs.rmSync(old, { recursive: true, force: true });
    } else {
      fs.renameSync(s.tmp, s.dest);
    }
  }
  return { files, bytes };
}

/** Blob hashes an output set refers to. */
export function blobsOf(b: OutputSet): string[] {
  return Object.values(b.files).map((r) => r.h);
}

/** A outputSet read from JSON written by someone else (another machine, a torn write): check its shape. */
export function isOutputSet(v: unknown): v is OutputSet {
  if (!v || typeof v !== 'object') return false;
  const b = v as OutputSet;
  if (!b.outputs || typeof b.outputs !== 'object' || !b.files || typeof b.files !== 'object') return false;
  for (const [k, h] of Object.entries(b.outputs)) if (typeof h !== 'string' || !k || path.isAbsolute(k) || k.split('/').includes('..')) return false;
  for (const [k, r] of Object.entries(b.files)) {
    if (!k || path.isAbsolute(k) || k.split('/').includes('..')) return false;
    if (!r || typeof r !== 'object' || typeof r.h !== 'string' || !HEX64.test(r.h) || typeof r.size !== 'number') return false;
  }
  return true;
}

/** Files below this size are copied through one buffer, hashed on the way (BlobStore.put). */
const SMALL = 1 << 20;

/** One copy buffer per process: copies are synchronous, so it is never shared by two. */
let copyBuf: Buffer | undefined;

/** Copies a small file to tmp (created read-only) and hashes the bytes as they are copied. */
function copyHashing(abs: string, tmp: string): { h: string; size: number } {
  const src = fs.openSync(abs, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  try {
    if (!fs.fstatSync(src).isFile()) throw notRegular(abs);
    const out = withDir(tmp, () => fs.openSync(tmp, 'wx', 0o444));
    try {
      const h = crypto.createHash('sha256');
      const buf = (copyBuf ??= Buffer.allocUnsafe(64 * 1024));
      let size = 0;
      for (let n; (n = fs.readSync(src, buf, 0, buf.length, null)) > 0; ) {
        h.update(buf.subarray(0, n));
        for (let w = 0; w < n; ) w += fs.writeSync(out, buf, w, n - w);
        size += n;
      }
      return { h: h.digest('hex'), size };
    } finally {
      fs.closeSync(out);
    }
  } finally {
    fs.closeSync(src);
  }
}

/** Copies a big file to tmp by the kernel (a reflink where possible), then hashes the copy. */
function copyThenHash(abs: string, tmp: string): { h: string; size: number } {
  withDir(tmp, () => fs.copyFileSync(abs, tmp, fs.constants.COPYFILE_FICLONE));
  const size = fs.statSync(tmp).size;
  const h = hashFileBytes(tmp, size);
  fs.chmodSync(tmp, 0o444);
  return { h, size };
}

/** Writes a small JSON document atomically (the engine's one atomic write). */
export function writeJsonAtomic(abs: string, value: unknown): void {
  writeFileAtomic(abs, JSON.stringify(value));
}

/**
 * A JSON document, or undefined when it is absent or unreadable. Absence is the usual answer (a
 * clean build looks up a cache entry and a preserved manifest for every target), so it is asked of
 * a stat that throws nothing: a failed read throws, and building that exception cost ~25 µs, half
 * a second of a 10,000-target clean build.
 */
export function readJson(abs: string): unknown {
  if (!fs.statSync(abs, { throwIfNoEntry: false })) return undefined;
  try {
    return JSON.parse(fs.readFileSync(abs, 'utf8'));
  } catch {
    return undefined;
  }
}
