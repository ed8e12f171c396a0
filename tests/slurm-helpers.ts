// Shared by the Slurm tests: is a cluster there, and how to run the real CLI against a temp root.
// Where Slurm cannot be reached the tests must not pass silently: under CI=true or
// HUBMAKE_REQUIRE_SLURM=1 they fail; elsewhere they are skipped with a loud message.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export const REPO = path.resolve(import.meta.dirname, '..');
export const BUILD = path.join(REPO, 'build.ts');

export interface SlurmProbe {
  ok: boolean;
  why: string;
}

/** Whether sinfo answers and the node can take jobs. */
export function probeSlurm(): SlurmProbe {
  const r = spawnSync('sinfo', ['-h', '-o', '%T'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error) return { ok: false, why: `sinfo cannot run (${(r.error as NodeJS.ErrnoException).code ?? r.error.message}): Slurm's client commands are not installed` };
  if (r.status !== 0) return { ok: false, why: `sinfo failed: ${r.stderr.trim()}` };
  const states = r.stdout.trim().split('\n').map((s) => s.trim().replace(/[*~#!%$@^-]+$/, ''));
  if (!states.some((s) => ['idle', 'mixed', 'allocated', 'completing'].includes(s))) return { ok: false, why: `no node can take jobs (sinfo says: ${states.join(', ') || 'nothing'})` };
  return { ok: true, why: '' };
}

export const slurmRequired = (): boolean => process.env.CI === 'true' || process.env.HUBMAKE_REQUIRE_SLURM === '1';

/** Says loudly why the Slurm tests cannot run; returns whether they should be skipped (true) or fail. */
export function announceMissing(file: string, why: string): boolean {
  const required = slurmRequired();
  const bar = '!'.repeat(78);
  process.stderr.write(`\n${bar}\n${file}: SLURM IS NOT AVAILABLE: ${why}\n` +
    (required
      ? 'CI=true or HUBMAKE_REQUIRE_SLURM=1: these tests FAIL. Start it with scripts/slurm/start.sh (see docs/slurm.md).\n'
      : 'Skipping the Slurm tests. Start Slurm with scripts/slurm/start.sh (see docs/slurm.md) to run them.\n') +
    `${bar}\n\n`);
  return !required;
}

export function tmpRoot(tag: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `hubmake-${tag}-`));
}

export function writeTargets(root: string, text: string): void {
  fs.writeFileSync(path.join(root, 'targets.ts'), text);
}

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Starts the real CLI on a root; `events` are the parsed --json lines seen so far. */
export function startCli(root: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', BUILD, '-C', root, '-f', 'targets.ts', ...args], {
    cwd: REPO,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  const events: Array<Record<string, unknown>> = [];
  let partial = '';
  child.stdout!.on('data', (c: Buffer) => {
    stdout += c.toString();
    const lines = (partial + c.toString()).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      if (!l.startsWith('{')) continue;
      try {
        events.push(JSON.parse(l) as Record<string, unknown>);
      } catch { /* a plain line */ }
    }
  });
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const done = new Promise<CliRun>((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, events, done };
}

export function runCli(root: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<CliRun & { events: Array<Record<string, unknown>> }> {
  const r = startCli(root, args, env);
  return r.done.then((res) => ({ ...res, events: r.events }));
}

export async function until<T>(what: string, f: () => T | undefined | false, timeoutMs = 30_000): Promise<T> {
  const t0 = Date.now();
  for (;;) {
    const v = f();
    if (v) return v;
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Jobs of ours still in the queue (pending, running or completing). */
export function queued(ids: string[]): string[] {
  if (ids.length === 0) return [];
  const r = spawnSync('squeue', ['-h', '-j', ids.join(','), '-o', '%i %T'], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

/** A job's state as scontrol knows it (for jobs that finished less than MinJobAge ago). */
export function jobState(id: string): string | undefined {
  const r = spawnSync('scontrol', ['show', 'job', '-o', id], { encoding: 'utf8' });
  return /JobState=(\S+)/.exec(r.stdout)?.[1];
}

/** Ids of the jobs the controller knows by this name (any state). */
export function jobsNamed(name: string): string[] {
  const r = spawnSync('squeue', ['-h', '-t', 'all', '-n', name, '-o', '%i'], { encoding: 'utf8' });
  return r.stdout.split('\n').map((l) => l.trim()).filter(Boolean);
}

export const token = (): string => Math.random().toString(36).slice(2, 8);
