// Running one target: a shell command through bash in its own process group (so Ctrl-C can kill
// the whole tree), or an in-process action. Output goes to the target's log, or back as events.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import type { Action, ActionContext, TargetOutcome } from './types.ts';
import type { Target } from './spec.ts';
import type { SlurmExecutor } from './executors/slurm.ts';
import { pgidOf, procStart, procState } from './proc.ts';
import { LauncherPool, launcherFor, type LaunchExit } from './launcher.ts';

export interface RunResult {
  ok: boolean;
  exitCode: number | null;
  error?: string;
  /** Slurm job that ran the target, and its node. */
  jobId?: string;
  node?: string;
}

export interface RunOptions {
  root: string;
  target: Target;
  inputs: string[];
  buildId: string;
  signal: AbortSignal;
  env: NodeJS.ProcessEnv;
  onLine: (line: string) => void;
  outcomes: () => TargetOutcome[];
  writeFile: (rel: string, data: string | Uint8Array) => Promise<void>;
  /** The target's fingerprint digest; a Slurm job of an earlier build is adopted only if it matches. */
  fingerprint?: string;
  /** Runs targets with executor 'slurm'. */
  slurm?: SlurmExecutor;
}

/** The log sink: the log file when the target declares one, else output events line by line. */
class Sink {
  private fd: number | undefined;
  private partial = '';
  /** Why the log file could not be written (disk full, I/O error): the target then fails with it. */
  error: string | undefined;
  constructor(private readonly logAbs: string | undefined, private readonly onLine: (l: string) => void, private readonly logRel?: string) {
    if (logAbs) {
      fs.mkdirSync(path.dirname(logAbs), { recursive: true });
      this.fd = fs.openSync(logAbs, 'w');
    }
  }
  write(chunk: string | Buffer): void {
    if (this.fd !== undefined) {
      try {
        if (typeof chunk === 'string') fs.writeSync(this.fd, chunk);
        else fs.writeSync(this.fd, chunk);
        return;
      } catch (e) {
        // Thrown from a stream handler this would end the whole build; instead the target fails
        // naming the error, and the rest of its output still reaches the terminal as events.
        this.error = `cannot write its log '${this.logRel ?? this.logAbs}': ${(e as Error).message}`;
        try { fs.closeSync(this.fd); } catch { /* already failing */ }
        this.fd = undefined;
      }
    }
    const text = this.partial + chunk.toString();
    const lines = text.split('\n');
    this.partial = lines.pop() ?? '';
    for (const l of lines) this.onLine(l);
  }
  close(): void {
    if (this.fd !== undefined) {
      try {
        fs.closeSync(this.fd);
      } catch (e) {
        this.error ??= `cannot write its log '${this.logRel ?? this.logAbs}': ${(e as Error).message}`;
      }
    } else if (this.partial) this.onLine(this.partial);
    this.fd = undefined;
    this.partial = '';
  }
}

export async function runTarget(o: RunOptions): Promise<RunResult> {
  const t = o.target;
  let sink: Sink;
  try {
    sink = new Sink(t.log ? path.join(o.root, t.log) : undefined, o.onLine, t.log);
  } catch (e) {
    // Its directory is a file (ENOTDIR), the disk is full...: the target fails, the OS error named.
    return { ok: false, exitCode: null, error: `cannot open its log '${t.log}': ${(e as Error).message}` };
  }
  let res: RunResult;
  try {
    if (t.executor === 'slurm' && t.run !== undefined) {
      if (!o.slurm) res = { ok: false, exitCode: null, error: "executor 'slurm' is not available in this build" };
      else res = await o.slurm.run(t, o.fingerprint ?? '', sink, o.signal);
    } else if (typeof t.run === 'string') res = await runCommand(t.run, o, sink);
    else if (typeof t.run === 'function') res = await runAction(t.run, o, sink);
    else res = { ok: true, exitCode: 0 };
  } finally {
    sink.close();
  }
  // A log that could not be written is an incomplete artifact: the target fails with the reason.
  if (sink.error !== undefined && res.ok) return { ...res, ok: false, error: sink.error };
  return res;
}

async function runCommand(cmd: string, o: RunOptions, sink: Sink): Promise<RunResult> {
  // A NUL would end the command early in the launcher's read; spawn rejects it, as before.
  const pool = cmd.includes('\0') ? undefined : launcherPool(o.root, o.env);
  if (pool && !pool.broken) {
    let pid: number | undefined;
    const kill = () => {
      if (pid !== undefined) killGroup(pid);
    };
    o.signal.addEventListener('abort', kill, { once: true });
    let res: LaunchExit | undefined;
    try {
      res = await pool.run({
        cmd,
        onOutput: (c) => sink.write(c),
        onPid: (p) => {
          pid = p;
          if (o.signal.aborted) kill();
        },
      });
    } finally {
      o.signal.removeEventListener('abort', kill);
    }
    if (res) return commandResult(res, o.signal);
    // The launcher died (or never started): its command, if it started, can no longer be waited
    // for. Stop it, then run the command again directly — as the next build would have, had
    // this one been killed mid-command.
    if (pid !== undefined) await stopGroup(pid);
    if (o.signal.aborted) return { ok: false, exitCode: null, error: 'interrupted' };
    if (pid !== undefined) sink.write('hubmake: the command launcher died while this command ran; running it again\n');
  }
  return spawnCommand(cmd, o, sink);
}

function commandResult(res: LaunchExit, signal: AbortSignal): RunResult {
  if (signal.aborted) return { ok: false, exitCode: res.exitCode, error: 'interrupted' };
  if (res.exitCode === 0) return { ok: true, exitCode: 0 };
  const how = res.signal ? `killed by ${res.signal}` : res.signalNumber ? `killed by signal ${res.signalNumber}` : `exit code ${res.exitCode}`;
  return { ok: false, exitCode: res.exitCode, error: `command failed (${how})` };
}

/** SIGTERM to the command's process group, SIGKILL 2 s later if anything is left. */
function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGTERM');
  } catch { /* already gone */ }
  setTimeout(() => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch { /* already gone */ }
  }, 2000).unref();
}

/** SIGKILL to a process group, and a short wait until its leader is gone. */
async function stopGroup(pid: number): Promise<void> {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch { /* already gone */ }
  for (let i = 0; i < 200; i++) {
    const st = procState(pid);
    if (st === undefined || st === 'Z' || st === 'X') return;
    await new Promise((r) => setTimeout(r, 10));
  }
}

/**
 * Launcher pools, one per build directory and environment (a build passes one env to all its
 * commands). A cache of helper processes, not build state: a pool whose launchers have all been
 * idle closes them, and a process that exits ends them.
 */
const pools = new Map<string, LauncherPool>();

/** Undefined when this environment's commands are spawned directly. */
function launcherPool(root: string, env: NodeJS.ProcessEnv): LauncherPool | undefined {
  const pool = pools.get(root);
  if (pool?.matches(env)) return pool;
  pool?.close();
  pools.delete(root);
  // HUBMAKE_LAUNCHER=off spawns every command from this process, as before the launcher.
  const program = launcherFor(env);
  if (!program) return undefined;
  const fresh = new LauncherPool(root, env, runMark(root), undefined, program);
  pools.set(root, fresh);
  return fresh;
}

/**
 * The command spawned directly from this process: the fallback when no launcher can run it.
 * bash -c 'set -eo pipefail;<cmd>' in its own process group, as the launcher runs it.
 */
async function spawnCommand(cmd: string, o: RunOptions, sink: Sink): Promise<RunResult> {
  const child = spawn('/bin/bash', ['-c', `set -eo pipefail;${cmd}`], {
    cwd: o.root,
    // The mark lets a later build find this command (and everything it starts) if this build is
    // killed hard and leaves it running: see stopOrphans.
    env: { ...o.env, [RUN_MARK]: runMark(o.root) },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const kill = () => {
    if (child.pid !== undefined) killGroup(child.pid);
  };
  if (o.signal.aborted) kill();
  o.signal.addEventListener('abort', kill, { once: true });
  child.stdout.on('data', (c: Buffer) => sink.write(c));
  child.stderr.on('data', (c: Buffer) => sink.write(c));
  try {
    const res = await new Promise<{ exitCode: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      child.once('error', (error) => resolve({ exitCode: null, signal: null, error }));
      child.once('close', (exitCode, signal) => resolve({ exitCode, signal }));
    });
    if (res.error) return { ok: false, exitCode: null, error: `cannot start /bin/bash: ${res.error.message}` };
    return commandResult(res, o.signal);
  } finally {
    o.signal.removeEventListener('abort', kill);
  }
}

async function runAction(fn: Action, o: RunOptions, sink: Sink): Promise<RunResult> {
  const t = o.target;
  const ctx: ActionContext = {
    root: o.root,
    name: t.name,
    inputs: o.inputs,
    outputs: t.outputs,
    params: t.params,
    log: (line: string) => sink.write(line.endsWith('\n') ? line : `${line}\n`),
    signal: o.signal,
    writeFile: o.writeFile,
    buildId: o.buildId,
    outcomes: o.outcomes,
  };
  if (t.log) ctx.logPath = t.log;
  try {
    await fn(ctx);
    if (o.signal.aborted) return { ok: false, exitCode: null, error: 'interrupted' };
    return { ok: true, exitCode: 0 };
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    sink.write(`${err.stack ?? err.message}\n`);
    return { ok: false, exitCode: null, error: err.message };
  }
}

/** The last n lines of a log, for failure reports. */
export function tailOf(abs: string, n = 20): string[] {
  try {
    const fd = fs.openSync(abs, 'r');
    try {
      const size = fs.fstatSync(fd).size;
      const len = Math.min(size, 64 * 1024);
      const buf = Buffer.alloc(len);
      fs.readSync(fd, buf, 0, len, size - len);
      const lines = buf.toString('utf8').split('\n');
      if (lines[lines.length - 1] === '') lines.pop();
      return lines.slice(-n);
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
}

const RUN_MARK = 'HUBMAKE_RUN';
let ownMark: string | undefined;

/** `<pid>:<kernel start time>:<root>` of this build process, inherited by every command it runs. */
function runMark(root: string): string {
  ownMark ??= `${process.pid}:${procStart(process.pid) ?? ''}:`;
  return ownMark + root;
}

/**
 * Stops commands left running by a build of this root that was killed hard (SIGKILL, the OOM
 * killer): commands run in process groups of their own, so they outlive their build and would race
 * the next build's run of the same target. They are found by the mark in their environment, and
 * stopped only if the build that started them is gone (a live process with the recorded pid and
 * start time is left alone). Linux only (/proc); elsewhere nothing is found. Returns the pids stopped.
 */
export async function stopOrphans(root: string): Promise<number[]> {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((e) => e.charCodeAt(0) <= 57);
  } catch {
    return [];
  }
  const needle = Buffer.from(`\0${RUN_MARK}=`);
  const found: number[] = [];
  for (const p of pids) {
    let env: Buffer;
    try {
      env = Buffer.concat([Buffer.from([0]), fs.readFileSync(`/proc/${p}/environ`)]);
    } catch {
      continue; // gone, or not ours to read
    }
    const at = env.indexOf(needle);
    if (at < 0) continue;
    const end = env.indexOf(0, at + needle.length);
    const value = env.subarray(at + needle.length, end < 0 ? env.length : end).toString();
    const m = /^(\d+):(\d*):(.*)$/s.exec(value);
    if (!m || m[3] !== root) continue;
    const owner = Number(m[1]);
    if (owner === process.pid || (m[2] !== '' && procStart(owner) === m[2])) continue; // its build is alive
    if (procState(Number(p)) === 'Z') continue;
    found.push(Number(p));
  }
  for (const p of found) {
    // The whole group: helpers it started may have left the environment behind (env -i).
    const pgid = pgidOf(p);
    try {
      if (pgid !== undefined && pgid > 1) process.kill(-pgid, 'SIGKILL');
    } catch { /* gone */ }
    try {
      process.kill(p, 'SIGKILL');
    } catch { /* gone */ }
  }
  // SIGKILL is asynchronous: wait (briefly) until they are gone before anything is rebuilt.
  for (let i = 0; i < 200 && found.some((p) => { const st = procState(p); return st !== undefined && st !== 'Z' && st !== 'X'; }); i++) {
    await new Promise((r) => setTimeout(r, 10));
  }
  return found;
}
