// How much a command costs to start: zx (what engine/run.ts uses) against a bare
// child_process.spawn of the same `bash -c 'set -eo pipefail; …'` in its own process group, run
// sequentially and with -j = cores. Motivates (or not) a faster spawn path for plain commands.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CORES, REPO, benchDir, ms, mustSucceed, run, table } from './lib/measure.ts';

async function viaZx(cmd: string, cwd: string): Promise<void> {
  const { $ } = await import('zx');
  const p = $({ cwd, shell: '/bin/bash', prefix: 'set -eo pipefail;', quote: (s: string) => s, nothrow: true, quiet: true, verbose: false, detached: true, stdio: ['ignore', 'pipe', 'pipe'] })`${cmd}`;
  p.stdout.on('data', () => {});
  p.stderr.on('data', () => {});
  const r = await p;
  if (r.exitCode !== 0) throw new Error(`exit ${r.exitCode}`);
}

function viaSpawn(cmd: string, cwd: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const c = spawn('/bin/bash', ['-c', `set -eo pipefail;${cmd}`], { cwd, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    c.stdout.on('data', () => {});
    c.stderr.on('data', () => {});
    c.on('error', reject);
    c.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
  });
}

/**
 * A prototype, not what the engine does: one long-lived bash that forks each command (job control
 * on, so every job has its own process group) and reports `id status` lines. Node's spawn forks
 * the whole node process, whose page tables grow with its heap; bash is a few MB.
 */
function bashServer(dir: string): { run: (cmd: string) => Promise<void>; close: () => void } {
  const script = 'set -m; while IFS=$\'\\t\' read -r id cmd; do ( bash -c "set -eo pipefail;$cmd" >/dev/null 2>&1; echo "$id $?" ) & done';
  const c = spawn('/bin/bash', ['-c', script], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, (code: number) => void>();
  let buf = '';
  let next = 0;
  c.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const [id, code] = buf.slice(0, i).split(' ');
      buf = buf.slice(i + 1);
      waiting.get(Number(id))?.(Number(code));
      waiting.delete(Number(id));
    }
  });
  return {
    run: (cmd) => new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      c.stdin.write(`${id}\t${cmd}\n`);
    }),
    close: () => c.stdin.end(),
  };
}

async function timeMany(fn: (cmd: string, cwd: string) => Promise<void>, count: number, jobs: number, dir: string): Promise<number> {
  let next = 0;
  const t0 = performance.now();
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await fn(`cp a b${i % 50}`, dir);
    }
  };
  await Promise.all(Array.from({ length: jobs }, worker));
  return performance.now() - t0;
}

export interface SpawnResult { count: number; rows: Array<{ how: string; jobs: number; ms: number; perCommandMs: number }>; zxImportMs: number[] }

/** What the first command of a build pays to load zx, in a fresh process (best of three). */
function zxImportMs(): number[] {
  const code = "const t = performance.now(); await import('zx'); console.log(performance.now() - t);";
  return [0, 1, 2].map(() => Number(mustSucceed(run('node', ['--input-type=module', '-e', code], { cwd: REPO }), 'zx import').stdout.trim()));
}

export async function runSpawn(count: number, log: (s: string) => void): Promise<SpawnResult> {
  const dir = benchDir('spawn');
  fs.writeFileSync(path.join(dir, 'a'), 'hello\n');
  await viaZx('true', dir); // load zx outside the timing
  const rows: SpawnResult['rows'] = [];
  const server = bashServer(dir);
  await server.run('true');
  for (const jobs of [1, CORES]) {
    for (const [how, fn] of [['zx', viaZx], ['child_process.spawn', viaSpawn], ['bash job server (prototype)', (cmd: string) => server.run(cmd)]] as const) {
      const t = await timeMany(fn, count, jobs, dir);
      rows.push({ how, jobs, ms: t, perCommandMs: t / count });
    }
  }
  server.close();
  const zx = zxImportMs();
  log(`\n== command start-up: ${count} x \`cp a bK\` through bash, own process group ==`);
  log(table(['how', '-j', 'total', 'per command'], rows.map((r) => [r.how, String(r.jobs), ms(r.ms), ms(r.perCommandMs)])));
  log(`import('zx') in a fresh process: ${zx.map((x) => ms(x)).join(', ')} (paid once by every build that runs a command through zx)`);
  return { count, rows, zxImportMs: zx };
}

if (import.meta.url === `file://${process.argv[1]}`) await runSpawn(Number(process.argv[2] ?? 300), console.log);
