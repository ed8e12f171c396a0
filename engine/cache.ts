// The artifact cache: fingerprint → the outputs a successful run produced, kept in a blob store.
// An entry is one small JSON file at <dir>/entries/<2 hex>/<key>.json, written atomically; it names
// the producing build and the blob of every output file. The key covers the fingerprint digest
// and the declared outputs list (the same command with another outputs list is another target).
//
// Several machines may share one directory: entries and blobs appear only by rename, so readers
// see whole files or nothing. Anything wrong with an entry (unparsable, wrong key, a blob missing
// or with the wrong size, or bytes that fail the sha256 check when restored) makes it a miss: the
// command runs and its result replaces the entry. Least recently used entries go first when the
// cache exceeds its size limit; a lookup that hits touches the entry's mtime to mark the use.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { BlobStore, blobsOf, complete, isOutputSet, materialize, readJson, snapshot, type OutputSet, writeJsonAtomic } from './store.ts';

const VERSION = 1;

export interface CacheEntry {
  v: number;
  key: string;
  target: string;
  /** The build that ran the command and produced these outputs. */
  buildId: string;
  /** How long that run took. */
  ms: number;
  created: string;
  outputSet: OutputSet;
}

export interface CacheStats {
  entries: number;
  /** Bytes of the distinct blobs the entries refer to. */
  bytes: number;
}

export interface GcResult extends CacheStats {
  evicted: number;
  /** Blobs removed from disk (unreferenced after eviction, or left over before). */
  removedBlobs: number;
  freedBytes: number;
}

/** The cache key of a target: its fingerprint digest and its declared outputs. */
export function cacheKey(fingerprintDigest: string, outputs: string[]): string {
  return crypto.createHash('sha256').update(`hubmake-cache-v${VERSION}\0${fingerprintDigest}\0${outputs.join('\0')}`).digest('hex');
}

/** Parses sizes like 500M, 2G, 1.5GB, 10k or a plain byte count. */
export function parseSize(s: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(i?b)?\s*$/i.exec(s);
  if (!m) return undefined;
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.floor(Number(m[1]) * mult);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) { v /= 1024; i++; }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export class ArtifactCache {
  readonly entriesDir: string;

  /** `blobs` is the store under the state directory by default, or <dir>/blobs for a shared cache. */
  constructor(readonly dir: string, readonly blobs: BlobStore) {
    this.entriesDir = path.join(dir, 'entries');
  }

  entryPath(key: string): string {
    return path.join(this.entriesDir, key.slice(0, 2), `${key}.json`);
  }

  /** A usable entry for the key, or undefined. `touch` records the use for LRU eviction. */
  lookup(key: string, touch: boolean): CacheEntry | undefined {
    const p = this.entryPath(key);
    const e = readJson(p);
    if (!isEntry(e) || e.key !== key || !complete(this.blobs, e.outputSet)) return undefined;
    if (touch) {
      try {
        const now = new Date();
        fs.utimesSync(p, now, now);
      } catch {
        // Only the owner may set explicit times: another user's entry on a shared cache is
        // rewritten instead (same bytes, by rename), which marks the use just as well.
        try {
          writeJsonAtomic(p, e);
        } catch { /* a read-only cache: LRU order is only advisory */ }
      }
    }
    return e;
  }

  /** Writes the entry's outputs into the root, verified (throws BlobError on a damaged blob). */
  restore(e: CacheEntry, root: string): { files: number; bytes: number } {
    return materialize(this.blobs, root, e.outputSet);
  }

  /** Stores a successful run's outputs (`outputs`: declared output → recorded hash). */
  store(key: string, target: string, buildId: string, ms: number, root: string, outputs: Record<string, string>, known?: (rel: string) => string | undefined): CacheEntry {
    const { outputSet } = snapshot(this.blobs, root, outputs, known);
    const e: CacheEntry = { v: VERSION, key, target, buildId, ms, created: new Date().toISOString(), outputSet };
    writeJsonAtomic(this.entryPath(key), e);
    return e;
  }

  /** Every readable entry with its path and last use. */
  private entries(cleanTmp = false): Array<{ path: string; used: number; e: CacheEntry | undefined }> {
    const out: Array<{ path: string; used: number; e: CacheEntry | undefined }> = [];
    let shards: string[];
    try {
      shards = fs.readdirSync(this.entriesDir);
    } catch {
      return out;
    }
    for (const s of shards) {
      let names: string[];
      try {
        names = fs.readdirSync(path.join(this.entriesDir, s));
      } catch {
        continue;
      }
      for (const n of names) {
        if (cleanTmp && n.includes('.json.tmp-')) {
          // A writer killed between write and rename; give live writers an hour.
          const st = fs.statSync(path.join(this.entriesDir, s, n), { throwIfNoEntry: false });
          if (st && Date.now() - st.mtimeMs > 3600_000) fs.rmSync(path.join(this.entriesDir, s, n), { force: true });
          continue;
        }
        if (!n.endsWith('.json')) continue;
        const p = path.join(this.entriesDir, s, n);
        const st = fs.statSync(p, { throwIfNoEntry: false });
        if (!st) continue;
        const e = readJson(p);
        out.push({ path: p, used: st.mtimeMs, e: isEntry(e) && `${e.key}.json` === n ? e : undefined });
      }
    }
    return out;
  }

  stats(): CacheStats {
    const sizes = new Map<string, number>();
    let entries = 0;
    for (const { e } of this.entries()) {
      if (!e) continue;
      entries++;
      for (const r of Object.values(e.outputSet.files)) sizes.set(r.h, r.size);
    }
    let bytes = 0;
    for (const s of sizes.values()) bytes += s;
    return { entries, bytes };
  }

  /**
   * Evicts least recently used entries until the distinct blobs of the rest fit in `limit` bytes
   * (no limit: only unreadable entries go), then removes blobs no entry refers to. `alsoLive`
   * protects blobs referenced elsewhere when the store is shared (preserved outputs).
   * A concurrent writer whose blob is swept between its put and its entry only loses a cache hit:
   * an entry with a missing blob is a miss.
   */
  gc(limit: number | undefined, alsoLive: Set<string> = new Set()): GcResult {
    const all = this.entries(true);
    let evicted = 0;
    const refs = new Map<string, number>();
    const sizes = new Map<string, number>();
    const live: typeof all = [];
    for (const x of all) {
      if (!x.e) {
        fs.rmSync(x.path, { force: true });
        evicted++;
        continue;
      }
      live.push(x);
      for (const r of Object.values(x.e.outputSet.files)) {
        refs.set(r.h, (refs.get(r.h) ?? 0) + 1);
        sizes.set(r.h, r.size);
      }
    }
    let bytes = 0;
    for (const s of sizes.values()) bytes += s;
    live.sort((a, b) => a.used - b.used);
    let kept = live.length;
    for (const x of live) {
      if (limit === undefined || bytes <= limit) break;
      fs.rmSync(x.path, { force: true });
      evicted++;
      kept--;
      for (const h of new Set(blobsOf(x.e!.outputSet))) {
        const n = refs.get(h)! - 1;
        if (n === 0) {
          refs.delete(h);
          bytes -= sizes.get(h)!;
        } else refs.set(h, n);
      }
    }
    const keep = new Set([...refs.keys(), ...alsoLive]);
    const swept = this.blobs.sweep(keep);
    return { entries: kept, bytes, evicted, removedBlobs: swept.removed, freedBytes: swept.bytes };
  }

  /** Blob hashes the entries refer to (for a sweep of a store the cache shares). */
  liveBlobs(): Set<string> {
    const out = new Set<string>();
    for (const { e } of this.entries()) if (e) for (const h of blobsOf(e.outputSet)) out.add(h);
    return out;
  }
}

function isEntry(v: unknown): v is CacheEntry {
  if (!v || typeof v !== 'object') return false;
  const e = v as CacheEntry;
  return e.v === VERSION && typeof e.key === 'string' && typeof e.target === 'string' && typeof e.buildId === 'string' && typeof e.ms === 'number' && isOutputSet(e.outputSet);
}
