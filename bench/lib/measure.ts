// Timing and process helpers shared by the benchmarks. Each figure is the wall time of a whole
// process (spawnSync), so hubmake, make and ninja are measured the same way; hubmake's own
// engine time comes from the `hubmake-engine-ms:` line build.ts prints with HUBMAKE_TIMING=1.
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const CORES = os.availableParallelism?.() ?? os.cpus().length;

export interface Run {
  ms: number;
  code: number | null;
  stdout: string;
  stderr: string;
  /** From `hubmake-engine-ms:` on stderr, when present. */
  engineMs?: number;
  /** From `hubmake-commands-busy-ms:` (the metrics logger): time at least one command ran. */
  commandsBusyMs?: number;
  /** Peak resident set size in KiB (from /usr/bin/time, when installed). */
  maxRssKb?: number;
  /** User + system CPU time of the process and its children in ms (from /usr/bin/time): less
   * sensitive than wall time to other work on a shared machine. */
  cpuMs?: number;
}

const TIME = fs.existsSync('/usr/bin/time');

export function run(cmd: string, args: string[], opts: SpawnSyncOptions & { rss?: boolean } = {}): Run {
  const wrap = TIME;
  const file = wrap ? '/usr/bin/time' : cmd;
  const argv = wrap ? ['-f', 'hubmake-bench-time: %M %U %S', cmd, ...args] : args;
  const t0 = process.hrtime.bigint();
  const r = spawnSync(file, argv, { encoding: 'utf8', maxBuffer: 1 << 30, ...opts });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.error) throw r.error;
  const stdout = String(r.stdout ?? '');
  const stderr = String(r.stderr ?? '');
  const out: Run = { ms, code: r.status, stdout, stderr };
  const em = /hubmake-engine-ms: ([\d.]+)/.exec(stderr);
  if (em) out.engineMs = Number(em[1]);
  const bm = /hubmake-commands-busy-ms: ([\d.]+)/.exec(stderr);
  if (bm) out.commandsBusyMs = Number(bm[1]);
  const tm = /hubmake-bench-time: (\d+) ([\d.]+) ([\d.]+)/.exec(stderr);
  if (tm) {
    out.maxRssKb = Number(tm[1]);
    out.cpuMs = (Number(tm[2]) + Number(tm[3])) * 1000;
  }
  return out;
}

export function mustSucceed(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n${r.stderr.slice(-2000)}\n${r.stdout.slice(-2000)}`);
  return r;
}

export interface Stat {
  min: number;
  mean: number;
  runs: number;
}

export function stat(xs: number[]): Stat {
  return { min: Math.min(...xs), mean: xs.reduce((a, b) => a + b, 0) / xs.length, runs: xs.length };
}

export function has(cmd: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' }).status === 0;
}

export const INSTALL: Record<string, string> = {
  make: 'apt-get install make',
  ninja: 'apt-get install ninja-build',
  openssl: 'apt-get install openssl',
  snakemake: 'apt-get install snakemake',
};

export function ms(x: number | undefined): string {
  if (x === undefined || Number.isNaN(x)) return '–';
  return x >= 10_000 ? `${(x / 1000).toFixed(1)} s` : x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(x < 10 ? 1 : 0)} ms`;
}

export function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !b) return '–';
  return `${(a / b).toFixed(2)}x`;
}

/** A fixed-width table on stdout. */
export function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(w[i]!) : c.padStart(w[i]!))).join('  ');
  return [line(head), w.map((x) => '-'.repeat(x)).join('  '), ...rows.map(line)].join('\n');
}

export function benchDir(name: string): string {
  const d = path.join(os.tmpdir(), 'hubmake-bench', name);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

export function machine(): { cpu: string; cores: number; memGiB: number; node: string; date: string; load: string } {
  const cpu = os.cpus()[0]?.model?.trim() ?? 'unknown';
  return { cpu, cores: CORES, memGiB: Math.round(os.totalmem() / 2 ** 30), node: process.version, date: new Date().toISOString(), load: os.loadavg().map((x) => x.toFixed(2)).join(' ') };
}

/** Tries to drop the page cache; returns false when not permitted. */
export function dropCaches(): boolean {
  try {
    spawnSync('sync');
    fs.writeFileSync('/proc/sys/vm/drop_caches', '3\n');
    return true;
  } catch {
    return false;
  }
}

export function sleep(msec: number): Promise<void> {
  return new Promise((r) => setTimeout(r, msec));
}
