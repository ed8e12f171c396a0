// Running a target's command as a Slurm batch job. The job runs the same command text in the root
// directory (a file system shared between this machine and the compute nodes is assumed), under
// `bash` with `set -eo pipefail` like a local command; its stdout and stderr go to a file under
// .hubmake/slurm/ that is copied into the target's log as it grows. Submission is `sbatch
// --parsable`; completion is found by polling squeue for all of this build's jobs at once
// (`sbatch --wait` backs off to tens of seconds). The job id is written to the state log right
// after submission, so a later build adopts a job that a killed build left behind instead of
// submitting it twice.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Listener } from '../events.ts';
import type { Target } from '../spec.ts';
import { STATE_DIR, type JobRecord, type StateStore } from '../state.ts';

/** What running a target on Slurm came to (a superset of run.ts's RunResult). */
export interface SlurmRunResult {
  ok: boolean;
  exitCode: number | null;
  error?: string;
  jobId?: string;
  node?: string;
}

/** Where the target's output goes: its log file, or output events line by line. */
export interface LogSink {
  write(chunk: string | Buffer): void;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** The command could not be started (ENOENT when Slurm's client commands are not installed). */
  spawnError?: NodeJS.ErrnoException;
}

/** Runs one Slurm client command; the seam tests may replace. */
export type Exec = (cmd: string, args: string[], input?: string) => Promise<ExecResult>;

export interface JobInfo {
  id: string;
  /** Slurm's job state, first word only (`CANCELLED by 0` → `CANCELLED`); UNKNOWN when no source knows the job. */
  state: string;
  node?: string;
  reason?: string;
  /** Exit status of the batch script, when Slurm reports one. */
  exitCode?: number;
  /** Signal that ended the batch script, when one did. */
  signal?: number;
}

/** States after which a job never runs again. Everything else (PENDING, RUNNING, COMPLETING, ...) is active. */
const FINAL = new Set([
  'COMPLETED', 'FAILED', 'CANCELLED', 'TIMEOUT', 'OUT_OF_MEMORY', 'NODE_FAIL', 'PREEMPTED',
  'BOOT_FAIL', 'DEADLINE', 'SPECIAL_EXIT', 'REVOKED', 'UNKNOWN',
]);

export function isFinal(state: string): boolean {
  return FINAL.has(state);
}

/** How long to wait for a cancelled job to leave the queue (Slurm's KillWait is typically 30 s). */
const CANCEL_WAIT_MS = 45_000;

export interface SlurmExecutorOptions {
  root: string;
  env: NodeJS.ProcessEnv;
  state: StateStore;
  emit: Listener;
  buildId: string;
  exec?: Exec;
}

/**
 * The sbatch options for a target: its `slurm` fields, over defaults from the environment
 * (HUBMAKE_SLURM_PARTITION, _ACCOUNT, _TIME, _CPUS, _MEM, _GRES, and _ARGS, split on blanks).
 * Extra args come last so that they win over everything else.
 */
export function sbatchArgs(t: Target, env: NodeJS.ProcessEnv, root: string, outAbs: string, comment?: string): string[] {
  const s = t.slurm ?? {};
  const pick = (v: string | number | undefined, key: string): string | undefined => {
    if (v !== undefined) return String(v);
    const e = env[`HUBMAKE_SLURM_${key}`];
    return e ? e : undefined;
  };
  const args = ['--parsable', `--job-name=${jobName(t)}`, `--chdir=${root}`, `--output=${outAbs}`, `--error=${outAbs}`];
  if (comment) args.push(`--comment=${comment}`);
  const opt: Array<[string, string | number | undefined, string]> = [
    ['--partition', s.partition, 'PARTITION'],
    ['--account', s.account, 'ACCOUNT'],
    ['--time', s.time, 'TIME'],
    ['--cpus-per-task', s.cpus, 'CPUS'],
    ['--mem', s.mem, 'MEM'],
    ['--gres', s.gres, 'GRES'],
  ];
  for (const [flag, v, key] of opt) {
    const val = pick(v, key);
    if (val !== undefined) args.push(`${flag}=${val}`);
  }
  const envArgs = env.HUBMAKE_SLURM_ARGS?.trim();
  if (envArgs) args.push(...envArgs.split(/\s+/));
  if (s.args) args.push(...s.args);
  return args;
}

export function jobName(t: Target): string {
  return `hubmake:${t.name}`.slice(0, 200);
}

/**
 * The job's comment names the root and the fingerprint, so that a job whose submission a killed
 * build never got to record can still be found (by name) and told apart from other roots' jobs.
 */
export function jobComment(root: string, fingerprint: string): string {
  return `hubmake:${crypto.createHash('sha256').update(root).digest('hex').slice(0, 12)}:${fingerprint}`;
}

/** The batch script: the command text as a local target would run it (`set -eo pipefail` first). */
export function batchScript(cmd: string): string {
  return `#!/bin/bash\nset -eo pipefail\n${cmd}\n`;
}

/** `3:0` (sacct, scontrol) or a raw wait status `768` (squeue's exit_code) → code and signal. */
export function parseExit(s: string): { exitCode?: number; signal?: number } {
  const m = /^(\d+):(\d+)$/.exec(s.trim());
  if (m) return { exitCode: Number(m[1]), ...(Number(m[2]) ? { signal: Number(m[2]) } : {}) };
  if (/^\d+$/.test(s.trim())) {
    const raw = Number(s);
    const sig = raw & 0x7f;
    return { exitCode: (raw >> 8) & 0xff, ...(sig ? { signal: sig } : {}) };
  }
  return {};
}

function nodeOf(s: string | undefined): string | undefined {
  const v = s?.trim();
  return v && v !== '(null)' && v !== 'None assigned' && v !== '(None)' ? v : undefined;
}

const firstWord = (s: string): string => s.trim().split(/\s+/)[0]!.replace(/\+$/, '');

/** Lines of `squeue -O JobID:|,State:|,NodeList:|,exit_code:|,Reason:|`. */
export function parseSqueue(text: string): Map<string, JobInfo> {
  const out = new Map<string, JobInfo>();
  for (const line of text.split('\n')) {
    const [id, state, node, exit, reason] = line.split('|').map((x) => x.trim());
    if (!id || !state) continue;
    const info: JobInfo = { id, state: firstWord(state), ...parseExit(exit ?? '') };
    const n = nodeOf(node);
    if (n) info.node = n;
    if (reason && reason !== 'None' && reason !== '(null)') info.reason = reason;
    out.set(id, info);
  }
  return out;
}

/** `scontrol show job -o <id>`: one line of Key=Value pairs. */
export function parseScontrol(id: string, text: string): JobInfo | undefined {
  const field = (k: string) => new RegExp(`(?:^|\\s)${k}=(\\S*)`).exec(text)?.[1];
  const state = field('JobState');
  if (!state) return undefined;
  const info: JobInfo = { id, state: firstWord(state), ...parseExit(field('ExitCode') ?? '') };
  const n = nodeOf(field('NodeList'));
  if (n) info.node = n;
  const r = field('Reason');
  if (r && r !== 'None') info.reason = r;
  return info;
}

/** `sacct -n -P -o JobID,State,ExitCode,NodeList`: the line of the job itself, not its steps. */
export function parseSacct(id: string, text: string): JobInfo | undefined {
  for (const line of text.split('\n')) {
    const [jid, state, exit, node] = line.split('|');
    if (jid?.trim() !== id || !state) continue;
    const info: JobInfo = { id, state: firstWord(state), ...parseExit(exit ?? '') };
    const n = nodeOf(node);
    if (n) info.node = n;
    return info;
  }
  return undefined;
}

// Not zx: zx 8 crashes the whole process with an unhandled EPIPE when a client exits before
// reading its standard input (sbatch refusing its options does), and it picks its shell and
// quoting from PATH at import time. A plain spawn with its errors handled is the safer seam here.
export const spawnExec = (env: NodeJS.ProcessEnv): Exec => (cmd, args, input) =>
  new Promise((resolve) => {
    const child = spawn(cmd, args, { env, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    // A controller that does not answer must not hang the build: Slurm's own client timeout is
    // shorter than this, so this only catches a wedged client.
    const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      resolve({ code: null, stdout, stderr: stderr || e.message, spawnError: e });
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) {
      // A client that exits without reading its input (bad options) must not crash the build.
      child.stdin!.on('error', () => {});
      child.stdin!.end(input);
    }
  });

/** Copies what a job has written to its output file so far into the sink. */
class OutputTail {
  private offset = 0;
  constructor(private readonly abs: string, private readonly sink: LogSink) {}
  pump(): void {
    let fd: number;
    try {
      fd = fs.openSync(this.abs, 'r');
    } catch {
      return; // not created yet (the job has not started)
    }
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, this.offset);
        if (n <= 0) break;
        this.offset += n;
        this.sink.write(Buffer.from(buf.subarray(0, n)));
      }
    } finally {
      fs.closeSync(fd);
    }
  }
}

interface Watch {
  since: number;
  last?: JobInfo;
  onUpdate: (info: JobInfo) => void;
  resolve: (info: JobInfo) => void;
}

/**
 * One poller per build for all its jobs: a single squeue call per round, every 200 ms while a job
 * is young and less often as the youngest job ages (5% of its age, at most
 * HUBMAKE_SLURM_POLL_MAX_MS, default 3 s), so short jobs finish promptly and long ones do not
 * hammer the controller.
 */
class Poller {
  private readonly watched = new Map<string, Watch>();
  private timer: NodeJS.Timeout | undefined;
  private ticking = false;
  private failing = false;
  private readonly maxMs: number;

  constructor(private readonly exec: Exec, private readonly lookup: (id: string) => Promise<JobInfo>, private readonly warn: (m: string) => void, env: NodeJS.ProcessEnv) {
    const m = Number(env.HUBMAKE_SLURM_POLL_MAX_MS);
    this.maxMs = Number.isFinite(m) && m >= 50 ? m : 3000;
  }

  /** Resolves with the job's final state; onUpdate sees every poll's view of it. */
  watch(id: string, onUpdate: (info: JobInfo) => void): Promise<JobInfo> {
    return new Promise((resolve) => {
      this.watched.set(id, { since: Date.now(), onUpdate, resolve });
      this.schedule(200);
    });
  }

  /** Stops polling a job nobody waits for any more. */
  forget(id: string): void {
    this.watched.delete(id);
  }

  private schedule(ms: number): void {
    if (this.timer || this.ticking || this.watched.size === 0) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.tick();
    }, ms);
  }

  private async tick(): Promise<void> {
    this.ticking = true;
    try {
      const ids = [...this.watched.keys()];
      const r = await this.exec('squeue', ['-h', '-t', 'all', '-j', ids.join(','), '-O', 'JobID:|,State:|,NodeList:|,exit_code:|,Reason:|']);
      let seen: Map<string, JobInfo>;
      if (r.code === 0) seen = parseSqueue(r.stdout);
      else if (/invalid job id/i.test(r.stderr)) seen = new Map(); // every id has left the controller's memory
      else {
        if (!this.failing) this.warn(`squeue failed (${r.stderr.trim() || `exit code ${r.code}`}); still waiting for ${ids.length} Slurm job(s)`);
        this.failing = true;
        return;
      }
      this.failing = false;
      for (const id of ids) {
        const w = this.watched.get(id);
        if (!w) continue;
        // Gone from squeue: ask scontrol and the accounting records.
        const info = seen.get(id) ?? (await this.lookup(id));
        w.last = info;
        w.onUpdate(info);
        if (isFinal(info.state)) {
          this.watched.delete(id);
          w.resolve(info);
        }
      }
    } finally {
      this.ticking = false;
      let youngest = Infinity;
      for (const w of this.watched.values()) youngest = Math.min(youngest, Date.now() - w.since);
      this.schedule(Math.min(this.maxMs, Math.max(200, youngest * 0.05)));
    }
  }
}

export class SlurmExecutor {
  private readonly exec: Exec;
  private poller: Poller | undefined;
  /**
   * One abort listener per signal for all jobs waiting on it: a build may wait on a hundred jobs
   * at once, and a listener each would trip Node's leak warning.
   */
  private readonly aborts = new WeakMap<AbortSignal, Set<() => void>>();

  constructor(private readonly o: SlurmExecutorOptions) {
    this.exec = o.exec ?? spawnExec(o.env);
  }

  /**
   * Runs the target's command as a Slurm job, or adopts the job an earlier (killed) build
   * submitted for the same fingerprint, and waits for it. On abort the job is cancelled and
   * waited for, so it cannot write outputs after the build has stopped.
   */
  async run(t: Target, fingerprint: string, sink: LogSink, signal: AbortSignal): Promise<SlurmRunResult> {
    if (typeof t.run !== 'string') return { ok: false, exitCode: null, error: "only shell commands can run on Slurm (executor: 'slurm' with an in-process action)" };
    const adopted = await this.adoptOrCancel(t, fingerprint);
    let job = adopted?.job;
    let last: JobInfo | undefined = adopted?.info;
    if (!job) {
      if (signal.aborted) return { ok: false, exitCode: null, error: 'interrupted' };
      const sub = await this.submit(t, t.run, fingerprint, sink);
      if ('error' in sub) return { ok: false, exitCode: null, error: sub.error };
      job = sub;
    }
    const outAbs = path.join(this.o.root, job.out);
    const tail = new OutputTail(outAbs, sink);
    let cancelled = false;
    const cancel = () => {
      cancelled = true;
      void this.cancel(job.id);
    };
    const stopListening = this.onAbort(signal, cancel);
    let final: JobInfo;
    try {
      final = await this.waitFor(job.id, (info) => {
        tail.pump();
        if (!last || last.state !== info.state || last.node !== info.node || last.reason !== info.reason) {
          this.emitJob(t.name, info);
        }
        last = info;
      }, signal);
    } finally {
      stopListening();
    }
    tail.pump();
    // Its content now lives in the target's log (or went out as output events).
    fs.rmSync(outAbs, { force: true });
    const res: SlurmRunResult = { ok: false, exitCode: final.exitCode ?? null, jobId: job.id };
    if (final.node) res.node = final.node;
    const where = `slurm job ${job.id}${final.node ? ` on ${final.node}` : ''}`;
    if (cancelled || signal.aborted) return { ...res, error: 'interrupted' };
    if (final.state === 'COMPLETED' && (final.exitCode ?? 0) === 0) return { ...res, ok: true, exitCode: 0 };
    const how = final.signal ? `killed by signal ${final.signal}` : final.exitCode !== undefined ? `exit code ${final.exitCode}` : 'no exit code';
    const what: Record<string, string> = {
      // The exit code itself travels in exitCode (reporters print it).
      FAILED: final.signal ? `command killed by signal ${final.signal}` : 'command failed',
      CANCELLED: 'the job was cancelled outside this build',
      TIMEOUT: 'the job hit its time limit (raise slurm.time)',
      OUT_OF_MEMORY: 'the job ran out of memory (raise slurm.mem)',
      NODE_FAIL: 'the node running the job failed',
      PREEMPTED: 'the job was preempted',
      UNKNOWN: 'Slurm no longer knows the job (it left the queue and accounting has no record of it)',
    };
    return { ...res, error: `${where}: ${what[final.state] ?? `ended in state ${final.state} (${how})`}` };
  }

  /**
   * The job a killed build left for this target: adopted when it can still give this
   * fingerprint's result (running, or completed successfully), else cancelled if still active.
   * Without a job record, the queue is searched for a job the killed build submitted but had no
   * time to record (between sbatch's answer and the state log append).
   */
  private async adoptOrCancel(t: Target, fingerprint: string): Promise<{ job: JobRecord; info: JobInfo } | undefined> {
    const recorded = this.o.state.history.get(t.name)?.job;
    const candidates: Array<{ job: JobRecord; info?: JobInfo }> = recorded ? [{ job: recorded }] : await this.unrecorded(t);
    let chosen: { job: JobRecord; info: JobInfo } | undefined;
    for (const c of candidates) {
      const info = c.info ?? (await this.status(c.job.id));
      const active = !isFinal(info.state);
      if (!chosen && c.job.fp === fingerprint && (active || (info.state === 'COMPLETED' && (info.exitCode ?? 0) === 0))) {
        chosen = { job: c.job, info };
        if (c.job !== recorded) this.o.state.recordJob(c.job);
        this.emitJob(t.name, info, true);
        continue;
      }
      if (active) {
        const why = c.job.fp === fingerprint ? 'another job already gives its result' : 'the target changed since it was submitted';
        this.o.emit({ type: 'info', target: t.name, message: `cancelling slurm job ${c.job.id} of an earlier build: ${why}` });
        await this.cancel(c.job.id);
        await this.waitFor(c.job.id, () => {}, AbortSignal.abort());
      }
      fs.rmSync(path.join(this.o.root, c.job.out), { force: true });
    }
    return chosen;
  }

  /** Active jobs of this root and target in the queue, found by name and comment. */
  private async unrecorded(t: Target): Promise<Array<{ job: JobRecord; info: JobInfo }>> {
    const r = await this.exec('squeue', ['-h', '-t', 'all', '-n', jobName(t), '-O', 'JobID:|,State:|,NodeList:|,exit_code:|,Reason:|,Comment:|']);
    if (r.code !== 0) return [];
    const prefix = jobComment(this.o.root, '');
    const out: Array<{ job: JobRecord; info: JobInfo }> = [];
    for (const line of r.stdout.split('\n')) {
      const fields = line.split('|').map((x) => x.trim());
      const comment = fields[5] ?? '';
      if (!comment.startsWith(prefix)) continue;
      const info = parseSqueue(fields.slice(0, 5).join('|')).get(fields[0]!);
      if (!info) continue;
      // Only active jobs: a finished one may be the job whose result an ok/fail record already
      // took in (it stays visible for MinJobAge), and adopting it again would skip a wanted rerun.
      if (isFinal(info.state)) continue;
      out.push({ job: { k: 'job', t: t.name, b: this.o.buildId, id: info.id, fp: comment.slice(prefix.length), out: this.outPattern(t).replace('%j', info.id) }, info });
    }
    return out;
  }

  private outPattern(t: Target): string {
    return path.join(STATE_DIR, 'slurm', `${t.name.replace(/[^A-Za-z0-9._-]+/g, '_').slice(0, 80)}-%j.out`);
  }

  private async submit(t: Target, cmd: string, fingerprint: string, sink: LogSink): Promise<JobRecord | { error: string }> {
    const outPattern = this.outPattern(t);
    fs.mkdirSync(path.join(this.o.root, path.dirname(outPattern)), { recursive: true });
    const args = sbatchArgs(t, this.o.env, this.o.root, path.join(this.o.root, outPattern), jobComment(this.o.root, fingerprint));
    const r = await this.exec('sbatch', args, batchScript(cmd));
    const id = /^(\d+)/.exec(r.stdout.trim())?.[1];
    if (r.code !== 0 || !id) {
      const why = r.spawnError?.code === 'ENOENT'
        ? "sbatch not found: the target has executor 'slurm' but Slurm's client commands are not on PATH (install slurm-client, or run it locally)"
        : `sbatch failed: ${r.stderr.trim() || r.stdout.trim() || `exit code ${r.code}`}`;
      sink.write(`${why}\n`);
      return { error: why };
    }
    const rec: JobRecord = { k: 'job', t: t.name, b: this.o.buildId, id, fp: fingerprint, out: outPattern.replace('%j', id) };
    this.o.state.recordJob(rec);
    this.o.emit({ type: 'job', target: t.name, jobId: id, state: 'SUBMITTED' });
    return rec;
  }

  /** Waits for a job's final state; after an abort, at most CANCEL_WAIT_MS more. */
  private waitFor(id: string, onUpdate: (info: JobInfo) => void, signal: AbortSignal | undefined): Promise<JobInfo> {
    this.poller ??= new Poller(this.exec, (i) => this.status(i, false), (m) => this.o.emit({ type: 'warning', message: m }), this.o.env);
    const done = this.poller.watch(id, onUpdate);
    if (!signal) return done;
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const giveUp = () => {
        timer = setTimeout(() => {
          this.poller?.forget(id);
          resolve({ id, state: 'CANCELLED' });
        }, CANCEL_WAIT_MS);
      };
      const stopListening = this.onAbort(signal, giveUp);
      void done.then((info) => {
        if (timer) clearTimeout(timer);
        stopListening();
        resolve(info);
      });
    });
  }

  /** Calls fn once when the signal aborts (now, if it has); returns how to stop listening. */
  private onAbort(signal: AbortSignal, fn: () => void): () => void {
    if (signal.aborted) {
      fn();
      return () => {};
    }
    let set = this.aborts.get(signal);
    if (!set) {
      const fns = new Set<() => void>();
      set = fns;
      this.aborts.set(signal, fns);
      signal.addEventListener('abort', () => {
        for (const f of [...fns]) f();
        fns.clear();
      }, { once: true });
    }
    set.add(fn);
    const mine = set;
    return () => mine.delete(fn);
  }

  /** A job's state from squeue, then scontrol, then accounting (sacct, then sacct -c for jobcomp/filetxt). */
  private async status(id: string, tryQueue = true): Promise<JobInfo> {
    if (tryQueue) {
      const q = await this.exec('squeue', ['-h', '-t', 'all', '-j', id, '-O', 'JobID:|,State:|,NodeList:|,exit_code:|,Reason:|']);
      const info = q.code === 0 ? parseSqueue(q.stdout).get(id) : undefined;
      if (info) return info;
    }
    const sc = await this.exec('scontrol', ['show', 'job', '-o', id]);
    const fromScontrol = sc.code === 0 ? parseScontrol(id, sc.stdout) : undefined;
    if (fromScontrol) return fromScontrol;
    for (const extra of [[], ['-c']]) {
      const a = await this.exec('sacct', [...extra, '-j', id, '-n', '-P', '-o', 'JobID,State,ExitCode,NodeList']);
      const info = a.code === 0 ? parseSacct(id, a.stdout) : undefined;
      if (info) return info;
    }
    return { id, state: 'UNKNOWN' };
  }

  private async cancel(id: string): Promise<void> {
    const r = await this.exec('scancel', [id]);
    if (r.code !== 0 && !/invalid job id|already completing or completed/i.test(r.stderr)) {
      this.o.emit({ type: 'warning', message: `scancel ${id} failed: ${r.stderr.trim() || `exit code ${r.code}`}; cancel it by hand` });
    }
  }

  private emitJob(target: string, info: JobInfo, adopted = false): void {
    const e: Extract<Parameters<Listener>[0], { type: 'job' }> = { type: 'job', target, jobId: info.id, state: info.state };
    if (info.node) e.node = info.node;
    if (info.reason && !isFinal(info.state) && info.state !== 'RUNNING') e.reason = info.reason;
    if (adopted) e.adopted = true;
    this.o.emit(e);
  }
}
