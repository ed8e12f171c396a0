// What the builder and the command line ask of the store: preserve a target's outputs before it
// reruns, look its fingerprint up in the artifact cache and restore a hit, remember a success,
// and the two commands of their own, --restore <target> and --gc. Layout under the state
// directory: .hubmake/store/blobs (content-addressed files), .hubmake/store/preserved (one
// manifest per target), .hubmake/cache/entries (the default cache, whose blobs are the store's).
// A shared cache (--cache-dir / HUBMAKE_CACHE_DIR) keeps entries and blobs in its own directory.
import fs from 'node:fs';
import path from 'node:path';
import { ArtifactCache, cacheKey, parseSize, type CacheEntry, type GcResult } from './cache.ts';
import { DeclarationError } from './errors.ts';
import type { Listener } from './events.ts';
import { digestOf, computeFingerprint } from './fingerprint.ts';
import type { Graph } from './graph.ts';
import { Disk } from './disk.ts';
import { Hasher, MISSING } from './hash.ts';
import { Lock } from './lock.ts';
import { Preserver, type Preservation } from './preserve.ts';
import type { Target } from './spec.ts';
import { hashAt, sameAs } from './path-hashes.ts';
import { partsOf, StateStore, type SuccessRecord } from './state.ts';
import { BlobError, BlobStore, blobsOf, materialize, type OutputSet } from './store.ts';

export interface ArtifactSettings {
  /** Cache directory (absolute); undefined: .hubmake/cache sharing the store's blobs. */
  cacheDir?: string;
  /** false (--no-cache): no cache lookups or stores; outputs are still preserved before reruns. */
  cache: boolean;
  /** Bytes; when set, every build ends with a gc down to it. */
  limit?: number;
  /**
   * A target without `cache: true` is stored only when its run took at least this long
   * (--cache-min-ms, HUBMAKE_CACHE_MIN_MS; default DEFAULT_CACHE_MIN_MS).
   */
  minMs?: number;
}

/**
 * Storing a run's outputs costs a new cache entry file and a blob per new output (~0.3 ms of CPU
 * and two inodes for a small one), and restoring them a copy and a sha256 check: for a command
 * quicker than this, running it again is as cheap as the cache, so by default it is not stored
 * (Gradle keeps its Copy and Jar tasks out of its build cache for the same reason).
 */
export const DEFAULT_CACHE_MIN_MS = 100;

/** Settings from the command line, falling back to HUBMAKE_CACHE_DIR / _LIMIT / _MIN_MS. */
export function artifactSettings(cli: { cacheDir?: string | undefined; cacheLimit?: string | undefined; cacheMinMs?: string | undefined; noCache?: boolean }, env: NodeJS.ProcessEnv, cwd = process.cwd()): ArtifactSettings {
  const s: ArtifactSettings = { cache: !cli.noCache };
  const dir = cli.cacheDir ?? (env.HUBMAKE_CACHE_DIR || undefined);
  if (dir !== undefined) s.cacheDir = path.resolve(cwd, dir);
  const lim = cli.cacheLimit ?? (env.HUBMAKE_CACHE_LIMIT || undefined);
  if (lim !== undefined) {
    const n = parseSize(lim);
    const field = cli.cacheLimit !== undefined ? '--cache-limit' : 'HUBMAKE_CACHE_LIMIT';
    if (n === undefined) throw new DeclarationError({ field, message: `must be a size such as 500M, 20G or a byte count, got '${lim}'` });
    s.limit = n;
  }
  const min = cli.cacheMinMs ?? (env.HUBMAKE_CACHE_MIN_MS || undefined);
  if (min !== undefined) {
    const field = cli.cacheMinMs !== undefined ? '--cache-min-ms' : 'HUBMAKE_CACHE_MIN_MS';
    if (!/^\d+$/.test(min.trim())) throw new DeclarationError({ field, message: `must be a whole number of milliseconds (0 stores every run), got '${min}'` });
    s.minMs = Number(min);
  }
  return s;
}

export interface CacheHit {
  entry: CacheEntry;
  /** The cache directory, for messages. */
  from: string;
}

export class Artifacts {
  readonly store: BlobStore;
  readonly preserver: Preserver;
  readonly cache: ArtifactCache | undefined;
  /** The cache index whether or not lookups are on (--no-cache still lets --gc and --status see it). */
  private readonly index: ArtifactCache;
  /** The cache keeps its blobs in the local store (the default cache directory). */
  private readonly sharesStore: boolean;

  constructor(readonly root: string, stateDir: string, readonly settings: ArtifactSettings = { cache: true }) {
    const storeDir = path.join(stateDir, 'store');
    this.store = new BlobStore(path.join(storeDir, 'blobs'));
    this.preserver = new Preserver(root, storeDir, this.store);
    this.sharesStore = settings.cacheDir === undefined;
    const cacheDir = settings.cacheDir ?? path.join(stateDir, 'cache');
    const blobs = this.sharesStore ? this.store : new BlobStore(path.join(cacheDir, 'blobs'));
    this.index = new ArtifactCache(cacheDir, blobs);
    if (settings.cache) this.cache = this.index;
  }

  /** The cache directory as shown to people. */
  get cacheDir(): string {
    const d = this.settings.cacheDir ?? path.join(this.root, '.hubmake', 'cache');
    const rel = path.relative(this.root, d);
    return rel.startsWith('..') || path.isAbsolute(rel) ? d : rel;
  }

  /**
   * Whether a cached result may stand in for running this target now. Not when forced (-B asks
   * for a real run), nor for degraded runs or runOnFailure targets: what those write depends on
   * the outcomes of other targets in this build, which no fingerprint covers.
   */
  cacheable(t: Target, forced: boolean, degraded: boolean): boolean {
    return !!this.cache && t.cache !== false && !t.runOnFailure && !forced && !degraded;
  }

  /** Whether a successful run that took `ms` is worth storing (see DEFAULT_CACHE_MIN_MS). */
  worthStoring(t: Target, ms: number, degraded: boolean): boolean {
    return this.cacheable(t, false, degraded) && (t.cache === true || ms >= (this.settings.minMs ?? DEFAULT_CACHE_MIN_MS));
  }

  /**
   * A cached result for the target's fingerprint. A rebuild: 'missing' target is restored only
   * when all of its outputs are absent: outputs it keeps are never overwritten from the cache.
   */
  lookup(t: Target, digest: string, current: Record<string, string>, touch: boolean): CacheHit | undefined {
    if (!this.cache) return undefined;
    if (t.rebuild === 'missing' && t.outputs.some((o) => current[o] !== MISSING)) return undefined;
    const entry = this.cache.lookup(cacheKey(digest, t.outputs), touch);
    return entry ? { entry, from: this.cacheDir } : undefined;
  }

  /** Writes a hit's outputs into the root, verified; throws BlobError (nothing changed) when damaged. */
  restore(hit: CacheHit, hasher: Hasher): { files: number; bytes: number } {
    const r = this.cache!.restore(hit.entry, this.root);
    forget(hasher, hit.entry.outputSet);
    return r;
  }

  /**
   * After a successful run: store its outputs under its fingerprint. The hasher has just hashed
   * them afresh, so blobs the store already holds (an output that came out identical) are not
   * copied again; new content is copied and hashed as it lands in the store.
   */
  remember(t: Target, digest: string, out: Record<string, string>, buildId: string, ms: number, hasher?: Hasher): void {
    this.cache?.store(cacheKey(digest, t.outputs), t.name, buildId, ms, this.root, out, hasher && knownHash(hasher));
  }

  /** Before a rerun (or a restore over them): copy the target's present outputs into the store. */
  preserve(t: Target, rec: SuccessRecord | undefined, hasher: Hasher, buildId: string): Preservation {
    const current: Record<string, string> = {};
    for (const o of t.outputs) current[o] = hasher.hashPath(o);
    return this.preserver.preserve(t.name, t.outputs, rec, current, buildId, knownHash(hasher), MISSING);
  }

  /** Blobs of preserved copies released in this build, removed at its end unless still referenced. */
  private readonly released = new Set<string>();

  /**
   * A success (run or restored): the copy preserved before it is no longer the last good one.
   * Blobs that the cache entry of the previous good run (`prev`) still lists are known to be live
   * without the end-of-build scan of every cache entry, which costs ~10 ms per 1,000 entries;
   * with the cache on, that is every released blob of a cacheable target, so an edit that reruns
   * 11 of 10,000 targets reads 11 entries instead of 10,000.
   */
  succeeded(t: Target, prev?: SuccessRecord): void {
    const freed = this.preserver.release(t.name);
    if (!freed.length) return;
    let live: Set<string> | undefined;
    if (prev && this.sharesStore) {
      const e = this.index.lookup(cacheKey(digestOf(partsOf(prev)), t.outputs), false);
      if (e) live = new Set(blobsOf(e.outputSet));
    }
    for (const h of freed) if (!live?.has(h)) this.released.add(h);
  }

  /**
   * End of a build: removes the released blobs that neither a preserved copy nor (when the cache
   * shares the store) a cache entry refers to, so a big output preserved before a successful
   * rerun does not stay on disk until the next --gc.
   */
  sweepReleased(): number {
    if (!this.released.size) return 0;
    const live = this.preserver.liveBlobs();
    if (this.sharesStore) for (const h of this.index.liveBlobs()) live.add(h);
    let n = 0;
    for (const h of this.released) {
      if (live.has(h)) continue;
      fs.rmSync(this.store.pathOf(h), { force: true });
      n++;
    }
    this.released.clear();
    return n;
  }

  /** Cache use for --status. */
  stats(): { entries: number; bytes: number; dir: string } {
    return { ...this.index.stats(), dir: this.cacheDir };
  }

  /**
   * Evicts least recently used cache entries down to `limit` and removes blobs nothing refers
   * to (neither a cache entry nor a preserved manifest).
   */
  gc(limit: number | undefined): GcResult {
    const preservedLive = this.preserver.liveBlobs();
    const cache = this.index;
    if (this.sharesStore) return cache.gc(limit, preservedLive);
    const r = cache.gc(limit);
    const s = this.store.sweep(preservedLive);
    return { ...r, removedBlobs: r.removedBlobs + s.removed, freedBytes: r.freedBytes + s.bytes };
  }
}

/** A file's hash as the hasher (and its stat cache) knows it: a hint that lets the store skip a copy. */
function knownHash(hasher: Hasher): (rel: string) => string | undefined {
  return (rel) => {
    const h = hasher.hashPath(rel);
    return h === MISSING ? undefined : h;
  };
}

/** The hasher remembers paths it hashed in this build; outputs just rewritten must be hashed anew. */
function forget(hasher: Hasher, b: OutputSet): void {
  for (const o of Object.keys(b.outputs)) {
    hasher.invalidate(o);
    hasher.invalidate(o.endsWith('/') ? o.slice(0, -1) : o);
  }
  for (const f of Object.keys(b.files)) hasher.invalidate(f);
}

export interface RestoreOptions {
  root: string;
  graph: Graph;
  moduleHash: string;
  name: string;
  settings: ArtifactSettings;
  buildId: string;
  env: NodeJS.ProcessEnv;
  emit: Listener;
  signal?: AbortSignal;
}

/**
 * --restore <target>: writes back the outputs of the target's last successful record, from the
 * copy preserved before a rerun or else from the cache entry of that record's fingerprint, every
 * file verified by sha256 and renamed into place; outputs on disk that differ are preserved
 * first. The record is written again, so the target is fresh when its fingerprint still matches.
 * Exit 0 restored, 1 nothing (good) to restore, 2 unknown target.
 */
export async function restoreCommand(o: RestoreOptions): Promise<number> {
  const t = o.graph.byName.get(o.name) ?? o.graph.producerOf(o.name);
  if (!t || t.alias) {
    const e = new DeclarationError({ field: '--restore', message: `'${o.name}' is not a target with outputs`, hint: 'name a target (or one of its outputs); see --list' });
    o.emit({ type: 'error', diagnostics: e.diagnostics });
    return 2;
  }
  const state = new StateStore(o.root);
  const lock = new Lock(state.dir);
  try {
    await lock.acquire((h) => o.emit({ type: 'lock-wait', pid: h.pid, host: h.host, since: h.started }), o.signal);
    state.load();
    const rec = state.history.get(t.name)?.ok;
    if (!rec) {
      o.emit({ type: 'info', target: t.name, message: `hubmake: nothing to restore: target '${t.name}' has no successful run on record` });
      return 1;
    }
    const a = new Artifacts(o.root, state.dir, { ...o.settings, cache: true });
    const hasher = new Hasher(new Disk(o.root), state.loadStatCache());
    const current: Record<string, string> = {};
    for (const out of t.outputs) current[out] = hasher.hashPath(out);
    const t0 = Date.now();
    const sources: Array<{ source: 'preserved' | 'cache'; from: string; outputSet: OutputSet }> = [];
    const good = a.preserver.goodFor(t.name, rec);
    if (good) sources.push({ source: 'preserved', from: path.relative(o.root, a.preserver.manifestPath(t.name, 'good')), outputSet: good.outputSet });
    const entry = a.cache!.lookup(cacheKey(digestOf(partsOf(rec)), t.outputs), true);
    if (entry && sameAs(rec.out, entry.outputSet.outputs)) sources.push({ source: 'cache', from: a.cacheDir, outputSet: entry.outputSet });
    let done: { source: 'preserved' | 'cache'; from: string; files: number; bytes: number } | undefined;
    if (sameAs(rec.out, current)) done = { source: 'preserved', from: 'the files on disk (already the recorded ones)', files: 0, bytes: 0 };
    const problems: string[] = [];
    for (const s of sources) {
      if (done) break;
      const differing: Record<string, string> = {};
      for (const out of t.outputs) if (current[out] !== MISSING && current[out] !== hashAt(rec.out, out)) differing[out] = current[out]!;
      a.preserver.saveUnrecorded(t.name, differing, o.buildId);
      try {
        const r = materialize(s.source === 'cache' ? a.cache!.blobs : a.store, o.root, s.outputSet);
        done = { source: s.source, from: s.from, ...r };
      } catch (e) {
        if (!(e instanceof BlobError)) throw e;
        problems.push(`${s.source} copy: ${e.message}`);
      }
    }
    if (!done) {
      const why = problems.length ? `its stored copies are damaged (${problems.join('; ')})` : 'no preserved copy or cache entry holds them';
      o.emit({ type: 'info', target: t.name, message: `hubmake: cannot restore '${t.name}': the outputs of build ${rec.b} are not in the store: ${why}` });
      return 1;
    }
    state.recordSuccess({ ...rec });
    // The target's inputs are other targets' outputs, untouched here: the hasher's view of them holds.
    const fresh = computeFingerprint(t, hasher, o.env, o.moduleHash).digest === digestOf(partsOf(rec));
    o.emit({ type: 'restored', target: t.name, buildId: rec.b, source: done.source, from: done.from, files: done.files, bytes: done.bytes, durationMs: Date.now() - t0, fresh });
    return 0;
  } finally {
    state.close();
    lock.release();
  }
}

/** --gc: evict down to the limit (if any) and remove unreferenced blobs, under the root's lock. */
export async function gcCommand(root: string, settings: ArtifactSettings, emit: Listener, signal?: AbortSignal): Promise<number> {
  const state = new StateStore(root);
  const lock = new Lock(state.dir);
  try {
    await lock.acquire((h) => emit({ type: 'lock-wait', pid: h.pid, host: h.host, since: h.started }), signal);
    const r = new Artifacts(root, state.dir, settings).gc(settings.limit);
    emit({ type: 'cache-gc', ...r, limit: settings.limit ?? null });
    return 0;
  } finally {
    lock.release();
  }
}
