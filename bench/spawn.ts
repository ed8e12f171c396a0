// How much a command costs to start: zx against a bare child_process.spawn of the same
// `bash -c 'set -eo pipefail; …'` in its own process group, against the engine's launcher (a
// long-lived bash that forks the commands, engine/launcher.ts) and a node launcher relaying output
// frames (the alternative it was chosen over), run sequentially and with -j = cores. This process
// first grows to --ballast MB, as a build's process does with its graph and state: a fork copies
// the page tables of the process that forks, so spawn from a small benchmark flatters it.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CORES, REPO, benchDir, ms, mustSucceed, run, table } from './lib/measure.ts';
import { LAUNCHER_NAME, LauncherPool, launcherFor, SCRIPT, type LauncherProgram } from '../engine/launcher.ts';

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

/** The engine's launcher pool: one launcher per running command (bash forking it, or the C program spawning it). */
function poolLauncher(dir: string, program: LauncherProgram): { run: (cmd: string) => Promise<void>; close: () => void } {
  const pool = new LauncherPool(dir, process.env, 'bench', 60_000, program);
  return {
    run: async (cmd) => {
      const r = await pool.run({ cmd, onOutput: () => {}, onPid: () => {} });
      if (r?.exitCode !== 0) throw new Error(`exit ${r?.exitCode}`);
    },
    close: () => pool.close(),
  };
}

/**
 * The alternative, as a prototype: a small node process that spawns each command and relays its
 * pid, output (base64 in JSON lines) and exit back to the build. It keeps child_process's exact
 * exit reporting, but still forks a ~45 MB process per command and copies every output byte.
 */
function nodeLauncher(dir: string): { run: (cmd: string) => Promise<void>; close: () => void } {
  const script = `const {spawn}=require('child_process');let buf='';process.stdin.setEncoding('utf8');
const send=(o)=>process.stdout.write(JSON.stringify(o)+'\\n');
process.stdin.on('data',(d)=>{buf+=d;let i;while((i=buf.indexOf('\\n'))>=0){const m=JSON.parse(buf.slice(0,i));buf=buf.slice(i+1);go(m);}});
process.stdin.on('end',()=>process.exit(0));
function go(m){const c=spawn('/bin/bash',['-c','set -eo pipefail;'+m.cmd],{detached:true,stdio:['ignore','pipe','pipe']});send({id:m.id,pid:c.pid});
const out=(d)=>send({id:m.id,o:d.toString('base64')});c.stdout.on('data',out);c.stderr.on('data',out);c.on('close',(code,sig)=>send({id:m.id,code,sig}));}`;
  const c = spawn(process.execPath, ['-e', script], { cwd: dir, stdio: ['pipe', 'pipe', 'inherit'] });
  const waiting = new Map<number, (code: number) => void>();
  let buf = '';
  let next = 0;
  c.stdout.on('data', (d: Buffer) => {
    buf += d.toString();
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const m = JSON.parse(buf.slice(0, i)) as { id: number; code?: number };
      buf = buf.slice(i + 1);
      if (m.code !== undefined) {
        waiting.get(m.id)?.(m.code);
        waiting.delete(m.id);
      }
    }
  });
  return {
    run: (cmd) => new Promise((resolve, reject) => {
      const id = next++;
      waiting.set(id, (code) => (code === 0 ? resolve() : reject(new Error(`exit ${code}`))));
      c.stdin.write(`${JSON.stringify({ id, cmd })}\n`);
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

/** Shell scripts running `count` copies of `cp a bK` in `jobs` parallel streams, without node. */
function floors(dir: string, count: number, jobs: number, native: string | undefined): Array<[string, string]> {
  const per = Math.ceil(count / jobs);
  const streams = Array.from({ length: jobs }, (_, j) => j);
  let mk = '.PHONY: all\nall:';
  for (let i = 0; i < count; i++) mk += ` b${i}`;
  mk += '\n';
  for (let i = 0; i < count; i++) mk += `.PHONY: b${i}\nb${i}:\n\tcp a c${i % 50}\n`;
  fs.writeFileSync(path.join(dir, 'Makefile.floor'), mk);
  for (const j of streams) {
    let inp = `\x01bench:\0`;
    for (let i = 0; i < per; i++) inp += `xcp a d${i % 50}\0`;
    fs.writeFileSync(path.join(dir, `launcher-input-${j}`), inp);
  }
  const loop = `for ((i = 0; i < ${per}; i++)); do ( exec cp a e$((i % 50)) ) & wait $!; done`;
  const launcher = (j: number) => `/bin/bash --norc --noprofile -c "$HUBMAKE_BENCH_SCRIPT" ${LAUNCHER_NAME} bench u u u u u < launcher-input-${j} 3</dev/null >/dev/null`;
  const rows: Array<[string, string]> = [
    ['make (forks itself, execs cp; no node)', `make -s -j${jobs} -f Makefile.floor`],
    ['bash loop: ( exec cp ) & wait (no node)', streams.map(() => `( ${loop} ) &`).join(' ') + ' wait'],
    ['launcher script alone, fed from a file (no node)', streams.map((j) => `${launcher(j)} &`).join(' ') + ' wait'],
  ];
  if (native) rows.push(['C launcher alone, fed from a file (no node)', streams.map((j) => `'${native}' bench < launcher-input-${j} >/dev/null &`).join(' ') + ' wait']);
  return rows;
}

export interface SpawnResult { count: number; ballastMb: number; rssMb: number; rows: Array<{ how: string; jobs: number; ms: number; perCommandMs: number }>; zxImportMs: number[] }

/** What the first command of a build pays to load zx, in a fresh process (best of three). */
function zxImportMs(): number[] {
  const code = "const t = performance.now(); await import('zx'); console.log(performance.now() - t);";
  return [0, 1, 2].map(() => Number(mustSucceed(run('node', ['--input-type=module', '-e', code], { cwd: REPO }), 'zx import').stdout.trim()));
}

export async function runSpawn(count: number, log: (s: string) => void, ballastMb = 150): Promise<SpawnResult> {
  const dir = benchDir('spawn');
  fs.writeFileSync(path.join(dir, 'a'), 'hello\n');
  // Touched memory, as a 10,000-target build's process holds (its RSS is 150-300 MB).
  const ballast = Array.from({ length: ballastMb }, () => Buffer.alloc(1 << 20, 1));
  const rssMb = process.memoryUsage().rss / 2 ** 20;
  await viaZx('true', dir); // load zx outside the timing
  const rows: SpawnResult['rows'] = [];
  const bash = poolLauncher(dir, { kind: 'bash' });
  const program = launcherFor({});
  const native = program?.kind === 'native' ? program.path : undefined;
  if (!native) log('spawn: no C launcher is built (no C compiler at npm install?): its rows are skipped');
  const c = native ? poolLauncher(dir, { kind: 'native', path: native }) : undefined;
  const nodeL = nodeLauncher(dir);
  await bash.run('true');
  await c?.run('true');
  await nodeL.run('true');
  const ways: Array<readonly [string, (cmd: string, cwd: string) => Promise<void>]> = [['zx', viaZx], ['child_process.spawn', viaSpawn], ['node launcher (prototype)', (cmd: string) => nodeL.run(cmd)], ['bash launcher (engine/launcher.ts)', (cmd: string) => bash.run(cmd)]];
  if (c) ways.push(['C launcher (engine/launcher.c)', (cmd: string) => c.run(cmd)]);
  for (const jobs of [1, CORES]) {
    for (const [how, fn] of ways) {
      const t = await timeMany(fn, count, jobs, dir);
      rows.push({ how, jobs, ms: t, perCommandMs: t / count });
    }
  }
  bash.close();
  c?.close();
  nodeL.close();
  // What any launcher must pay, measured without node: make forking itself and exec'ing cp (what
  // the clean-build goal compares with), a bare bash loop forking and exec'ing cp, and the
  // launcher's own script fed its commands from a file (its protocol, no build process).
  for (const jobs of [1, CORES]) {
    for (const [how, script] of floors(dir, count, jobs, native)) {
      const r = mustSucceed(run('/bin/bash', ['-c', script], { cwd: dir, env: { ...process.env, HUBMAKE_BENCH_SCRIPT: SCRIPT } }), how);
      rows.push({ how, jobs, ms: r.ms, perCommandMs: r.ms / count });
    }
  }
  const zx = zxImportMs();
  log(`\n== command start-up: ${count} x \`cp a bK\` through bash, own process group; this process's RSS ${rssMb.toFixed(0)} MB ==`);
  log(table(['how', '-j', 'total', 'per command'], rows.map((r) => [r.how, String(r.jobs), ms(r.ms), ms(r.perCommandMs)])));
  log(`import('zx') in a fresh process: ${zx.map((x) => ms(x)).join(', ')} (paid once by every build that runs a command through zx)`);
  if (ballast.length < 0) log(''); // keeps the ballast alive to here
  return { count, ballastMb, rssMb, rows, zxImportMs: zx };
}

if (import.meta.url === `file://${process.argv[1]}`) await runSpawn(Number(process.argv[2] ?? 300), console.log, Number(process.argv[3] ?? 150));
