// The on-disk form of the build state (format 2): what one line of .hubmake/log.jsonl and the
// stat cache .hubmake/stat.json look like, and the conversions to and from the in-memory records
// of state.ts, which keep hex hashes and decimal-nanosecond timestamps as before.
//
// Why this form (issue 6: 100,000 targets, state under 300 bytes per target): format 1 repeated
// on every record the 71-character `action:<sha256>` command, the build id, `"params":"","env":{}`
// and the field names, and spelled sha256 in 64 hex digits; its stat cache repeated the device and
// spelled both timestamps as 19-digit strings. Format 2:
//  - every line is still one JSON value (a JSON array), so a line is whole or torn, never half
//    understood, and JSON.parse (native, the fastest parser we have) reads it;
//  - commands, params, env (as JSON text) and build ids go into a string table: a line
//    ["s", n, "text"] defines string #n, and is appended in the same write as the first record
//    that uses it, before that record, so a torn write can lose the definition only together with
//    the record; a record whose string is undefined (its definition damaged) is skipped as corrupt;
//  - hashes are base64url (43 characters instead of 64); any value that is not a lowercase hex
//    sha256 ('missing', 'no-match', a tree hash of another shape) is stored as '=' + the value;
//  - an output named like its target (the common case) is written as 0.
// Records:
//   ["v", 2]                                               header, written by compaction
//   ["s", n, text]                                         string #n
//   ["o", t, cmd#, params#, env#, b#, ms, in, out, degraded, job, node#]   success; in and out
//        are flat [path, hash, path, hash, ...]; the last three only when one of them is set
//   ["f", t, b#, ms, code, err, cmd#, job, node#]          failure; job and node# only when set
//   ["r", t, b#]                                           a run started
//   ["j", t, b#, jobId, fp, out]                           a batch job submitted
import type { StatEntry } from './hash.ts';
import type { PathHashes } from './path-hashes.ts';
import type { FailRecord, JobRecord, StartRecord, SuccessRecord } from './state.ts';

export const FORMAT = 2;

export type Rec = SuccessRecord | FailRecord | StartRecord | JobRecord;

// ---- hashes: hex in memory, base64url on disk ----

const HEX64 = /^[0-9a-f]{64}$/;
/** One scratch buffer: conversions are synchronous. Buffer.write + hexSlice measured ~0.2 µs per hash. */
const scratch = Buffer.allocUnsafe(48);

export function hashOut(v: string): string {
  if (v.length === 64 && HEX64.test(v)) {
    scratch.write(v, 0, 'hex');
    return scratch.toString('base64url', 0, 32);
  }
  return `=${v}`;
}

/**
 * Stored hash -> in-memory hash, shared by the log and the stat cache of one load. The same
 * content hash comes back many times (a target's output is its dependents' input, and the stat
 * cache holds it again): one hex string for all of them saves its conversion and 80 bytes of heap
 * for each repeat. 100,000 targets of bench/scale.ts, history + stat cache retained after load:
 * format 1 118.6 MB, format 2 without this 103.0 MB, with it 80.1 MB.
 */
export type HashMemo = Map<string, string>;

/** The in-memory value of a stored hash, or undefined when the stored value cannot be one. */
export function hashIn(s: unknown, memo?: HashMemo): string | undefined {
  if (typeof s !== 'string') return undefined;
  if (s.charCodeAt(0) === 61 /* = */) return s.slice(1);
  if (s.length !== 43) return undefined;
  const known = memo?.get(s);
  if (known !== undefined) return known;
  // Node's base64 decoder skips characters outside the alphabet: a short decode means damage.
  if (scratch.write(s, 0, 'base64url') !== 32) return undefined;
  const hex = scratch.toString('hex', 0, 32);
  memo?.set(s, hex);
  return hex;
}

// ---- the string table ----

/**
 * Strings by number, as defined so far in the log. The reverse index (for writing) is built on
 * the first append only: a no-op build never needs it.
 */
export class StringTable {
  readonly strings: Array<string | undefined> = [];
  private index: Map<string, number> | undefined;
  /** Parsed env objects by string number; records share them (nothing mutates a record's env). */
  private envs: Array<Record<string, string | null> | null | undefined> = [];

  define(n: unknown, text: unknown): boolean {
    if (typeof text !== 'string' || typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n >= 2 ** 30) return false;
    this.strings[n] = text;
    this.envs[n] = undefined;
    // A number defined again (after a write that failed half-way) may have meant another string.
    this.index = undefined;
    return true;
  }

  get(n: unknown): string | undefined {
    return typeof n === 'number' ? this.strings[n] : undefined;
  }

  /**
   * Numbers below n are taken (a narrowed build reads a few definitions of a log that has n):
   * what intern() defines next comes after them.
   */
  reserve(n: number): void {
    if (this.strings.length < n) this.strings.length = n;
  }

  /** One more than the highest number defined: the next one intern() would take. */
  get size(): number {
    return this.strings.length;
  }

  env(n: unknown): Record<string, string | null> | undefined {
    if (typeof n !== 'number') return undefined;
    const cached = this.envs[n];
    if (cached !== undefined) return cached ?? undefined;
    const text = this.strings[n];
    if (text === undefined) return undefined;
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch {
      v = null;
    }
    const ok = !!v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every((x) => typeof x === 'string' || x === null);
    this.envs[n] = ok ? (v as Record<string, string | null>) : null;
    return ok ? (v as Record<string, string | null>) : undefined;
  }

  /** The number of s, defining it (a line pushed on defs, a rollback entry on added) when new. */
  intern(s: string, defs: string[], added: string[]): number {
    if (!this.index) {
      this.index = new Map();
      this.strings.forEach((t, i) => t !== undefined && this.index!.set(t, i));
    }
    const have = this.index.get(s);
    if (have !== undefined) return have;
    const n = this.strings.length;
    this.strings.push(s);
    this.index.set(s, n);
    added.push(s);
    defs.push(JSON.stringify(['s', n, s]));
    return n;
  }

  /** Forgets strings interned for a write that failed: their definitions never reached the disk. */
  rollback(added: string[]): void {
    for (const s of added) this.index?.delete(s);
    this.strings.length -= added.length;
  }
}

// ---- records ----

function flatOut(p: PathHashes, self: string | undefined): Array<string | number> {
  const a: Array<string | number> = [];
  for (let i = 0; i < p.length; i += 2) a.push(p[i] === self ? 0 : p[i]!, hashOut(p[i + 1]!));
  return a;
}

/**
 * A stored list of inputs or outputs as the record's list (engine/path-hashes.ts): the very array
 * JSON.parse made, its 0s turned to the target's name and its hashes to hex, in place.
 */
function flatIn(a: unknown, self: string, memo: HashMemo | undefined): PathHashes | undefined {
  if (!Array.isArray(a) || a.length % 2 !== 0) return undefined;
  for (let i = 0; i < a.length; i += 2) {
    if (a[i] === 0) a[i] = self;
    else if (typeof a[i] !== 'string') return undefined;
    const v = hashIn(a[i + 1], memo);
    if (v === undefined) return undefined;
    a[i + 1] = v;
  }
  return a as PathHashes;
}

/** One record's line, with the definitions of the strings it introduces pushed on defs first. */
export function encodeRecord(r: Rec, table: StringTable, defs: string[], added: string[]): string {
  const id = (s: string) => table.intern(s, defs, added);
  switch (r.k) {
    case 'ok': {
      const a: unknown[] = ['o', r.t, id(r.cmd), id(r.params), id(JSON.stringify(r.env)), id(r.b), r.ms, flatOut(r.in, undefined), flatOut(r.out, r.t)];
      if (r.degraded || r.job !== undefined || r.node !== undefined) a.push(r.degraded ? 1 : 0, r.job ?? null, r.node === undefined ? null : id(r.node));
      return JSON.stringify(a);
    }
    case 'fail': {
      const a: unknown[] = ['f', r.t, id(r.b), r.ms, r.code ?? null, r.err, id(r.cmd)];
      if (r.job !== undefined || r.node !== undefined) a.push(r.job ?? null, r.node === undefined ? null : id(r.node));
      return JSON.stringify(a);
    }
    case 'start':
      return JSON.stringify(['r', r.t, id(r.b)]);
    case 'job':
      return JSON.stringify(['j', r.t, id(r.b), r.id, r.fp, r.out]);
  }
}

/**
 * The record of a parsed format-2 line; 'def' for a string definition or the header; undefined
 * when the line is damaged (a wrong shape, an undefined string, a hash that cannot be one).
 */
export function decodeRecord(a: unknown[], table: StringTable, memo?: HashMemo): Rec | 'def' | undefined {
  const t = a[1];
  switch (a[0]) {
    case 's':
      return table.define(a[1], a[2]) ? 'def' : undefined;
    case 'v':
      return 'def';
    case 'o': {
      if (typeof t !== 'string' || typeof a[6] !== 'number') return undefined;
      const cmd = table.get(a[2]);
      const params = table.get(a[3]);
      const env = table.env(a[4]);
      const b = table.get(a[5]);
      const inputs = flatIn(a[7], t, memo);
      const out = flatIn(a[8], t, memo);
      if (cmd === undefined || params === undefined || !env || b === undefined || !inputs || !out) return undefined;
      // Fields in the order the builder writes them: one object shape for every record.
      const r: SuccessRecord = { k: 'ok', t, cmd, params, env, in: inputs, out, ms: a[6], b };
      if (a.length > 9) {
        if (!takeJob(r, a[10], a[11], table)) return undefined;
        if (a[9] === 1) r.degraded = true;
      }
      return r;
    }
    case 'f': {
      const b = table.get(a[2]);
      const cmd = table.get(a[6]);
      const code = a[4];
      if (typeof t !== 'string' || b === undefined || cmd === undefined || typeof a[3] !== 'number' || typeof a[5] !== 'string' || (code !== null && typeof code !== 'number')) return undefined;
      const r: FailRecord = { k: 'fail', t, b, ms: a[3], code, err: a[5], cmd };
      if (a.length > 7 && !takeJob(r, a[7], a[8], table)) return undefined;
      return r;
    }
    case 'r': {
      const b = table.get(a[2]);
      if (typeof t !== 'string' || b === undefined) return undefined;
      return { k: 'start', t, b };
    }
    case 'j': {
      const b = table.get(a[2]);
      if (typeof t !== 'string' || b === undefined || typeof a[3] !== 'string' || typeof a[4] !== 'string' || typeof a[5] !== 'string') return undefined;
      return { k: 'job', t, b, id: a[3], fp: a[4], out: a[5] };
    }
  }
  return undefined;
}

/** A record's batch job id and node (string #) when present; false when either is damaged. */
function takeJob(r: SuccessRecord | FailRecord, job: unknown, nodeNo: unknown, table: StringTable): boolean {
  if (job !== null && typeof job !== 'string') return false;
  const node = nodeNo === null ? undefined : table.get(nodeNo);
  if (nodeNo !== null && node === undefined) return false;
  if (job !== null) r.job = job as string;
  if (node !== undefined) r.node = node;
  return true;
}

// ---- the stat cache ----
//
// {"v":2,"g":[[dev, baseSec, [path, ino, size, mSec, mNs, ctime, hash, trusted, path, ...]], ...]}
// One group per device (the device is written once, not on every entry). A timestamp is kept in
// memory as the decimal nanosecond string of the file system's bigint. On disk mtime is two JSON
// numbers: its seconds minus the group's oldest (baseSec), and its nanoseconds; ctime is its
// distance from mtime in ns (0 for a file not touched since it was written; exact below 2^53 ns,
// 104 days). A timestamp of another form (before 1970, a ctime 104 days from mtime as after
// `tar x`) is kept as its string: mSec is then the mtime string (mNs 0) and ctime the ctime
// string. Both come back as exactly the same strings, so the racy-mtime comparisons of hash.ts
// see what they saw before.

const NS = /^[1-9][0-9]{9,23}$/;

function secOf(t: string): number {
  return Number(t.slice(0, t.length - 9));
}

function fracOf(t: string): number {
  return Number(t.slice(t.length - 9));
}

function nsString(sec: number, frac: number): string {
  return `${sec}${String(frac).padStart(9, '0')}`;
}

/** (sec, frac) + delta ns, as the decimal string; undefined when it is not a timestamp of that form. */
function addNs(sec: number, frac: number, delta: unknown): string | undefined {
  if (typeof delta !== 'number' || !Number.isSafeInteger(delta)) return undefined;
  const total = frac + delta;
  let d = Math.floor(total / 1e9);
  let f = total - d * 1e9;
  // The division rounds near whole seconds at large totals: settle the remainder into [0, 1e9).
  if (f < 0) { d--; f += 1e9; }
  else if (f >= 1e9) { d++; f -= 1e9; }
  if (!Number.isSafeInteger(f) || sec + d < 1) return undefined;
  return nsString(sec + d, f);
}

export function encodeStat(cache: Map<string, StatEntry>): string {
  const groups = new Map<number, { base: number; flat: unknown[] }>();
  for (const e of cache.values()) {
    const g = groups.get(e[0]);
    const s = NS.test(e[3]) ? secOf(e[3]) : Infinity;
    if (!g) groups.set(e[0], { base: s, flat: [] });
    else if (s < g.base) g.base = s;
  }
  for (const g of groups.values()) if (g.base === Infinity) g.base = 0;
  for (const [p, e] of cache) {
    const [dev, ino, size, mt, ct, hash, trusted] = e;
    const g = groups.get(dev)!;
    let ms: string | number = mt;
    let mf = 0;
    let c: string | number = ct;
    if (NS.test(mt)) {
      const sec = secOf(mt);
      ms = sec - g.base;
      mf = fracOf(mt);
      const d = ct === mt ? 0 : NS.test(ct) ? (secOf(ct) - sec) * 1e9 + (fracOf(ct) - mf) : NaN;
      if (Number.isSafeInteger(d)) c = d;
    }
    g.flat.push(p, ino, size, ms, mf, c, hashOut(hash), trusted);
  }
  return JSON.stringify({ v: FORMAT, g: [...groups].map(([dev, g]) => [dev, g.base, g.flat]) });
}

/** The entries of a parsed stat cache of format 2; entries of a wrong shape are left out (re-hashed). */
export function decodeStat(obj: { g?: unknown }, into: Map<string, StatEntry>, memo?: HashMemo): void {
  if (!Array.isArray(obj.g)) return;
  for (const g of obj.g as unknown[]) {
    if (!Array.isArray(g) || typeof g[0] !== 'number' || typeof g[1] !== 'number' || !Array.isArray(g[2])) continue;
    const dev = g[0];
    const base = g[1];
    const f = g[2] as unknown[];
    for (let i = 0; i + 8 <= f.length; i += 8) {
      const p = f[i];
      const ino = f[i + 1];
      const size = f[i + 2];
      const ms = f[i + 3];
      const mf = f[i + 4];
      const c = f[i + 5];
      const trusted = f[i + 7];
      if (typeof p !== 'string' || typeof ino !== 'number' || typeof size !== 'number' || (trusted !== 0 && trusted !== 1)) continue;
      let mt: string | undefined;
      let ct: string | undefined;
      if (typeof ms === 'string') mt = ms;
      else if (typeof ms === 'number' && typeof mf === 'number' && mf >= 0 && mf < 1e9) mt = addNs(base + ms, mf, 0);
      if (mt === undefined) continue;
      if (typeof c === 'string') ct = c;
      else if (c === 0) ct = mt;
      else if (typeof ms === 'number') ct = addNs(base + ms, mf as number, c);
      const hash = hashIn(f[i + 6], memo);
      if (ct === undefined || hash === undefined) continue;
      into.set(p, [dev, ino, size, mt, ct, hash, trusted]);
    }
  }
}
