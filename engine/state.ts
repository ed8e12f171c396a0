// Records of runs, kept as an append-only log (like Ninja's .ninja_log): one JSON line per event,
// written with a single append as each target starts and finishes, so a kill at any moment loses
// at most the records of the targets that were running. A torn or corrupt line is skipped with a
// warning; the affected target then simply looks stale. The log is compacted (temp + rename) at
// the end of a build. The stat cache lives beside it and is only an optimisation.
// The lines are of format 2 (state-codec.ts: JSON arrays, a string table, base64url hashes).
// Format 1 lines (one JSON object per record) still load, so that an upgrade does not make every
// target stale, and the next build's compaction rewrites such a log in format 2.
import { writeFileAtomic } from './disk.ts';
import fs from 'node:fs';
import path from 'node:path';
import type { FingerprintParts } from './fingerprint.ts';
import { pathHashes, type PathHashes } from './path-hashes.ts';
import type { StatEntry } from './hash.ts';
import { decodeRecord, decodeStat, encodeRecord, encodeStat, FORMAT, StringTable, type HashMemo, type Rec } from './state-codec.ts';

export type { Rec as StateRecord } from './state-codec.ts';

export const STATE_DIR = '.hubmake';
/** The append-only log of records, under STATE_DIR. */
export const LOG = 'log.jsonl';
const STAT = 'stat.json';

/** The last successful run of a target. */
export interface SuccessRecord {
  k: 'ok';
  t: string;
  cmd: string;
  params: string;
  env: Record<string, string | null>;
  /** Input path, hash, ... (engine/path-hashes.ts): glob matches one by one, `glob:<pattern>` for none. */
  in: PathHashes;
  /** Output path, hash, ... */
  out: PathHashes;
  ms: number;
  /** The build that produced these outputs. */
  b: string;
  /** Ran while some of its dependencies had failed (runOnFailure targets). */
  degraded?: true;
  /** Batch job (Slurm) that produced the outputs, and the node it ran on. */
  job?: string;
  node?: string;
}

export interface FailRecord {
  k: 'fail';
  t: string;
  b: string;
  ms: number;
  code: number | null;
  err: string;
  cmd: string;
  /** Batch job (Slurm) of the failed attempt, and the node it ran on. */
  job?: string;
  node?: string;
}

export interface StartRecord {
  k: 'start';
  t: string;
  b: string;
}

/**
 * A job submitted to a batch system (Slurm) for a target, written right after submission so that
 * a build killed while the job runs lets the next build adopt or cancel it instead of submitting
 * a duplicate. Superseded by the target's next ok/fail record.
 */
export interface JobRecord {
  k: 'job';
  t: string;
  b: string;
  /** The batch system's job id. */
  id: string;
  /** Fingerprint digest of the target when the job was submitted: adopt only if it still matches. */
  fp: string;
  /** The job's output file, relative to the root, copied into the target's log. */
  out: string;
}

/** A line of format 1. */
type Line = SuccessRecord | FailRecord | StartRecord | JobRecord | { k: 'v'; v: number };

export interface TargetHistory {
  ok?: SuccessRecord;
  /** The last attempt, when it did not succeed. */
  fail?: FailRecord;
  /** A run started and never recorded its end. */
  unfinished?: StartRecord;
  /** A batch job submitted for the target whose result no ok/fail record has taken in yet. */
  job?: JobRecord;
}

export function partsOf(r: SuccessRecord): FingerprintParts {
  return { command: r.cmd, params: r.params, env: r.env, inputs: r.in };
}

export class StateStore {
  readonly dir: string;
  readonly history = new Map<string, TargetHistory>();
  readonly warnings: string[] = [];
  private lines = 0;
  private fd: number | undefined;
  /** String definition (and header) lines in the log, counted apart from record lines. */
  private defLines = 0;
  /** Corrupt lines were skipped on load: rewrite the log at the end so the warning is given once. */
  private damaged = false;
  /** Format 1 lines were loaded: rewrite the log in format 2 at the end of the build. */
  private legacy = false;
  /** Loaded for some targets only: the log is never rewritten from what is known. */
  private partial = false;
  /** The strings the log's records refer to by number. */
  private table = new StringTable();
  /** Hashes decoded by load(), shared with loadStatCache(), which drops them (state-codec.ts). */
  private hashes: HashMemo | undefined;

  constructor(root: string) {
    this.dir = path.join(root, STATE_DIR);
  }

  /**
   * Reads the log. `some`: a narrowed build's (engine/narrow.ts): the names of the targets whose
   * records it needs, and the log's record lines and string numbers as its stamp counted them.
   * Only those records are read (when they can be found by name), and the store then never
   * compacts the log: it does not know every record.
   */
  load(some?: { names: string[]; lines: number; strings: number }): void {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(path.join(this.dir, LOG));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') this.warnings.push(`cannot read state: ${(e as Error).message}; every target looks stale`);
      return;
    }
    this.hashes = new Map();
    const table = new StringTable();
    const found = some && parseLogSome(bytes, table, this.hashes, some.names);
    if (found) {
      this.table = table;
      this.table.reserve(some.strings);
      for (const rec of found) this.take(rec);
      this.lines = some.lines;
      this.partial = true;
      return;
    }
    const r = parseLog(bytes.toString('utf8'), this.table, (rec) => this.take(rec), this.hashes);
    this.lines += r.lines;
    this.defLines += r.defs;
    this.legacy = r.legacy;
    const bad = r.bad;
    if (bad) this.damaged = true;
    if (bad) this.warnings.push(`state file ${path.join(STATE_DIR, LOG)} has ${bad} corrupt line(s); the targets they described will be treated as stale`);
  }

  /** A record's effect on its target's history, in log order. */
  private take(rec: Rec): void {
    const h = this.history.get(rec.t) ?? {};
    if (rec.k === 'start') h.unfinished = rec;
    else if (rec.k === 'ok') {
      h.ok = rec;
      delete h.fail;
      delete h.unfinished;
      delete h.job;
    } else if (rec.k === 'fail') {
      h.fail = rec;
      delete h.unfinished;
      delete h.job;
    } else h.job = rec;
    this.history.set(rec.t, h);
  }

  private open(): number {
    if (this.fd === undefined) {
      fs.mkdirSync(this.dir, { recursive: true });
      this.fd = fs.openSync(path.join(this.dir, LOG), 'a');
    }
    return this.fd;
  }

  /** One write per record: a line is either wholly in the log or (after a kill mid-write) torn and skipped. */
  private append(rec: Rec): void {
    // The definitions of the strings the record introduces go in the same write, before it: a
    // torn write loses them only together with the record.
    const defs: string[] = [];
    const added: string[] = [];
    const line = encodeRecord(rec, this.table, defs, added);
    defs.push(line);
    // A previous build killed mid-line leaves no newline; start on a fresh line so both survive.
    const buf = Buffer.from(`\n${defs.join('\n')}\n`);
    try {
      const fd = this.open();
      for (let off = 0; off < buf.length; ) off += fs.writeSync(fd, buf, off);
    } catch (e) {
      // Strings whose definitions did not reach the disk must be defined again by the next record.
      this.table.rollback(added);
      // Disk full or read-only: the target fails naming the state file (and the next build
      // treats it as not built, since its record is missing).
      throw new Error(`cannot record to the build state ${path.join(STATE_DIR, LOG)}: ${(e as Error).message}`);
    }
    this.lines += 1;
    this.defLines += defs.length - 1;
  }

  recordStart(t: string, b: string): void {
    const rec: StartRecord = { k: 'start', t, b };
    this.append(rec);
    const h = this.history.get(t) ?? {};
    h.unfinished = rec;
    this.history.set(t, h);
  }

  recordJob(rec: JobRecord): void {
    this.append(rec);
    const h = this.history.get(rec.t) ?? {};
    h.job = rec;
    this.history.set(rec.t, h);
  }

  recordSuccess(rec: SuccessRecord): void {
    this.append(rec);
    this.history.set(rec.t, { ok: rec });
  }

  recordFailure(rec: FailRecord): void {
    this.append(rec);
    const h = this.history.get(rec.t) ?? {};
    h.fail = rec;
    delete h.unfinished;
    delete h.job;
    this.history.set(rec.t, h);
  }

  /** Rewrites the log with one entry per target when it has grown well past that. */
  compact(): void {
    if (this.partial) return;
    const live = this.liveRecords();
    // A build that ran many targets leaves a start line beside each record: compact once a fifth of
    // the log is dead, so that the next start reads (and the disk holds) ~one line per target.
    // Strings are counted apart from records: a graph whose every command is its own string holds
    // about one definition per record, which is live, not dead weight (counting both together
    // rewrote such a log at the end of every build, no-ops included). They are counted exactly
    // only when they have grown well past the records.
    const deadRecords = this.lines > live + live / 4 + 100;
    const deadStrings = this.defLines > live + live / 4 + 100 && this.defLines > this.liveStrings() * 1.25 + 100;
    if (!this.damaged && !this.legacy && !deadRecords && !deadStrings) return;
    // A fresh string table: strings no live record uses (old build ids, old commands) are dropped.
    const table = new StringTable();
    const out: string[] = [JSON.stringify(['v', FORMAT])];
    const added: string[] = [];
    for (const h of this.history.values()) {
      for (const r of [h.ok, h.fail, h.unfinished, h.job]) {
        if (!r) continue;
        const line = encodeRecord(r, table, out, added);
        out.push(line);
      }
    }
    this.close();
    writeFileAtomic(path.join(this.dir, LOG), out.join('\n') + '\n');
    this.table = table;
    // out: the header, a definition per string added, and the records.
    this.defLines = 1 + added.length;
    this.lines = out.length - 1 - added.length;
    this.damaged = false;
    this.legacy = false;
  }

  /** Record lines in the log, and the live ones among them (undefined: loaded for some targets only). */
  counts(): { lines: number; live: number | undefined; strings: number } {
    return { lines: this.lines, live: this.partial ? undefined : this.liveRecords(), strings: this.table.size };
  }

  private liveRecords(): number {
    let live = 0;
    for (const h of this.history.values()) live += (h.ok ? 1 : 0) + (h.fail ? 1 : 0) + (h.unfinished ? 1 : 0) + (h.job ? 1 : 0);
    return live;
  }

  /** Distinct strings the live records use: what a compacted log would define. */
  private liveStrings(): number {
    const s = new Set<string>();
    for (const h of this.history.values()) {
      for (const r of [h.ok, h.fail, h.unfinished, h.job]) {
        if (!r) continue;
        s.add(r.b);
        if (r.k === 'ok' || r.k === 'fail') s.add(r.cmd);
        if (r.k === 'ok') s.add(r.params).add(JSON.stringify(r.env));
        if ((r.k === 'ok' || r.k === 'fail') && r.node !== undefined) s.add(r.node);
      }
    }
    return s.size;
  }

  close(): void {
    if (this.fd !== undefined) fs.closeSync(this.fd);
    this.fd = undefined;
  }

  loadStatCache(): Map<string, StatEntry> {
    const cache = new Map<string, StatEntry>();
    const memo = this.hashes ?? new Map();
    this.hashes = undefined;
    try {
      const obj = JSON.parse(fs.readFileSync(path.join(this.dir, STAT), 'utf8')) as unknown;
      if (!obj || typeof obj !== 'object') return cache;
      if ((obj as { v?: unknown }).v === FORMAT) {
        decodeStat(obj as { g?: unknown }, cache, memo);
        return cache;
      }
      // Format 1: { path: StatEntry }, kept until the next save rewrites it (re-hashing a
      // dataset because hubmake was upgraded would take hours). Entries of a wrong shape are
      // left out, so that saving never meets them. for-in rather than Object.entries: no array
      // of 100,000 pairs on the way (-17 MB peak, a bit faster).
      const o = obj as Record<string, unknown>;
      for (const k in o) if (isStatEntry(o[k])) cache.set(k, o[k]);
      return cache;
    } catch {
      // Unreadable or damaged: an empty cache only means re-hashing.
      return new Map();
    }
  }

  saveStatCache(cache: Map<string, StatEntry>): void {
    fs.mkdirSync(this.dir, { recursive: true });
    writeFileAtomic(path.join(this.dir, STAT), encodeStat(cache));
  }
}

// A line can be valid JSON and still corrupt (a hand edit, a bit flip inside a string): every
// field the rebuilder and the reporters read is checked, so such a record is skipped (its target
// looks stale) instead of crashing the build later.
function isSuccess(r: { cmd: unknown; params: unknown; in: unknown; out: unknown; env: unknown; b: unknown }): boolean {
  return typeof r.cmd === 'string' && typeof r.params === 'string' && stringMap(r.in) && stringMap(r.out) && stringMap(r.env, true) && typeof r.b === 'string';
}

/**
 * The history the rebuilder may compare with: a success record whose params differ from the
 * current ones and are not JSON (damaged) is dropped, so the target is rebuilt instead of the
 * comparison failing. Checked only when the params differ: loading stays one pass.
 */
export function comparableHistory(h: TargetHistory | undefined, paramsNow: string): TargetHistory | undefined {
  if (!h?.ok || h.ok.params === paramsNow || isJsonOrEmpty(h.ok.params)) return h;
  const { ok: _damaged, ...rest } = h;
  return rest;
}

/**
 * Every record of a log's text, in order, through onRecord (superseded ones too); the number of
 * lines understood and of damaged ones, and whether any was of format 1.
 */
function parseLog(text: string, table: StringTable, onRecord: (r: Rec) => void, memo?: HashMemo): { lines: number; defs: number; bad: number; legacy: boolean } {
  let lines = 0;
  let defs = 0;
  let bad = 0;
  let legacy = false;
  // One JSON.parse per line: measured faster than one parse of the joined lines (0.34-0.41 s vs
  // 0.50-0.62 s for 100,000 records) and without a second copy of the log in memory (135 vs 265 MB peak).
  for (const raw of text.split('\n')) {
    if (!raw) continue;
    let parsed: unknown;
    try {
      parsed = JSON.parse(raw);
    } catch {
      bad++;
      continue;
    }
    let rec: Rec | 'def' | undefined;
    if (Array.isArray(parsed)) rec = decodeRecord(parsed, table, memo);
    else {
      rec = legacyRecord(parsed);
      legacy = true;
    }
    if (rec === undefined) { bad++; continue; }
    if (rec === 'def') defs++;
    else {
      lines++;
      onRecord(rec);
    }
  }
  return { lines, defs, bad, legacy };
}

/**
 * The records of some targets only, for a narrowed build (engine/narrow.ts), in log order, their
 * strings defined in `table`: two regular expression scans of the log seen as latin1 (one
 * character per byte, a copy without decoding, so that offsets in the text are offsets in the
 * bytes), each line found decoded as UTF-8. ~5 ms at 10,000 targets against ~45 for the whole
 * log. Undefined, and the whole log is read, when a line found is not as JSON.stringify wrote
 * it, a string it uses is defined more than once (after a write that failed half-way), or the
 * names are too many for one regular expression (an alternation of thousands compiles slowly,
 * and past some size not at all).
 */
function parseLogSome(bytes: Buffer, table: StringTable, memo: HashMemo, names: string[]): Rec[] | undefined {
  if (names.length > SOME_MAX) return undefined;
  const text = bytes.toString('latin1');
  const alt = (xs: string[]) => xs.map((x) => x.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const lines = (re: RegExp) => [...text.matchAll(re)].map((m) => bytes.toString('utf8', m.index, m.index + m[0].length));
  const parse = (raw: string) => {
    const a = JSON.parse(raw) as unknown;
    if (!Array.isArray(a)) throw new SyntaxError('not a record');
    return a;
  };
  try {
    const wanted = names.map((n) => Buffer.from(JSON.stringify(n)).toString('latin1'));
    const found: unknown[][] = [];
    const used = new Set<number>();
    for (const raw of lines(new RegExp(`^\\["[ofrj]",(?:${alt(wanted)}),.*$`, 'gm'))) {
      const a = parse(raw);
      found.push(a);
      // The string numbers a record refers to (state-codec.ts, "Records").
      for (const i of a[0] === 'o' ? [2, 3, 4, 5, 11] : a[0] === 'f' ? [2, 6, 8] : [2]) if (typeof a[i] === 'number') used.add(a[i] as number);
    }
    const defined = new Set<number>();
    if (used.size) {
      for (const raw of lines(new RegExp(`^\\["s",(?:${[...used].join('|')}),.*$`, 'gm'))) {
        const a = parse(raw);
        if (defined.has(a[1] as number) || decodeRecord(a, table, memo) !== 'def') return undefined;
        defined.add(a[1] as number);
      }
    }
    const records: Rec[] = [];
    for (const a of found) {
      const rec = decodeRecord(a, table, memo);
      if (rec === undefined || rec === 'def') return undefined;
      records.push(rec);
    }
    return records;
  } catch {
    return undefined; // a damaged line, or a regular expression too large for the engine
  }
}

/** The most targets whose records are looked for by name: past it, a narrowed build reads the whole log. */
const SOME_MAX = 2000;

/**
 * Every record in the state log of root, in the order written, superseded ones included (a job
 * record before the success that took its result in): for tests and for looking into a log by
 * hand, which is no longer readable record by record now that strings are numbered.
 */
export function logRecords(root: string): Rec[] {
  const out: Rec[] = [];
  let text = '';
  try {
    text = fs.readFileSync(path.join(root, STATE_DIR, LOG), 'utf8');
  } catch {
    return out;
  }
  parseLog(text, new StringTable(), (r) => out.push(r));
  return out;
}

/** A format 1 line's record; 'def' for its header; undefined when it is damaged. */
function legacyRecord(v: unknown): Rec | 'def' | undefined {
  if (!v || typeof v !== 'object' || typeof (v as { k?: unknown }).k !== 'string') return undefined;
  const rec = v as Line;
  if (rec.k === 'v') return 'def';
  if (typeof rec.t !== 'string') return undefined;
  if (rec.k === 'start') return typeof rec.b === 'string' ? rec : undefined;
  if (rec.k === 'ok') {
    // Format 1 kept inputs and outputs as objects.
    const r = rec as unknown as Omit<SuccessRecord, 'in' | 'out'> & { in: unknown; out: unknown };
    return isSuccess(r) ? { ...r, in: pathHashes(r.in as Record<string, string>), out: pathHashes(r.out as Record<string, string>) } : undefined;
  }
  if (rec.k === 'fail') return isFailure(rec) ? rec : undefined;
  if (rec.k === 'job') return typeof rec.id === 'string' && typeof rec.fp === 'string' && typeof rec.out === 'string' && typeof rec.b === 'string' ? rec : undefined;
  return undefined;
}

function isStatEntry(e: unknown): e is StatEntry {
  return Array.isArray(e) && e.length === 7 && typeof e[0] === 'number' && typeof e[1] === 'number' && typeof e[2] === 'number' && typeof e[3] === 'string' && typeof e[4] === 'string' && typeof e[5] === 'string' && (e[6] === 0 || e[6] === 1);
}

function isFailure(r: FailRecord): boolean {
  return typeof r.b === 'string' && typeof r.err === 'string' && (r.code === null || r.code === undefined || typeof r.code === 'number');
}

function stringMap(v: unknown, nullable = false): boolean {
  if (!v || typeof v !== 'object' || Array.isArray(v)) return false;
  return Object.values(v).every((x) => typeof x === 'string' || (nullable && x === null));
}

function isJsonOrEmpty(s: string): boolean {
  if (s === '') return true;
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}

