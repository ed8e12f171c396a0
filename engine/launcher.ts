// The command launcher: a small long-lived process that starts the build's commands, so the
// build's node process never forks per command. Two programs speak its protocol: the C one
// (engine/launcher.c, spawning with posix_spawn; compiled by `npm install` where a C compiler is)
// and the bash script below, the fallback. What follows is the bash launcher's story; the C
// launcher writes the same frames and gives the commands the same environment.
//
// Why a launcher: libuv forks synchronously on node's main thread, and a fork copies the page tables of the whole process: 1.3 ms from a 54 MB node, 2.6 ms from a
// 300 MB one, ~3.6 ms per command in a 10,000-target build — the main thread was saturated and
// -j2 did not help. A fork of a 4 MB bash is a fraction of that and happens in another process.
//
// Why bash and not a small node process relaying output frames: bench/spawn.ts measured both
// (see its table in bench/README.md); a node launcher still forks a ~45 MB process per command and
// copies every output byte twice, bash forks a few MB and lets the command write straight into the
// pipe the build reads.
//
// One launcher runs one command at a time (a pool keeps as many as commands run at once), so its
// stdout can be the command's stdout and stderr; the launcher writes its frames into the same
// pipe, after the command has exited, so the frame that ends a command follows all of its output:
//   <token>B\n         a command starts (bytes from here on are its output)
//   <token>P<pid>\n    its pid, which is also its process group (`set -m`: each job its own group)
//   <token>J<jobs -l>\n  from the SIGCHLD trap: whether it exited or was killed by a signal —
//                      `wait` alone says 128+n for both, `jobs -l` says "Exit 137" or "Killed"
//   <token>E<status>\n its status from `wait`
// The token is random per launcher and reaches it on stdin (never in argv, which anyone can read),
// so no command's output forges a frame by accident. A command has ended once its process group
// no longer holds the pipe open (see settle), as child_process's 'close' waited for all holders.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { nativeProgram } from './native.ts';
import { HAS_PROC, pgidOf, procState } from './proc.ts';

/** What a command run through the launcher ended with, as child_process reports it. */
export interface LaunchExit {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  /** A signal node has no name for (the real-time ones, 34-64): its number. */
  signalNumber?: number;
}

export interface LaunchJob {
  cmd: string;
  onOutput: (chunk: Buffer) => void;
  onPid: (pid: number) => void;
}

/**
 * Variables bash itself changes at start-up (SHLVL counts up, PWD is set to the real directory,
 * LC_ALL is set to C below), or that the launcher must not see (BASH_ENV, a file any
 * non-interactive bash sources first): each command gets them back as the build passed them.
 */
const RESTORED = ['SHLVL', 'LC_ALL', 'PWD', 'OLDPWD', 'BASH_ENV'] as const;

/**
 * Which launcher starts the commands: the native one (engine/launcher.c, compiled by `npm install`
 * into dist/engine/hubmake-launcher) or the bash script below. Both speak the same frames.
 */
export type LauncherProgram = { kind: 'native'; path: string } | { kind: 'bash' };

/**
 * The launcher for a build's commands, or undefined when they are spawned directly:
 * HUBMAKE_LAUNCHER=off, or the bash launcher in an environment it cannot pass on (launchable).
 * HUBMAKE_LAUNCHER=bash uses the bash launcher although the native one is built.
 */
export function launcherFor(env: NodeJS.ProcessEnv): LauncherProgram | undefined {
  if (env.HUBMAKE_LAUNCHER === 'off') return undefined;
  if (env.HUBMAKE_LAUNCHER !== 'bash') {
    const native = nativeProgram(LAUNCHER_NAME, 'launcher.c');
    if (native) return { kind: 'native', path: native };
  }
  return launchable(env) ? { kind: 'bash' } : undefined;
}

/**
 * Whether the bash launcher can give its commands exactly this environment. Not when it holds what
 * changes the launcher bash itself: SHELLOPTS/BASHOPTS (options it would apply, then export
 * changed: job control on), POSIXLY_CORRECT, or exported functions (they would shadow the
 * builtins it uses, and come back re-serialised). Such builds spawn their commands directly.
 */
export function launchable(env: NodeJS.ProcessEnv): boolean {
  return !Object.keys(env).some((k) => k === 'SHELLOPTS' || k === 'BASHOPTS' || k === 'POSIXLY_CORRECT' || k.startsWith('BASH_FUNC_'));
}

/**
 * The launcher's script. Positional parameters carry its own state, and one variable of a name no
 * environment holds (__hubmake_cmd): any variable it assigned could be one the environment exports,
 * and would then change the commands' environment. $1 token, $2 the orphan mark (HUBMAKE_RUN) for the commands only — the launcher
 * itself must not carry it, or the next build would take it for an orphaned command — then one
 * parameter per RESTORED variable ('u' unset, 's<value>'). The launcher runs in the C locale so
 * that `jobs -l` says "Done"/"Exit N" in English.
 */
const ARGS = 2 + RESTORED.length;
/** Exported for bench/spawn.ts, which runs it without node to measure what it costs alone. */
export const SCRIPT = [
  // The token comes first on stdin, not in argv: /proc/<pid>/cmdline is readable by anyone, and a
  // command printing it (cat /proc/$PPID/cmdline) would otherwise write a frame's prefix.
  "IFS= read -r -d '' __hubmake_cmd || exit",
  'set -- "$__hubmake_cmd" "$@"',
  // The physical working directory, for a simple command's PWD when the build's PWD does not
  // name it (as a bash started there would set it).
  '__hubmake_cwd=$(pwd -P)',
  'LC_ALL=C',
  'set -m',
  // `jobs -l` prints nothing when bash has already dropped the job (measured: 1 in 300 quick
  // commands), so the J frame is closed by a K frame of its own rather than by jobs' newline.
  `trap 'printf "%sJ" "$1"; jobs -l; printf "%sK\\n" "$1"' CHLD`,
  "while IFS= read -r -d '' __hubmake_cmd; do",
  '  printf "%sB\\n" "$1"',
  // One line (no if/then): `jobs -l` prints the job's text, and the J frame is one line. A simple
  // command whose program cannot be found or is not an executable file goes to bash as any other
  // command does, so that its message and status are bash's ("command not found", 127) and not
  // those of a failed exec in the launcher.
  `  ( ${RESTORED.map((v, i) => `[[ $${i + 3} == u ]] && unset ${v} || export ${v}="\${${i + 3}:1}"; `).join('')}export HUBMAKE_RUN="$2"; [[ \${__hubmake_cmd:0:1} == x ]] && __hubmake_prog=\${__hubmake_cmd:1} && __hubmake_prog=\${__hubmake_prog%% *} && { [[ $__hubmake_prog == */* ]] && [[ -f $__hubmake_prog && -x $__hubmake_prog ]] || { [[ $__hubmake_prog != */* ]] && hash "$__hubmake_prog" 2>/dev/null; }; } && { [[ $PWD -ef . ]] || export PWD=$__hubmake_cwd; export SHLVL=\${SHLVL:-0}; exec \${__hubmake_cmd:1}; }; exec /bin/bash -c "set -eo pipefail;\${__hubmake_cmd:1}" ) </dev/null 2>&1 3<&- &`,
  '  printf "%sP%s\\n" "$1" "$!"',
  // With job control, `wait` also returns when the command is stopped (SIGSTOP), and at once
  // again while it stays stopped: wait until it has ended, looking every 50 ms (a read from fd 3,
  // a pipe the build never writes to, is the sleep that needs no fork).
  // The status is kept as one more positional parameter (no function: in one, and so in the
  // SIGCHLD trap run while it waits, $1 would be its own argument, not the token).
  `  while :; do wait "$!"; set -- "\${@:1:${ARGS}}" "$?"; [[ -d /proc/$! ]] || break; read -t 0.05 -u 3 __hubmake_cmd; done`,
  `  printf "%sE%s\\n" "$1" "\${${ARGS + 1}}"`,
  'done',
].join('\n');

/** Words of plain characters separated by single spaces: no quoting, expansion, redirection or operator. */
const WORDS = '[A-Za-z0-9_./][A-Za-z0-9_./:,+@-]*(?: [A-Za-z0-9_./=:,+@%-]+)*';
const SIMPLE = new RegExp(`^${WORDS}$`);
/** The same, then stdout into a plain file name (`> out/m`, `>> log`), and maybe stderr after it (`2>&1`). */
const REDIRECTED = new RegExp(`^(${WORDS}) >>? [A-Za-z0-9_./=:,+@%-]+(?: 2>&1)?$`);
/** Names bash runs itself (builtins and keywords): exec would look for a program of that name instead. */
const BASH_OWN = new Set(('. : [ alias bg bind break builtin caller cd command compgen complete compopt continue declare dirs disown echo enable eval exec exit export false fc fg getopts hash help history jobs kill let local logout mapfile popd printf pushd pwd read readarray readonly return set shift shopt source suspend test times trap true type typeset ulimit umask unalias unset wait ' +
  'if then else elif fi case esac for select while until do done in function time coproc').split(' '));

/**
 * A command that `bash -c 'set -eo pipefail; …'` would run as exactly one program with the words
 * as its arguments (`cp src/a out/b`): the launcher's fork execs that program itself, as make runs
 * such commands without a shell, instead of starting a bash that then execs it (one exec of bash
 * fewer: ~2 ms of CPU per command, most of a trivial command's cost). bash 5 execs a -c string's
 * last simple command in place (undoing its SHLVL count: a missing SHLVL comes out as 0; an odd one sends the command through bash, execsSimple), so the program, its pid, its environment
 * (PWD set to the working directory when the build's does not name it, as bash sets it) and its
 * exit status or signal are the same either way, except for `_`, which bash sets to the program's
 * path and `exec` does not.
 */
export function simpleCommand(cmd: string): boolean {
  if (!SIMPLE.test(cmd)) return false;
  const first = cmd.slice(0, cmd.indexOf(' ') >>> 0);
  return !BASH_OWN.has(first);
}

/**
 * A simple command with its stdout redirected into a file (`cat a b > out/m`): bash -c forks it
 * rather than exec it, having opened the file in the fork. The C launcher spawns the program
 * opening the file in the program's own process, under a fork of itself that leads the session and group as bash
 * would, with what bash's fork would have given it (SHLVL one above the build's); a death by a
 * signal is reported as such instead of as bash's exit status 128 + N, and `_` is the build's.
 * The bash launcher runs these through bash (its `exec` of a split string sees `>` as a word).
 */
export function redirectedCommand(cmd: string): boolean {
  const m = REDIRECTED.exec(cmd);
  return !!m && simpleCommand(m[1]!);
}

/**
 * Variables bash sets, resets or drops when it starts, whatever the environment holds (and
 * POSIXLY_CORRECT and SHELLOPTS, which change what it does): bash -c would give a program it
 * execs another value than the environment's. So would any BASH* variable (BASH_ENV is sourced,
 * BASH_FUNC_* define functions that shadow programs).
 */
const BASH_SETS = new Set(('BASHOPTS COMP_WORDBREAKS DIRSTACK EPOCHREALTIME EPOCHSECONDS EUID FUNCNAME GROUPS HISTCMD HOSTNAME HOSTTYPE IFS ' +
  'LINENO MACHTYPE OPTERR OPTIND OSTYPE PIPESTATUS POSIXLY_CORRECT PPID PS4 RANDOM SECONDS SHELLOPTS SRANDOM UID').split(' '));

/**
 * Whether, in this environment, `bash -c '<simple command>'` would exec the program with the
 * environment as it is, but for what a launcher gives it itself (PWD when it does not name the
 * working directory, SHLVL, see SCRIPT and engine/launcher.c): then the launcher may start simple
 * commands without bash. Otherwise every command goes through bash -c, as a direct spawn does.
 * Usual environments pass; checked once per launcher pool.
 */
export function execsSimple(env: NodeJS.ProcessEnv, cwd: string): boolean {
  for (const k in env) if (k.startsWith('BASH') || (BASH_SETS.has(k) && !(k === 'HOSTNAME' && env[k] === os.hostname()))) return false;
  // bash counts SHLVL up at start and down again for its exec: a plain number below 999 comes out
  // as it went in (above, bash resets it and warns; an odd value it reads its own way).
  const lvl = env.SHLVL;
  if (lvl !== undefined && !(/^(0|[1-9][0-9]{0,2})$/.test(lvl) && Number(lvl) < 999)) return false;
  // bash replaces a relative PWD, drops an OLDPWD that names no directory, and expands `~` in
  // PATH, which execvp does not.
  if (env.PWD !== undefined && !env.PWD.startsWith('/')) return false;
  if (env.OLDPWD !== undefined && !(env.OLDPWD && fs.statSync(path.resolve(cwd, env.OLDPWD), { throwIfNoEntry: false })?.isDirectory())) return false;
  return !env.PATH?.includes('~');
}

/** How long a command may have exited without its end being reported. */
const LOST_MS = 5000;

/**
 * The command (its process, the group's leader) has exited: gone, or a zombie its launcher has
 * not reaped, as a stopped launcher leaves it. Without /proc nothing is known: not exited.
 */
function exited(pid: number): boolean {
  if (!HAS_PROC) return false;
  const st = procState(pid);
  return st === undefined || st === 'Z';
}

/** The name the launcher shows in ps and /proc/<pid>/cmdline ($0 of its bash). */
export const LAUNCHER_NAME = 'hubmake-launcher';

const SIGNAL_NAMES = new Map<number, NodeJS.Signals>(Object.entries(os.constants.signals).map(([name, n]) => [n, name as NodeJS.Signals]));

/** One launcher bash; runs one command at a time. */
export class Launcher {
  private readonly child: ChildProcess;
  private readonly token: Buffer;
  private readonly reader: FrameReader;
  private job: { job: LaunchJob; started: boolean; pid?: number; signaled?: boolean; exit?: LaunchExit; resolve: (e: LaunchExit | undefined) => void } | undefined;
  /** `pipe:[inode]` of the launcher's stdout, which its commands write to. */
  private pipeId: string | undefined;
  /** Set once the launcher has exited or could not start: its jobs go elsewhere. */
  dead = false;
  private closing = false;
  readonly pid: number | undefined;

  /** onDead(unexpected): it exited without being closed, or could not start. execSimple: see execsSimple. */
  constructor(cwd: string, env: NodeJS.ProcessEnv, mark: string, private readonly onDead: (unexpected: boolean) => void, private readonly program: LauncherProgram, private readonly execSimple: boolean) {
    this.token = Buffer.from(`\x01hubmake-${randomBytes(12).toString('hex')}:`);
    this.reader = new FrameReader(this.token, (b) => this.output(b), (kind, rest) => this.frame(kind, rest));
    // Its own process group (detached): Ctrl-C at the terminal reaches the build, which stops the
    // commands' groups itself; the launcher then ends with its stdin.
    if (program.kind === 'native') {
      // It changes nothing of its environment, so the commands get the build's as it is.
      this.child = spawn(program.path, [mark], { cwd, env, argv0: LAUNCHER_NAME, detached: true, stdio: ['pipe', 'pipe', 'ignore'] });
    } else {
      const restored = RESTORED.map((v) => (env[v] === undefined ? 'u' : `s${env[v]}`));
      const own = { ...env };
      delete own.BASH_ENV;
      // --norc: its stdin is a socket, and bash sources ~/.bashrc when it thinks sshd started it.
      this.child = spawn('/bin/bash', ['--norc', '--noprofile', '-c', SCRIPT, LAUNCHER_NAME, mark, ...restored], {
        cwd,
        env: own,
        detached: true,
        stdio: ['pipe', 'pipe', 'ignore', 'pipe'],
      });
    }
    this.pid = this.child.pid;
    endsWithProcess(this, this.child);
    this.child.unref();
    this.child.on('error', () => this.die());
    // Its last frames may still be in the pipe when 'exit' arrives: read them first, unless a
    // command it started still holds the pipe open (then that command's end is unknown).
    this.child.on('exit', () => {
      setTimeout(() => this.die(), 200).unref();
    });
    // No writer is left (the launcher and all it started have closed the pipe), and every frame
    // has been read: nothing more can come. Listened for from the start, not only after 'exit':
    // the pipe may close first, and the process handle (unref'd) would then not keep the event
    // loop alive until 'exit' (a build ended with node's exit code 13, its await unsettled).
    this.child.stdout!.once('close', () => this.die());
    this.child.stdin!.on('error', () => { /* EPIPE once it is gone: 'exit' says so */ });
    this.child.stdin!.write(Buffer.concat([this.token, Buffer.from([0])]));
    (this.child.stdin as unknown as { unref?: () => void }).unref?.();
    (this.child.stdio[3] as unknown as { unref?: () => void } | null)?.unref?.();
    this.child.stdout!.on('data', (c: Buffer) => this.reader.feed(c));
    this.idle();
  }

  /** Runs one command; resolves undefined when the launcher died before reporting its end. */
  run(job: LaunchJob): Promise<LaunchExit | undefined> {
    if (this.dead || this.job) return Promise.resolve(undefined);
    return new Promise((resolve) => {
      this.job = { job, started: false, resolve };
      // While a command runs, its pipe keeps the build's event loop alive.
      (this.child.stdout as unknown as { ref?: () => void }).ref?.();
      // 'x': a simple command, exec'd by the launcher's own fork (see simpleCommand, and
      // redirectedCommand for the C launcher); 'b': through bash -c.
      const x = this.execSimple && (simpleCommand(job.cmd) || (this.program.kind === 'native' && redirectedCommand(job.cmd)));
      this.child.stdin!.write(Buffer.concat([Buffer.from(x ? 'x' : 'b'), Buffer.from(job.cmd), Buffer.from([0])]));
    });
  }

  /** Stdin EOF: the launcher exits after its current command (none, when idle). */
  close(wait = false): void {
    this.closing = true;
    this.child.stdin!.end();
    // Waited for: the event loop stays open until it has exited (and is reaped).
    if (wait) this.child.ref();
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }

  private idle(): void {
    (this.child.stdout as unknown as { unref?: () => void }).unref?.();
  }

  private die(): void {
    if (this.dead) return;
    this.dead = true;
    this.idle();
    const j = this.job;
    this.job = undefined;
    j?.resolve(j.exit);
    this.onDead(!this.closing);
  }

  private output(b: Buffer): void {
    // Bytes outside a command's B…E are from processes an earlier command left running in the
    // background: they belong to no running target.
    if (b.length && this.job?.started) this.job.job.onOutput(Buffer.from(b));
  }

  private frame(kind: number, rest: string): void {
    const j = this.job;
    if (!j) return;
    if (kind === 0x42 /* B */) j.started = true;
    else if (kind === 0x50 /* P */) {
      j.pid = Number(rest);
      j.job.onPid(j.pid);
      this.watch(j);
    }
    else if (kind === 0x4a /* J */) {
      // `[1]+ 1234 Exit 3  ( … )`, `… Done …`, or a signal's description ("Killed").
      const m = /^\[\d+\][+-]?\s+\d+\s+(\S+)/.exec(rest);
      if (m) j.signaled = m[1] !== 'Done' && m[1] !== 'Exit';
    } else if (kind === 0x45 /* E */) {
      // `<status>`, or `<status> gone` from the C launcher once the command's group is empty.
      const status = parseInt(rest, 10);
      if (j.signaled && status > 128) {
        const name = SIGNAL_NAMES.get(status - 128);
        j.exit = name ? { exitCode: null, signal: name } : { exitCode: null, signal: null, signalNumber: status - 128 };
      } else j.exit = { exitCode: status, signal: null };
      this.settle(j, 10, rest.endsWith(' gone'));
    }
  }

  /**
   * The command has exited; it has ended once nothing it started still holds its output open —
   * as child_process's 'close' waits for (a stubborn child of an interrupted command included,
   * until its SIGKILL). Usually its process group is already empty: one kill(0) says so.
   */
  /**
   * The watchdog: a command that has exited but whose end the launcher has not
   * reported within LOST_MS (a stopped or wedged launcher, a frame lost by a bug) would hold the
   * build forever. The launcher is then killed, and its command takes the path of a launcher that
   * died: stopped if anything of it is left, and run again directly.
   */
  private watch(j: NonNullable<Launcher['job']>): void {
    let goneSince: number | undefined;
    const timer = setInterval(() => {
      if (this.job !== j || this.dead) return clearInterval(timer);
      if (j.exit || j.pid === undefined || !exited(j.pid)) {
        goneSince = undefined;
        return;
      }
      goneSince ??= Date.now();
      if (Date.now() - goneSince >= LOST_MS) {
        clearInterval(timer);
        this.kill();
      }
    }, 500);
    timer.unref();
  }

  private settle(j: NonNullable<Launcher['job']>, delay = 10, gone = false): void {
    if (this.job !== j) return;
    // `gone`: the launcher found the group empty (kill(0) from here throws for an empty group, and
    // building that exception cost ~25 µs per command).
    if (j.pid !== undefined && !gone && this.outputHeldBy(j.pid)) {
      // Each look scans /proc: back off while a long-lived child keeps the output open.
      setTimeout(() => this.settle(j, Math.min(delay * 2, 200)), delay);
      return;
    }
    this.job = undefined;
    this.idle();
    j.resolve(j.exit);
    this.onFree(this);
  }

  private outputHeldBy(pgid: number): boolean {
    try {
      process.kill(-pgid, 0);
    } catch {
      return false;
    }
    try {
      this.pipeId ??= fs.readlinkSync(`/proc/${this.pid}/fd/1`);
      for (const p of fs.readdirSync('/proc')) {
        if (p.charCodeAt(0) > 57) continue;
        try {
          if (pgidOf(Number(p)) !== pgid) continue;
          for (const fd of fs.readdirSync(`/proc/${p}/fd`)) if (fs.readlinkSync(`/proc/${p}/fd/${fd}`) === this.pipeId) return true;
        } catch { /* gone, or not ours to read */ }
      }
    } catch { /* no /proc: the command's exit ends it */ }
    return false;
  }

  /** Set by the pool: called when a command ends and the launcher can take the next. */
  onFree: (l: Launcher) => void = () => {};
}

/**
 * No launcher outlives the process that started it. When its event loop runs empty (the build is
 * over; launchers never hold it open while idle), their stdin is closed and they are waited for,
 * so they are reaped and their commands' CPU time is counted in this process's, as a directly
 * spawned command's is. At an exit that does not wait (process.exit), they are killed: idle ones
 * only can be left then, and their commands live in process groups of their own.
 */
const running = new Set<Launcher>();
function endsWithProcess(l: Launcher, child: ChildProcess): void {
  if (!process.listeners('exit').includes(killRunning)) {
    process.on('exit', killRunning);
    process.on('beforeExit', closeRunning);
  }
  running.add(l);
  child.once('exit', () => running.delete(l));
}
function closeRunning(): void {
  for (const l of running) l.close(true);
}
function killRunning(): void {
  for (const l of running) l.kill();
}

/**
 * Splits what a launcher writes into command output and frames (pure: no process, testable with
 * any byte stream). A frame is `<token><kind><text>\n`, except J, whose text is what `jobs -l`
 * printed (zero or more lines) and which ends where its K frame (`<token>K\n`) begins.
 */
export class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(
    private readonly token: Buffer,
    private readonly onOutput: (b: Buffer) => void,
    private readonly onFrame: (kind: number, text: string) => void,
  ) {}

  feed(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const t = this.token.length;
    for (;;) {
      const at = buf.indexOf(this.token);
      if (at < 0) {
        // Hold back a tail that could be the start of a token split across reads.
        const hold = partialTokenAt(buf, this.token);
        this.onOutput(buf.subarray(0, hold));
        this.pending = Buffer.from(buf.subarray(hold));
        return;
      }
      const kind = buf[at + t];
      let end = -1;
      let next = -1;
      if (kind === 0x4a /* J */) {
        end = this.kFrom(buf, at + t);
        if (end >= 0) {
          const nl = buf.indexOf(10, end + t);
          next = nl < 0 ? -1 : nl + 1;
        }
      } else if (kind !== undefined) {
        end = buf.indexOf(10, at + t);
        next = end < 0 ? -1 : end + 1;
      }
      if (next < 0) {
        this.onOutput(buf.subarray(0, at));
        this.pending = Buffer.from(buf.subarray(at));
        return;
      }
      this.onOutput(buf.subarray(0, at));
      const text = buf.subarray(at + t + 1, end).toString();
      this.onFrame(kind!, kind === 0x4a ? text.split('\n')[0]! : text);
      buf = buf.subarray(next);
    }
  }

  /** Where the K frame after `from` starts, or -1 when it has not arrived. */
  private kFrom(buf: Buffer, from: number): number {
    for (let i = buf.indexOf(this.token, from); i >= 0; i = buf.indexOf(this.token, i + 1)) {
      if (buf[i + this.token.length] === 0x4b /* K */) return i;
    }
    return -1;
  }
}

function partialTokenAt(buf: Buffer, token: Buffer): number {
  const from = Math.max(0, buf.length - token.length + 1);
  for (let i = buf.indexOf(token[0]!, from); i >= 0; i = buf.indexOf(token[0]!, i + 1)) {
    if (token.subarray(0, buf.length - i).equals(buf.subarray(i))) return i;
  }
  return buf.length;
}

/**
 * Launchers for one build directory and environment: as many as commands run at once, started
 * lazily by the first command (a no-op build starts none) and closed after a short idle spell, so
 * none outlives the build (a build that exits closes their stdin, which ends them too).
 */
export class LauncherPool {
  private readonly free: Launcher[] = [];
  private readonly all = new Set<Launcher>();
  private timer: NodeJS.Timeout | undefined;
  /** A launcher could not start or died: the rest of this pool's commands are spawned directly. */
  broken = false;

  private readonly env: NodeJS.ProcessEnv;
  /** execsSimple for this pool's environment, asked when its first launcher starts. */
  private execSimple: boolean | undefined;

  constructor(private readonly cwd: string, env: NodeJS.ProcessEnv, private readonly mark: string, private readonly idleMs = 500, readonly program: LauncherProgram = { kind: 'bash' }) {
    // A copy: its launchers pass on the environment as it was when they started.
    this.env = { ...env };
  }

  /** Whether env is still the environment its launchers were started with (process.env may change between builds). */
  matches(env: NodeJS.ProcessEnv): boolean {
    let n = 0;
    for (const k in env) {
      if (env[k] !== this.env[k]) return false;
      n++;
    }
    return n === Object.keys(this.env).length;
  }

  /** Runs a command; undefined when no launcher could run it (the caller spawns it directly). */
  async run(job: LaunchJob): Promise<LaunchExit | undefined> {
    if (this.broken) return undefined;
    clearTimeout(this.timer);
    let l = this.free.pop();
    while (l?.dead) l = this.free.pop();
    if (!l) {
      this.execSimple ??= execsSimple(this.env, this.cwd);
      const fresh: Launcher = new Launcher(this.cwd, this.env, this.mark, (unexpected) => {
        if (unexpected) this.broken = true;
        this.all.delete(fresh);
      }, this.program, this.execSimple);
      fresh.onFree = (x) => {
        this.free.push(x);
        if (this.free.length === this.all.size) this.arm();
      };
      this.all.add(fresh);
      l = fresh;
    }
    return l.run(job);
  }

  /** Ends every idle launcher now. */
  close(): void {
    clearTimeout(this.timer);
    for (const l of this.free.splice(0)) {
      l.close();
      this.all.delete(l);
    }
  }

  private arm(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.close(), this.idleMs);
    this.timer.unref();
  }
}
