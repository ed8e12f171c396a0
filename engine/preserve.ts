// Never lose an artifact: before a target reruns, whatever it declared as outputs and is on disk
// is copied into the content-addressed store, so that a rerun that fails or is killed after
// truncating its outputs cannot destroy the last good outputs. A manifest per target names the
// blobs: `<name>.good.json` holds the outputs of the target's last successful record (written
// only while the files on disk still match that record, so a second failed rerun never replaces
// it with the wreck of the first); outputs that match no record (edited by hand, left by a failed
// run) go to `<name>.unrecorded.json`, kept until the next such snapshot.
// `--restore <target>` writes the good outputs back (or the cache entry of the same record).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sameAs } from './path-hashes.ts';
import type { SuccessRecord } from './state.ts';
import { BlobStore, blobsOf, complete, isOutputSet, readJson, snapshot, type OutputSet, writeJsonAtomic } from './store.ts';

export interface PreservedManifest {
  v: 1;
  target: string;
  kind: 'good' | 'unrecorded';
  /** Build id of the success record these outputs belong to (good manifests). */
  buildId?: string;
  /** The build that took the copy. */
  by: string;
  at: string;
  outputSet: OutputSet;
}

/** Where a target's last good outputs are kept (in the failed `finish` event and TargetOutcome). */
export interface PreservedInfo {
  /** The build that produced them. */
  buildId: string;
  /** The manifest, relative to the root when inside it. */
  path: string;
}

export interface Preservation {
  /** The good output set, when one matching the last success record exists. */
  good?: PreservedInfo;
  /** What this call copied (nothing when the store already had it). */
  copied?: { path: string; kind: 'good' | 'unrecorded'; files: number; bytes: number };
}

export class Preserver {
  readonly dir: string;

  constructor(private readonly root: string, storeDir: string, readonly blobs: BlobStore) {
    this.dir = path.join(storeDir, 'preserved');
  }

  manifestPath(target: string, kind: 'good' | 'unrecorded'): string {
    // Target names may hold slashes and any character: a readable prefix plus a hash is unique.
    const safe = target.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80);
    const h = crypto.createHash('sha256').update(target).digest('hex').slice(0, 12);
    return path.join(this.dir, `${safe}-${h}.${kind}.json`);
  }

  private display(abs: string): string {
    const rel = path.relative(this.root, abs);
    return rel.startsWith('..') || path.isAbsolute(rel) ? abs : rel.split(path.sep).join('/');
  }

  read(target: string, kind: 'good' | 'unrecorded'): PreservedManifest | undefined {
    const m = readJson(this.manifestPath(target, kind));
    if (!m || typeof m !== 'object') return undefined;
    const pm = m as PreservedManifest;
    if (pm.v !== 1 || pm.target !== target || pm.kind !== kind || !isOutputSet(pm.outputSet)) return undefined;
    return pm;
  }

  /** The good output set of exactly this record, with every blob present. */
  goodFor(target: string, rec: SuccessRecord | undefined): PreservedManifest | undefined {
    if (!rec) return undefined;
    const m = this.read(target, 'good');
    if (!m || m.buildId !== rec.b || !sameAs(rec.out, m.outputSet.outputs) || !complete(this.blobs, m.outputSet)) return undefined;
    return m;
  }

  /**
   * Copies the present outputs into the store before a rerun. `current`: each declared output's
   * hash now (MISSING when absent); `known`: a file's hash from the stat cache, to skip copying
   * what the store already holds.
   */
  preserve(target: string, outputs: string[], rec: SuccessRecord | undefined, current: Record<string, string>, by: string, known: (rel: string) => string | undefined, missing: string): Preservation {
    const present: Record<string, string> = {};
    for (const o of outputs) if (current[o] !== undefined && current[o] !== missing) present[o] = current[o]!;
    const res: Preservation = {};
    const matches = !!rec && Object.keys(present).length === outputs.length && sameAs(rec.out, present);
    let good = this.goodFor(target, rec);
    if (Object.keys(present).length && !(matches && good)) {
      const kind = matches ? 'good' : 'unrecorded';
      const { outputSet, bytes } = snapshot(this.blobs, this.root, present, known);
      const m: PreservedManifest = { v: 1, target, kind, by, at: new Date().toISOString(), outputSet };
      if (kind === 'good') m.buildId = rec!.b;
      const p = this.manifestPath(target, kind);
      writeJsonAtomic(p, m);
      res.copied = { path: this.display(p), kind, files: Object.keys(outputSet.files).length, bytes };
      if (kind === 'good') good = m;
    }
    if (good) res.good = { buildId: good.buildId!, path: this.display(this.manifestPath(target, 'good')) };
    return res;
  }

  /** Keeps a copy of outputs about to be overwritten by a restore, unless they are the good ones. */
  saveUnrecorded(target: string, present: Record<string, string>, by: string): void {
    if (!Object.keys(present).length) return;
    const { outputSet } = snapshot(this.blobs, this.root, present);
    writeJsonAtomic(this.manifestPath(target, 'unrecorded'), { v: 1, target, kind: 'unrecorded', by, at: new Date().toISOString(), outputSet } satisfies PreservedManifest);
  }

  /**
   * After a successful run the preserved copy of the previous outputs has done its job (the new
   * outputs are the last good ones): drop the manifest, returning the blobs it held so they can
   * be removed unless something else refers to them.
   */
  release(target: string): string[] {
    const p = this.manifestPath(target, 'good');
    const m = this.read(target, 'good');
    if (!m) return [];
    fs.rmSync(p, { force: true });
    return blobsOf(m.outputSet);
  }

  /** Blobs the manifests refer to (protected from gc). */
  liveBlobs(): Set<string> {
    const out = new Set<string>();
    let names: string[] = [];
    try {
      names = fs.readdirSync(this.dir);
    } catch { /* none yet */ }
    for (const n of names) {
      if (!n.endsWith('.json')) continue;
      const m = readJson(path.join(this.dir, n)) as PreservedManifest | undefined;
      if (m && isOutputSet(m.outputSet)) for (const h of blobsOf(m.outputSet)) out.add(h);
    }
    return out;
  }
}
