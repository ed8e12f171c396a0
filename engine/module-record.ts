// The module record: what the targets module's evaluation read, so that a later build can tell
// without running it that it would return the same specs, and take the stamp's key as it is.
//
// Ninja regenerates build.ninja only when the generator's recorded inputs change; Gradle's
// configuration cache reuses a configuration while the files, environment variables and system
// properties its configuration read are unchanged. This is the same idea for a targets module,
// which is a program: while it is imported and run (and while the stamp's key is computed, which
// calls its getters), everything through which its result could depend on the world is watched:
// - every module file loaded (ES modules through a loader hook, CommonJS through require), by its
//   stat and its sha256;
// - every file read, directory listed, path stat'ed, checked or resolved through the synchronous
//   node:fs calls, by a digest of what the call returned (or the error it threw);
// - every environment variable read (an enumeration of the environment takes in all of them);
//   process.argv and the working directory when it looks at them; what os.* answered;
// - the runtime (Node's version and flags, the variables it reads at start-up, the time zone and
//   locale, the terminals, the user).
// Whatever it does that cannot be replayed by looking again refuses the record, and every build
// then runs the module as before: asynchronous or writing fs calls, child processes, workers,
// sockets, fetch, the clock, randomness, changing the environment, and any use of a module that
// was loaded before the evaluation began (its functions may hold fs functions taken before the
// watch began, whose reads would go unseen). What the evaluation wrote to stdout and stderr is
// kept, and written again when a build skips it.
//
// This module is the record and its check; engine/module-watch.ts makes one. Known limits are
// stated in the README (*The module record*): a file under node_modules that a package loaded
// before the evaluation reads (npm's node_modules/.package-lock.json stands in for installs), a
// network file system's clock more than SETTLE_MS behind, and code written to deceive it.
import fs from 'node:fs';
import os from 'node:os';
import tty from 'node:tty';
import { statSig } from './disk.ts';
import { sha256 } from './fingerprint.ts';

export const RECORD_VERSION = 1;
/**
 * A module file changed this recently before its evaluation began may have changed after the
 * loader read it: no record (the next build makes one). Wide enough for a file system's coarsest
 * timestamps (2 s).
 */
export const SETTLE_MS = 2000;

/** As kept in the stamp's head. */
export interface ModuleRecord {
  v: number;
  /** The command line's root, module, goals and definitions, which the stamp's key holds too. */
  invocation: string;
  /** Node's version, platform, arch, flags and entry script. */
  runtime: string;
  /** [kind, path or name, digest] of each observation, in the order made (see observe()). */
  seen: Array<[string, string, string]>;
  /** What the evaluation wrote: [1 (stdout) or 2 (stderr), text]. */
  output: Array<[number, string]>;
}

/** The originals, taken when this module loads: the check must not go through a watch. */
export const real = {
  readFileSync: fs.readFileSync,
  existsSync: fs.existsSync,
  statSync: fs.statSync,
  lstatSync: fs.lstatSync,
  readdirSync: fs.readdirSync,
  realpathSync: fs.realpathSync,
  accessSync: fs.accessSync,
  readlinkSync: fs.readlinkSync,
};

export function runtime(): string {
  // The time zone and locale too, where they come from (asking Intl costs ~11 ms of ICU start):
  // a date formatted from a fixed time depends on them.
  const e = process.env;
  let zone: string;
  try {
    zone = real.readlinkSync('/etc/localtime');
  } catch (err) {
    zone = errDigest(err);
  }
  // Variables Node and tsx read at start-up, before any proxy (NODE_OPTIONS's --conditions,
  // NODE_PATH, TSX_TSCONFIG_PATH): they change what an import resolves to.
  const startup = Object.keys(e).filter((k) => k.startsWith('NODE_') || k.startsWith('TSX_')).sort().map((k) => `${k}=${e[k]}`);
  // Whether stdin, stdout and stderr are terminals (a module may choose colours by it), and the
  // terminal's width; who runs it.
  const ttys = [0, 1, 2].map((fd) => tty.isatty(fd));
  const who = [process.getuid?.(), process.geteuid?.(), process.getgid?.(), process.getegid?.(), process.getgroups?.()];
  return JSON.stringify([process.version, process.platform, process.arch, process.execArgv, process.execPath, process.argv0, process.argv[1] ?? '', e.TZ, e.LC_ALL, e.LC_TIME, e.LC_MESSAGES, e.LANG, zone, startup, ttys, process.stdout.columns, who]);
}

export function errDigest(e: unknown): string {
  const code = (e as NodeJS.ErrnoException)?.code;
  return `err:${typeof code === 'string' ? code : 'other'}`;
}

/** A stat that threw ENOENT and one asked not to throw (`throwIfNoEntry: false`) saw the same. */
export function statErrDigest(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code === 'ENOENT' ? 'absent' : errDigest(e);
}

export function statDigest(st: fs.Stats | undefined): string {
  if (!st) return 'absent';
  return `${st.dev}:${st.ino}:${st.mode}:${st.nlink}:${st.uid}:${st.gid}:${st.rdev}:${st.size}:${st.mtimeMs}:${st.ctimeMs}:${st.birthtimeMs}`;
}

export function direntsDigest(list: Array<string | fs.Dirent>): string {
  return sha256(list.map((d) => (typeof d === 'string' ? d : `${d.name}\0${d.isFile() ? 'f' : d.isDirectory() ? 'd' : d.isSymbolicLink() ? 'l' : 'o'}`)).join('\0'));
}

/** A module file's stat signature. */
export function moduleStat(p: string): string {
  try {
    return statSig(real.statSync(p, { bigint: true }));
  } catch (e) {
    return errDigest(e);
  }
}

/** A module file's content's sha256 (read only when its stat moved: a touch alone does not refuse). */
export function moduleContent(p: string): string {
  try {
    return sha256(real.readFileSync(p));
  } catch (e) {
    return errDigest(e);
  }
}

export const OS_FACTS = ['arch', 'availableParallelism', 'cpus', 'endianness', 'freemem', 'homedir', 'hostname', 'loadavg', 'machine', 'networkInterfaces', 'platform', 'release', 'tmpdir', 'totalmem', 'type', 'uptime', 'userInfo', 'version'] as const;

/**
 * Looks again: the digest an observation of this kind gives now. `m` (module file) is compared by
 * signature first (engine/module-record.ts checkRecord); every other kind is the digest of what the
 * same call returns.
 */
export function observe(kind: string, p: string): string {
  try {
    switch (kind) {
      case 'r': return sha256(real.readFileSync(p));
      case 'e': return String(real.existsSync(p));
      case 's': return statDigest(real.statSync(p, { throwIfNoEntry: false }));
      case 'l': return statDigest(real.lstatSync(p, { throwIfNoEntry: false }));
      case 'd': return direntsDigest(real.readdirSync(p));
      case 'D': return direntsDigest(real.readdirSync(p, { withFileTypes: true }));
      case 'p': return real.realpathSync(p);
      case 'k': return real.readlinkSync(p);
      case 'env': return process.env[p] ?? '\0unset';
      case 'envall': return envAll();
      case 'argv': return JSON.stringify(process.argv.slice(2));
      case 'cwd': return process.cwd();
      case 'os': return osDigest(p, (os as unknown as Record<string, () => unknown>)[p]!());
      default:
        if (kind.startsWith('a')) {
          real.accessSync(p, Number(kind.slice(1)));
          return 'ok';
        }
        return '\0unknown kind';
    }
  } catch (e) {
    return errDigest(e);
  }
}

/** What os.* answered; for cpus() the count and models only (their times move every moment). */
export function osDigest(name: string, r: unknown): string {
  return JSON.stringify(name === 'cpus' && Array.isArray(r) ? r.map((c: { model?: string; speed?: number }) => c.model) : r);
}

export function envAll(env: NodeJS.ProcessEnv = process.env): string {
  return sha256(Object.keys(env).sort().map((k) => `${k}=${env[k]}`).join('\0'));
}

/** Whether the world still looks as the record says. Reads and stats only; false on any doubt. */
export function checkRecord(r: unknown, invocation: string, rt = runtime()): r is ModuleRecord {
  try {
    const rec = r as ModuleRecord;
    if (!rec || rec.v !== RECORD_VERSION || rec.invocation !== invocation || rec.runtime !== rt || !Array.isArray(rec.seen) || !Array.isArray(rec.output)) return false;
    for (const [kind, p, want] of rec.seen) {
      if (typeof p !== 'string' || typeof want !== 'string') return false;
      if (kind === 'm') {
        const [sig, content] = want.split(' ');
        if (moduleStat(p) !== sig && moduleContent(p) !== content) return false;
        continue;
      }
      if (observe(kind, p) !== want) return false;
    }
    return rec.output.every((o) => Array.isArray(o) && (o[0] === 1 || o[0] === 2) && typeof o[1] === 'string');
  } catch {
    return false;
  }
}

/**
 * The record among a stamp's that stands for this build: made by this runtime for this command
 * line, and still true of the world. Each runtime keeps its own (`npx tsx` and `node --import tsx`
 * load through different flags), so that builds taking turns do not undo each other's.
 */
export function standingRecord(list: unknown, invocation: string): ModuleRecord | undefined {
  if (!Array.isArray(list)) return undefined;
  const rt = runtime();
  for (const r of list) if ((r as ModuleRecord)?.runtime === rt && checkRecord(r, invocation, rt)) return r;
  return undefined;
}

/** How many runtimes' records a stamp keeps. */
const MAX_RECORDS = 4;

/** A stamp's records with this one in place of the one of its runtime and command line, newest first. */
export function withRecord(list: unknown, rec: ModuleRecord): ModuleRecord[] {
  const others = Array.isArray(list) ? list.filter((r): r is ModuleRecord => typeof r?.runtime === 'string' && typeof r?.invocation === 'string' && !(r.runtime === rec.runtime && r.invocation === rec.invocation)) : [];
  return [rec, ...others].slice(0, MAX_RECORDS);
}

/** Writes again what the evaluation wrote, in its order. */
export function replayOutput(r: ModuleRecord): void {
  for (const [fd, text] of r.output) (fd === 1 ? process.stdout : process.stderr).write(text);
}
