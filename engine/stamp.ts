// The settled stamp: a whole-build early exit for the commonest answer, "nothing to do".
//
// After a build in which every target of the goals ended fresh or built, the session writes a
// stamp. It holds a key for everything the build's decisions were derived from besides files: the
// specs exactly as the targets module returned them, the module's own sources (action identity),
// the goals on the command line, and the values of the declared environment variables. It also
// holds the stat signature of every input and output as the build saw it when it hashed it, the
// kind and inode of every directory that outputs and logs are written through, and the signature
// of the state log. The next build whose key matches stats those paths; if none moved, every
// target would be decided fresh again (the stat cache's own reasoning), so the build ends before
// validating the specs, reading the log or the stat cache, or deciding target by target.
//
// When some paths moved, the stamp still names them: the session then decides only the targets
// that read or write one of them, and everything downstream; every other target of the goals is
// fresh for the reason above (its files are as its record says, and nothing upstream of it runs).
//
// It only ever answers "these targets are fresh". Any doubt falls back to the full path:
// - no stamp, or one of another version;
// - specs that cannot be serialised (they fail validation anyway);
// - another key or state log;
// - a directory input or output: a tree is not one stat, so such goals get no stamp;
// - a glob input whose match set may have changed: a stamp watches every directory under the
//   pattern's fixed prefix (their mtime moves when an entry is added, removed or renamed), and
//   any change in a graph with globs is decided per target;
// - a file written too recently for its stat to vouch for its bytes (git's racy timestamps).
//   A few of those are compared by content instead.
// Validation is skipped only when the specs are identical to a validated set's, and the paths it
// inspects (outputs, logs, their directories) are unchanged. The check reads and stats; it writes
// nothing, so it needs no lock: a build in progress removed the stamp before changing anything.
// When what a decision reads changes, VERSION must change with it.
import fs from 'node:fs';
import path from 'node:path';
import { firstLine, statSig, writeFileAtomic, type Disk, type FileStat } from './disk.ts';
import { sha256 } from './fingerprint.ts';
import { goalTargets, type Graph } from './graph.ts';
import { hashFileBytes, MISSING, racy, sameList, type Hasher, type StatEntry } from './hash.ts';
import { isGlob } from './spec.ts';
import { LOG } from './state.ts';
import type { ModuleRecord } from './module-record.ts';

const VERSION = 8;
export const STAMP_FILE = 'settled.stamp';
/** Where stamps of format 6 and before were written (one JSON document): removed with the stamp. */
const OLD_STAMP_FILE = 'settled.json';
/** Racy files are compared by content on every check; past these, no stamp is written (the next full no-op re-hashes them and writes one). */
const MAX_RACY_FILES = 256;
const MAX_RACY_BYTES = 64 << 20;
/** Directories, and entries read, for glob inputs; a pattern over a bigger tree is decided per target. */
const MAX_GLOB_DIRS = 2000;
const MAX_GLOB_ENTRIES = 50_000;

/** What a build answered by the stamp reports: its goals, its targets, and the non-alias ones in order. */
export interface SettledAnswer {
  goals: string[];
  targets: number;
  names: string[];
}

/**
 * The stamp file: this head as one line of JSON, then one record per tracked path, each
 * `<kind>\0<signature>\0<path>\0`, which the native probe (engine/stamp-probe.c) reads without
 * parsing JSON, and which the build parses only when it needs the paths themselves.
 */
export interface StampHead extends SettledAnswer {
  v: number;
  key: string;
  /** Signature of the state log when the stamp was written. */
  log: string;
  /** How many path records follow the head. */
  count: number;
  /** Glob inputs: every directory under their fixed prefixes, and their signatures. */
  dirs: string[];
  dirSigs: string[];
  /** Outputs' and logs' directories, and the logs: validation's write checks look at them. */
  guarded: string[];
  /** Digest of their kinds and inodes. */
  guards: string;
  /** What the targets module's evaluation read, one record per runtime (engine/module-record.ts): while one holds, the key is this one. */
  modules?: ModuleRecord[];
  /** Record lines in the state log, and how many of them were live at the last full build: a narrowed build reads only some, and leaves compaction to a full one. */
  logLines?: number;
  live?: number;
  /** The state log's string table: the next number a string gets. */
  strings?: number;
  /** The module's hash (an action's identity): a narrowed build that does not run the module takes it from here. */
  moduleHash?: string;
}

/**
 * One path record. Paths: the inputs and outputs of the goals' targets, once each, in dependency
 * order. Kind: 'o' for an output (looked at without following a symlink), 'i' else. Signature:
 * `f:dev:ino:size:mtimeNs:ctimeNs`, `absent`, or `racy:<sha256>` for a file whose stat could not
 * vouch for its bytes (compared by content).
 */
export interface PathRecord {
  kind: string;
  sig: string;
  path: string;
}

/** A stamp as read: its head, the file's signature before the read, and its records undecoded. */
export interface StampFile {
  head: StampHead;
  self: string;
  file: string;
  /**
   * The path records' bytes, read when first asked for: the probe reads them itself, and a no-op
   * it confirms whole never needs them (three quarters of the file at 10,000 targets). Undefined
   * when the file is no longer the one whose head was read.
   */
  records(): Buffer | undefined;
}

/** The stamp's word on a build with its key: the paths that moved since (none: settled). */
export interface StampCheck {
  answer: SettledAnswer;
  changed: string[];
  /** Their numbers among the stamp's path records. */
  movedAt: number[];
  /**
   * Every unchanged path's signature, for the next stamp (the build does not hash those paths).
   * An unchanged output was seen not to be a symlink. Made when asked: a no-op never needs it.
   */
  carried: () => Map<string, string>;
  /** How many paths the native probe confirmed (undefined: it did not answer, or was not asked). */
  confirmed?: number;
  /** The stamp file's own signature and the state log's, as the check saw them. */
  self: string;
  log: string;
}

export interface KeyInput {
  root: string;
  /** The targets module's export, evaluated, before validation. */
  specs: unknown;
  moduleHash: string;
  /** Goals as given on the command line. */
  goals: string[];
  /** `-D` definitions (they reach the decisions only through the specs; kept in the key all the same). */
  defines: Record<string, string>;
  env: NodeJS.ProcessEnv;
}

/** JSON.stringify cannot see it: no key, so no stamp, for specs holding one. */
class Unfaithful extends Error {}

/**
 * The key of a set of declarations, or undefined when the specs cannot be serialised faithfully.
 * Functions count by their source. Values JSON cannot tell apart from valid ones (NaN from null,
 * an array hole from `undefined`) are marked, so that specs validation would refuse never share a
 * key with specs it accepted. An object JSON would not show whole (a class instance, a Date, a
 * property that is not enumerable or is keyed by a symbol) gives no key at all: validation reads
 * fields JSON does not.
 */
export function stampKey(k: KeyInput): string | undefined {
  if (!Array.isArray(k.specs)) return undefined;
  let specs = plainSpecsText(k.specs);
  if (specs === undefined) try {
    specs = 'marked\u0000' + JSON.stringify(k.specs, function (this: Record<string, unknown>, key: string, value: unknown) {
      const raw = this[key];
      switch (typeof raw) {
        case 'function': return `\u0000fn ${raw.toString()}`;
        case 'bigint': return `\u0000bigint ${raw}`;
        case 'symbol': return `\u0000symbol ${String(raw)}`;
        case 'undefined': return key in this ? '\u0000undefined' : '\u0000hole';
        case 'number': return Number.isFinite(raw) ? raw : `\u0000number ${raw}`;
        case 'object':
          if (raw === null || (Array.isArray(raw) ? Object.getPrototypeOf(raw) === Array.prototype : isPlainObject(raw))) return value;
          throw new Unfaithful();
        default: return value;
      }
    });
  } catch {
    return undefined; // an unfaithful object, a cycle, a throwing getter: decide per target
  }
  let env = '';
  for (const s of k.specs as Array<{ env?: unknown }>) {
    if (!s || !Array.isArray(s.env)) continue;
    for (const n of s.env) if (typeof n === 'string') env += `${n}=${k.env[n] ?? '\u0000unset'}\u0000`;
  }
  return sha256(`${VERSION}\u0000${k.root}\u0000${k.moduleHash}\u0000${JSON.stringify(k.goals)}\u0000${JSON.stringify(k.defines)}\u0000${env}\u0000${specs}`);
}

/**
 * The usual specs (plain objects, arrays and JSON values; `run` may be a function) as text without
 * a replacer: calling back into JavaScript for every value tripled the key's cost (~32 against
 * ~12 ms for 10,000 specs in a fresh process). Undefined when anything else is found, or the
 * nesting is deep enough to be a cycle: the marking replacer decides then.
 */
function plainSpecsText(specs: unknown[]): string | undefined {
  let fns = '';
  for (let i = 0; i < specs.length; i++) {
    if (!(i in specs)) return undefined;
    const s = specs[i];
    if (!isPlainObject(s)) return undefined;
    for (const name in s) {
      const v = (s as Record<string, unknown>)[name];
      if (name === 'run' && typeof v === 'function') fns += `${i}\u0000${v.toString()}\u0000`;
      else if (!plainValue(v, 0)) return undefined;
    }
  }
  return `json\u0000${JSON.stringify(specs)}\u0000${fns}`;
}

function isPlainObject(v: unknown): v is object {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  if (proto !== Object.prototype && proto !== null) return false;
  return Object.getOwnPropertyNames(v).length === Object.keys(v).length && Object.getOwnPropertySymbols(v).length === 0;
}

function plainValue(v: unknown, depth: number): boolean {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(v);
    case 'object': {
      if (v === null) return true;
      if (depth > 32) return false;
      if (Array.isArray(v)) {
        if (Object.getPrototypeOf(v) !== Array.prototype) return false;
        for (let i = 0; i < v.length; i++) if (!(i in v) || !plainValue(v[i], depth + 1)) return false;
        return true;
      }
      if (!isPlainObject(v)) return false;
      for (const name in v) if (!plainValue((v as Record<string, unknown>)[name], depth + 1)) return false;
      return true;
    }
    default:
      return false;
  }
}

export interface Tracked extends Omit<SettledAnswer, 'goals'> {
  paths: string[];
  /** The outputs among them. */
  outputs: string[];
  guarded: string[];
  /** Glob inputs, the fixed directory each is matched under, and how deep below it (undefined: any). */
  globs: Array<{ pattern: string; base: string; depth: number | undefined }>;
  /**
   * Read back from the stamp a narrowed build checked (engine/narrow.ts): each path's kind and,
   * unless it moved, its signature, in the order of `paths`. They stand for `carried`.
   */
  from?: { kinds: string[]; sigs: Array<string | undefined> };
}

/**
 * Where a glob is matched: the directory of its leading segments without pattern syntax, and how
 * many levels below it the pattern can reach (undefined: any, for `**`). Undefined when there is
 * no such directory (a pattern from the root walks the whole tree), or the pattern holds `.` or
 * `..` segments, even inside braces (fast-glob would match outside the directory).
 */
export function globBase(pattern: string): { base: string; depth: number | undefined } | undefined {
  const segs = pattern.split('/');
  if (segs.some((s) => s === '' || s === '.' || s.includes('..') || /(^|[{,])\.($|[,}/])/.test(s))) return undefined;
  const fixed: string[] = [];
  for (const s of segs) {
    if (/[*?[\]{}()!+@\\]/.test(s)) break;
    fixed.push(s);
  }
  if (!fixed.length || fixed.length === segs.length) return undefined;
  const rest = segs.slice(fixed.length);
  // Every '/' after the base may open a level (brace alternatives included): a depth that is
  // never too small.
  return { base: fixed.join('/'), depth: rest.some((s) => s.includes('**')) ? undefined : rest.length - 1 };
}

/** The paths a stamp of these goals watches, or undefined when they cannot be stamped (directories, globs from the root). */
export function trackedScope(g: Graph, closure: Set<string>): Tracked | undefined {
  const seen = new Set<string>();
  const paths: string[] = [];
  const guarded = new Set<string>();
  const names: string[] = [];
  const outputs: string[] = [];
  const globs = new Map<string, { base: string; depth: number | undefined }>();
  const track = (p: string) => {
    if (!seen.has(p)) {
      seen.add(p);
      paths.push(p);
    }
  };
  const guard = (p: string) => {
    for (let d = path.posix.dirname(p); d !== '.' && d !== '/' && !guarded.has(d); d = path.posix.dirname(d)) guarded.add(d);
  };
  for (const t of goalTargets(g, closure)) {
    names.push(t.name);
    for (const p of t.inputs) {
      if (p.endsWith('/')) return undefined;
      if (isGlob(p)) {
        const where = globBase(p);
        if (where === undefined) return undefined;
        globs.set(p, where);
      } else track(p);
    }
    for (const p of t.outputs) {
      if (p.endsWith('/')) return undefined;
      track(p);
      outputs.push(p);
      guard(p);
    }
    if (t.log) {
      guarded.add(t.log);
      guard(t.log);
    }
  }
  return { paths, outputs, guarded: [...guarded].sort(), names, targets: closure.size, globs: [...globs].map(([pattern, where]) => ({ pattern, ...where })) };
}

/** A file's signature from the stat cache entry it was hashed through: `f:dev:ino:size:mtimeNs:ctimeNs`. */
function sigOfEntry(e: StatEntry): string {
  return `f:${e[0]}:${e[1]}:${e[2]}:${e[3]}:${e[4]}`;
}

/** The stat cache entry a file's signature stands for, with its content's hash (engine/narrow.ts); undefined for any other signature. */
export function entryOfSig(sig: string, hash: string): StatEntry | undefined {
  const s = sig.split(':');
  return s.length === 6 && s[0] === 'f' ? [Number(s[1]), Number(s[2]), Number(s[3]), s[4]!, s[5]!, hash, 1] : undefined;
}

function sigOf(st: FileStat | undefined): string {
  if (!st) return 'absent';
  return `${st.isFile ? 'f' : st.isDir ? 'd' : 'o'}:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
}

/** Digest of the guarded paths' kinds and inodes; undefined when one cannot be looked at. */
function guardsOf(disk: Disk, guarded: string[]): string | undefined {
  let text = '';
  for (const p of guarded) {
    let st: ReturnType<Disk['lstat']>;
    try {
      st = disk.lstat(p);
    } catch {
      return undefined; // EACCES, ELOOP...: validation will name it
    }
    text += `${p}\u0000${st ? `${st.kind}:${st.dev}:${st.ino}` : 'absent'}\n`;
  }
  return sha256(text);
}

/** A state file's signature: any rewrite (rename) or append changes it. */
function fileSig(stateDir: string, name: string): string {
  const st = fs.statSync(path.join(stateDir, name), { bigint: true, throwIfNoEntry: false });
  return st ? statSig(st) : 'absent';
}

const strings = (x: unknown): x is string[] => Array.isArray(x) && x.every((e) => typeof e === 'string');

/** The stamp on disk, or undefined when there is none of this version. Reads only. */
export function readStamp(stateDir: string): StampFile | undefined {
  const file = path.join(stateDir, STAMP_FILE);
  let self: string;
  let head: StampHead;
  let at: number;
  let fd: number | undefined;
  try {
    // Opened without blocking and looked at through its descriptor: something other than a file
    // in its place (a FIFO would block the read) is no stamp, and the signature is this file's.
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const st = fs.fstatSync(fd, { bigint: true });
    if (!st.isFile()) return undefined;
    self = statSig(st);
    const first = firstLine(fd, Number(st.size));
    if (!first) return undefined;
    at = first.at;
    head = JSON.parse(first.text) as StampHead;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) fs.closeSync(fd);
  }
  const s = head;
  const ok = s && s.v === VERSION && typeof s.key === 'string' && typeof s.log === 'string' && Number.isSafeInteger(s.count) && s.count >= 0 && strings(s.dirs) && strings(s.dirSigs) && s.dirSigs.length === s.dirs.length && strings(s.guarded) && typeof s.guards === 'string' && strings(s.goals) && strings(s.names) && typeof s.targets === 'number';
  let records: Buffer | null | undefined;
  const readRecords = (): Buffer | undefined => {
    if (records === undefined) {
      records = null;
      let rfd: number | undefined;
      try {
        // The same file, or none: another build may have replaced it since its head was read.
        rfd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
        const st = fs.fstatSync(rfd, { bigint: true });
        if (st.isFile() && statSig(st) === self) records = fs.readFileSync(rfd).subarray(at);
      } catch {
        // unreadable now: no records
      } finally {
        if (rfd !== undefined) fs.closeSync(rfd);
      }
    }
    return records ?? undefined;
  };
  return ok ? { head, self, file, records: readRecords } : undefined;
}

/** A stamp file's text. JSON.stringify escapes every newline inside strings: the first one ends the head. */
export function stampText(head: Omit<StampHead, 'count'>, records: PathRecord[]): string {
  return textOf(head, records.map((r) => r.path), records.map((r) => r.kind), records.map((r) => r.sig));
}

/** The same from parallel lists: no object per record. */
function textOf(head: Omit<StampHead, 'count'>, paths: string[], kinds: string[], sigs: string[]): string {
  // Appended to one string (V8 keeps the pieces as a rope, flattened once on write): ~3x faster
  // than joining a list of 11,000 pieces here.
  let text = `${JSON.stringify({ ...head, count: paths.length })}\n`;
  for (let i = 0; i < paths.length; i++) text += `${kinds[i]!}\0${sigs[i]!}\0${paths[i]!}\0`;
  return text;
}

/**
 * The stamp's records as one flat list, kind, signature and path of record i at 3i, 3i+1 and 3i+2
 * (no object per record), or undefined when they are not the number its head says.
 */
export function fieldsOf(s: StampFile): string[] | undefined {
  let fields = decoded.get(s);
  if (!fields) {
    const records = s.records();
    if (!records) return undefined;
    fields = records.toString('utf8').split('\0');
    decoded.set(s, fields);
  }
  return fields.length === 3 * s.head.count + 1 && fields[fields.length - 1] === '' ? fields : undefined;
}
/** Decoded once per stamp read: the check and a narrowed build both need them. */
const decoded = new WeakMap<StampFile, string[]>();

/** The stamp's path records (tests, and a look by hand), or undefined when they are not the number its head says. */
export function recordsOf(s: StampFile): PathRecord[] | undefined {
  const f = fieldsOf(s);
  if (!f) return undefined;
  const out: PathRecord[] = [];
  for (let i = 0; i + 2 < f.length; i += 3) out.push({ kind: f[i]!, sig: f[i + 1]!, path: f[i + 2]! });
  return out;
}

/**
 * What the stamp says of a build with this key: the paths that moved since it was written (empty
 * when every target is fresh), or undefined when it cannot speak for this build at all (another
 * key or state log, a directory outputs are written through changed). Reads and stats only.
 * `stamp`: the stamp as read earlier (engine/cli.ts reads it before importing the targets module).
 * `unconfirmed`: the native probe's answer (engine/stamp-probe.ts), the records whose stat it did
 * not find exactly as recorded; only those are looked at here. Without it, all are.
 */
export function checkStamp(stateDir: string, disk: Disk, key: string, stamp = readStamp(stateDir), unconfirmed?: Set<number>): StampCheck | undefined {
  if (!stamp) return undefined;
  const s = stamp.head;
  const guards = s.key === key && s.log === fileSig(stateDir, LOG) ? guardsOf(disk, s.guarded) : undefined;
  if (guards === undefined || guards !== s.guards) return undefined;
  // A glob's match set is as the stamp says while no directory under its fixed prefix moved. A
  // graph with globs is answered whole or decided per target: which targets a new match reaches
  // is the rebuilder's to say.
  for (let i = 0; i < s.dirs.length; i++) {
    let st: FileStat | 'link' | undefined;
    try {
      st = disk.lstatFull(s.dirs[i]!);
    } catch {
      return undefined;
    }
    if (st === 'link' || !st?.isDir || sigOf(st) !== s.dirSigs[i]) return undefined;
  }
  const answer = { goals: s.goals, targets: s.targets, names: s.names };
  const confirmed = unconfirmed ? { confirmed: s.count - unconfirmed.size } : {};
  let fields: string[] | undefined;
  const moved = new Set<number>();
  // Every unmoved path's signature, for the next stamp: built only when one is written.
  const carried = () => {
    const m = new Map<string, string>();
    const f = (fields ??= fieldsOf(stamp)) ?? [];
    for (let i = 0; 3 * i + 2 < f.length; i++) if (!moved.has(i)) m.set(f[3 * i + 2]!, f[3 * i + 1]!);
    return m;
  };
  // Everything confirmed: the records need not even be decoded.
  if (unconfirmed?.size === 0) return { answer, changed: [], movedAt: [], carried, ...confirmed, self: stamp.self, log: s.log };
  fields = fieldsOf(stamp);
  if (!fields) return undefined;
  const changed: string[] = [];
  // The probe's leftovers, or every record without it, in the stamp's order.
  const look = unconfirmed ? [...unconfirmed].sort((a, b) => a - b) : undefined;
  for (let n = 0, end = look ? look.length : s.count; n < end; n++) {
    const i = look ? look[n]! : n;
    const kind = fields[3 * i]!;
    const want = fields[3 * i + 1]!;
    const p = fields[3 * i + 2]!;
    let st: FileStat | undefined;
    try {
      // An output is looked at as itself: one that has become a symlink leads where the stamp does
      // not watch, and validation must see it (as many stats as following it: no extra call).
      if (kind === 'o') {
        const own = disk.lstatFull(p);
        if (own === 'link') return undefined;
        st = own;
      } else st = disk.stat(p);
    } catch {
      return undefined; // a symlink loop, no permission: validation will name it
    }
    let same: boolean;
    if (want.startsWith('racy:')) {
      try {
        same = !!st?.isFile && `racy:${hashFileBytes(disk.abs(p), st.size, true)}` === want;
      } catch {
        same = false;
      }
    } else same = sigOf(st) === want;
    if (same) continue;
    if (s.dirs.length) return undefined;
    changed.push(p);
    moved.add(i);
  }
  return { answer, changed, movedAt: [...moved], carried, ...confirmed, self: stamp.self, log: s.log };
}

/**
 * Nothing has been recorded since the check and its stamp is still the one on disk. A build that
 * holds the lock without using the stamp (HUBMAKE_NOOP_SHORTCUT=off, --restore) leaves the stamp
 * alone but appends to the log.
 */
export function stampUnchanged(stateDir: string, check: StampCheck): boolean {
  return fileSig(stateDir, STAMP_FILE) === check.self && fileSig(stateDir, LOG) === check.log;
}

/**
 * After a build whose every target of the goals ended fresh or built: stamp what its decisions saw.
 * Each file's signature is the stat the hasher took when it hashed the file for this build; a file
 * changed since then (an undeclared write by a later command) no longer matches it, so the next
 * build decides its targets again, and sees the change too. A path this build did not hash (its
 * targets were known fresh) keeps the signature the build's stamp check saw (`carried`). False
 * when no stamp is written.
 */
export function writeStamp(stateDir: string, disk: Disk, hasher: Hasher, key: string, goals: string[], tracked: Tracked, more: { carried?: Map<string, string> | undefined; modules?: ModuleRecord[] | undefined; log?: { lines: number; live: number; strings: number }; moduleHash?: string } = {}): boolean {
  const { carried, modules } = more;
  const from = tracked.from;
  // An output, a log or a directory of theirs that is a symlink resolves through directories the
  // stamp does not watch, and validation checks where it leads: such goals are decided (and
  // validated) every time. What keeps a stamp from answering over a symlinked output is
  // checkStamp, which lstat's every output at every check. Here a stamp is not written when it
  // is already known it could never answer: an output this build hashed, or one the check did not
  // see, is a link. A carried output (seen by the check, not hashed since) is not looked at again:
  // an lstat per output cost ~40 ms of a 10,000-target touch build, and a command that made one
  // a link undeclared leaves a stamp the next check refuses (test: stamp.test.ts).
  for (const p of tracked.outputs) if ((hasher.seen(p) !== undefined || (!from && !carried?.has(p))) && maybeLink(disk, p)) return false;
  for (const p of tracked.guarded) if (maybeLink(disk, p)) return false;
  const guards = guardsOf(disk, tracked.guarded);
  if (guards === undefined) return false;
  const globs = globsNow(disk, hasher, tracked);
  if (!globs) return false;
  const paths = [...tracked.paths, ...globs.matches];
  const sigs: string[] = [];
  let racy = 0;
  let racyBytes = 0;
  for (let i = 0; i < paths.length; i++) {
    const p = paths[i]!;
    const seen = hasher.seen(p);
    if (!seen) {
      const c = from ? from.sigs[i] : carried?.get(p);
      if (c === undefined) return false;
      if (c.startsWith('racy:') && ++racy > MAX_RACY_FILES) return false;
      sigs.push(c);
      continue;
    }
    if (seen.hash === MISSING) {
      sigs.push('absent');
      continue;
    }
    const e = seen.entry;
    if (!e || e[5] !== seen.hash) return false;
    if (e[6] === 0) {
      racyBytes += e[2];
      if (++racy > MAX_RACY_FILES || racyBytes > MAX_RACY_BYTES) return false;
      sigs.push(`racy:${seen.hash}`);
      continue;
    }
    sigs.push(sigOfEntry(e));
  }
  const head: Omit<StampHead, 'count'> = {
    v: VERSION,
    key,
    log: fileSig(stateDir, LOG),
    dirs: globs.dirs,
    dirSigs: globs.dirSigs,
    guarded: tracked.guarded,
    guards,
    goals,
    targets: tracked.targets,
    names: tracked.names,
    ...(modules?.length ? { modules } : {}),
    ...(more.log ? { logLines: more.log.lines, live: more.log.live, strings: more.log.strings } : {}),
    ...(more.moduleHash !== undefined ? { moduleHash: more.moduleHash } : {}),
  };
  const outs = from ? undefined : new Set(tracked.outputs);
  const kinds = from ? from.kinds : paths.map((p) => (outs!.has(p) ? 'o' : 'i'));
  writeFileAtomic(path.join(stateDir, STAMP_FILE), textOf(head, paths, kinds, sigs));
  return true;
}

/**
 * Puts module records in the stamp a no-op was answered by (its build could not make one for this
 * runtime), so that the next build need not run the module. Only under the build lock, and only when the stamp
 * and the log are still the ones checked: otherwise a build has been (or is) at work, and the
 * stamp it leaves is its own. False when nothing was written.
 */
export function addModuleRecords(stateDir: string, stamp: StampFile, check: StampCheck, modules: ModuleRecord[]): boolean {
  if (!stampUnchanged(stateDir, check)) return false;
  const head = `${JSON.stringify({ ...stamp.head, modules })}\n`;
  const records = stamp.records();
  if (!records) return false;
  writeFileAtomic(stamp.file, Buffer.concat([Buffer.from(head), records]));
  return true;
}

/**
 * The targets of the goals a check's changed paths leave fresh: all but those that read or write a
 * changed path and everything downstream of them (file links and declared deps alike).
 */
export function knownFresh(g: Graph, closure: Set<string>, changed: string[]): Set<string> {
  const moved = new Set(changed);
  const affected = new Set<string>();
  const stack: string[] = [];
  for (const n of closure) {
    const t = g.byName.get(n)!;
    if (t.inputs.some((p) => moved.has(p)) || t.outputs.some((p) => moved.has(p))) stack.push(n);
  }
  while (stack.length) {
    const n = stack.pop()!;
    if (affected.has(n) || !closure.has(n)) continue;
    affected.add(n);
    for (const d of g.dependentsOf.get(n)!) stack.push(d);
  }
  const fresh = new Set<string>();
  for (const n of closure) if (!affected.has(n)) fresh.add(n);
  return fresh;
}

/**
 * What a stamp watches for the glob inputs: every directory under their fixed prefixes, stat'ed
 * first, then each pattern listed again, which must give the match set the build's decisions used
 * (a file added since would otherwise hide behind a directory signature taken after it). The
 * matches are tracked as inputs. Undefined when the globs cannot be stamped: a symlinked or
 * missing prefix or directory (fast-glob follows links), a directory changed within the racy
 * window, more than MAX_GLOB_DIRS directories, or a match set that changed during the build.
 */
function globsNow(disk: Disk, hasher: Hasher, tracked: Tracked): { dirs: string[]; dirSigs: string[]; matches: string[] } | undefined {
  const none = { dirs: [], dirSigs: [], matches: [] };
  if (!tracked.globs.length) return none;
  // Each directory is stat'ed before it is read: an entry added after the stat moves its
  // signature, so no subdirectory can appear unseen between reading a directory and stat'ing it.
  const sigs = new Map<string, string>();
  const depthOf = new Map<string, number>();
  const stack: Array<{ dir: string; left: number }> = tracked.globs.map((g) => ({ dir: g.base, left: g.depth ?? Infinity }));
  const now = disk.nowNs();
  let entries = 0;
  try {
    while (stack.length) {
      const { dir, left } = stack.pop()!;
      if ((depthOf.get(dir) ?? -1) >= left) continue;
      depthOf.set(dir, left);
      if (!sigs.has(dir)) {
        const st = disk.lstatFull(dir);
        if (st === undefined || st === 'link' || !st.isDir) return undefined;
        if (racy(st, now)) return undefined;
        sigs.set(dir, sigOf(st));
        if (sigs.size > MAX_GLOB_DIRS) return undefined;
      }
      for (const e of disk.entries(dir)) {
        if (++entries > MAX_GLOB_ENTRIES) return undefined;
        // fast-glob follows symlinks, to wherever they lead now or later (a dangling one may
        // resolve tomorrow): not watchable here.
        if (e.kind === 'link') return undefined;
        if (e.kind === 'dir' && left > 0) stack.push({ dir: `${dir}/${e.name}`, left: left - 1 });
      }
    }
    const matches = new Set<string>();
    const tracked0 = new Set(tracked.paths);
    for (const { pattern, base } of tracked.globs) {
      const used = hasher.listing(pattern);
      if (!used || !sameList(hasher.listGlob(pattern), used)) return undefined;
      for (const m of used) {
        if (!path.posix.normalize(m).startsWith(`${base}/`)) return undefined;
        if (!tracked0.has(m)) matches.add(m);
      }
    }
    const dirs = [...sigs.keys()].sort();
    return { dirs, dirSigs: dirs.map((d) => sigs.get(d)!), matches: [...matches] };
  } catch {
    return undefined; // a prefix that is missing or unreadable: decided per target
  }
}

function maybeLink(disk: Disk, p: string): boolean {
  try {
    return disk.lstat(p)?.kind === 'link';
  } catch {
    return true;
  }
}

/** Before a build that may change records or files: the stamp no longer speaks for them. */
export function removeStamp(stateDir: string): void {
  for (const name of [STAMP_FILE, OLD_STAMP_FILE]) {
    try {
      fs.rmSync(path.join(stateDir, name), { force: true });
    } catch {
      // Not a file we can remove (a directory someone made there): it is not a stamp either, and
      // readStamp finds none in it.
    }
  }
}

