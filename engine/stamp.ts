// The settled stamp: a whole-build early exit for the commonest answer, "nothing to do".
//
// After a build in which every target of the goals ended fresh or built, the session writes a
// stamp: a digest of everything the targets' decisions read besides file contents (declarations,
// action identities, declared environment values, goals) and a digest of the stat signature of
// every file the decisions hashed, as the build saw it when it hashed it. The next build with the
// same declarations and the same state log stats those files; if no signature moved, every
// per-target decision would be "fresh" again, by the same reasoning that lets the stat cache skip
// re-hashing a file. The log, the stat cache and the per-target fingerprints are then not needed.
//
// It only ever answers "every target is fresh"; any doubt falls back to the per-target rebuilder:
// no stamp or another version, other declarations or goals, a state log that changed, a glob or
// directory in the scope (their match sets are not single stats), or a file written too recently
// for its stat to vouch for its bytes (git's racy timestamps) beyond a few, which are checked by
// content instead. tests/stamp.test.ts and the property test compare it with the full decision.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { writeFileAtomic, type Disk, type FileStat } from './disk.ts';
import { commandIdentity } from './fingerprint.ts';
import type { Graph } from './graph.ts';
import { hashFileBytes, MISSING, type Hasher } from './hash.ts';
import { isGlob } from './spec.ts';

/** Bumped whenever what a decision reads changes, so an older engine's stamp is never trusted. */
const VERSION = 1;
export const STAMP_FILE = 'settled.json';
/** Racy files are verified by content on every check; past these, no stamp is written (the next full no-op, which re-hashes them, writes one). */
const MAX_RACY_FILES = 256;
const MAX_RACY_BYTES = 64 << 20;

export interface StampScope {
  graph: Graph;
  /** The goals' targets. */
  closure: Set<string>;
  moduleHash: string;
  /** The build's environment snapshot (declared variables are part of the fingerprint). */
  env: NodeJS.ProcessEnv;
}

interface Stamp {
  v: number;
  /** Digest of the declarations of the scope. */
  decl: string;
  /** Signature of the state log when the stamp was written. */
  log: string;
  /** Digest of every tracked file's signature, in scope order. */
  files: string;
  /** Files whose stat could not vouch for their bytes: path and content hash. */
  racy: Array<[string, string]>;
}

export interface Tracked {
  decl: string;
  /** Every input and output of the scope's targets, once each, in dependency order. */
  paths: string[];
}

/** What the scope's decisions depend on besides file contents, or undefined if it cannot be stamped. */
export function trackedScope(s: StampScope): Tracked | undefined {
  const g = s.graph;
  const whole = s.closure.size === g.targets.length;
  const seen = new Set<string>();
  const paths: string[] = [];
  const track = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      paths.push(p);
    }
  };
  let text = `${VERSION}\n`;
  for (const name of g.order) {
    if (!whole && !s.closure.has(name)) continue;
    const t = g.byName.get(name)!;
    let env = '';
    for (const k of t.env) env += `${k}=${s.env[k] === undefined ? '\u0000unset' : s.env[k]}\u0001`;
    const f = [t.name, t.alias ? 'alias' : 'target', commandIdentity(t, s.moduleHash), t.paramsJson, t.rebuild, t.runOnFailure, t.cache, t.executor, t.pool ?? '', t.log ?? '', env, t.inputs.join('\u0001'), t.outputs.join('\u0001'), g.depsOf.get(name)!.join('\u0001')];
    text += f.join('\u0000') + '\n';
    if (t.alias) continue;
    for (const p of t.inputs) {
      if (isGlob(p) || p.endsWith('/')) return undefined;
      track(p);
    }
    for (const p of t.outputs) {
      if (p.endsWith('/')) return undefined;
      track(p);
    }
  }
  return { decl: sha256(text), paths };
}

function sigOf(st: FileStat | undefined): string {
  if (!st) return 'absent';
  return `${st.isFile ? 'f' : st.isDir ? 'd' : 'o'}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

function logSig(stateDir: string): string {
  const st = fs.statSync(path.join(stateDir, 'log.jsonl'), { bigint: true, throwIfNoEntry: false });
  return st ? `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}` : 'absent';
}

function readStamp(stateDir: string): Stamp | undefined {
  try {
    const s = JSON.parse(fs.readFileSync(path.join(stateDir, STAMP_FILE), 'utf8')) as Stamp;
    return s && s.v === VERSION && Array.isArray(s.racy) ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * True when the stamp vouches that every target of the scope is fresh: same declarations, same
 * state log, and every tracked file as the stamped build saw it. Reads and stats only.
 */
export function isSettled(stateDir: string, disk: Disk, tracked: Tracked): boolean {
  const s = readStamp(stateDir);
  if (!s || s.decl !== tracked.decl || s.log !== logSig(stateDir)) return false;
  const racy = new Map(s.racy);
  let text = '';
  for (const p of tracked.paths) {
    const want = racy.get(p);
    if (want === undefined) {
      text += `${p}\u0000${sigOf(disk.stat(p))}\n`;
      continue;
    }
    const st = disk.stat(p);
    if (!st?.isFile) return false;
    try {
      if (hashFileBytes(disk.abs(p), st.size, true) !== want) return false;
    } catch {
      return false;
    }
    text += `${p}\u0000racy\n`;
  }
  return sha256(text) === s.files;
}

/**
 * After a build whose every target of the scope ended fresh or built: stamp what its decisions saw.
 * Each file's signature is the stat the hasher took when it hashed the file for this build; a file
 * changed since then (an undeclared write by a later command) no longer matches it, so the next
 * build falls back to the full decision, which sees the change too.
 */
export function writeStamp(stateDir: string, hasher: Hasher, tracked: Tracked): boolean {
  const racy: Array<[string, string]> = [];
  let racyBytes = 0;
  let text = '';
  for (const p of tracked.paths) {
    const seen = hasher.seen(p);
    if (!seen) return false;
    if (seen.hash === MISSING) {
      text += `${p}\u0000absent\n`;
      continue;
    }
    const e = seen.entry;
    if (!e || e[5] !== seen.hash) return false;
    if (e[6] === 0) {
      racy.push([p, seen.hash]);
      racyBytes += e[2];
      if (racy.length > MAX_RACY_FILES || racyBytes > MAX_RACY_BYTES) return false;
      text += `${p}\u0000racy\n`;
      continue;
    }
    text += `${p}\u0000f:${e[0]}:${e[1]}:${e[2]}:${e[3]}:${e[4]}\n`;
  }
  const stamp: Stamp = { v: VERSION, decl: tracked.decl, log: logSig(stateDir), files: sha256(text), racy };
  writeFileAtomic(path.join(stateDir, STAMP_FILE), JSON.stringify(stamp));
  return true;
}

/** Before a build that may change records or files: the stamp no longer speaks for them. */
export function removeStamp(stateDir: string): void {
  fs.rmSync(path.join(stateDir, STAMP_FILE), { force: true });
}

function sha256(s: string): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}
