// Watch mode over a large dataset directory: how long from a save to the start of the target it
// makes stale (p50/p95), how much CPU, memory and how many inotify watches the watching process
// holds while idle, and the same directory under chokidar 5 (one watch per file) for comparison.
// Not part of `npm test`.
//
//   node --import tsx bench/watch.ts [--files 100000] [--per-dir 1000] [--saves 20] [--idle-s 10] [--debounce 150] [--no-chokidar]
//
// The targets module: `out/small.txt` reads one small source file; `out/tree.txt` reads the whole
// dataset directory (a directory input: every build of it re-stats the tree through the stat cache).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { REPO, machine, sleep } from './lib/measure.ts';

const { values: v } = parseArgs({
  options: {
    files: { type: 'string', default: '100000' },
    'per-dir': { type: 'string', default: '1000' },
    saves: { type: 'string', default: '20' },
    'idle-s': { type: 'string', default: '10' },
    debounce: { type: 'string', default: '150' },
    'no-chokidar': { type: 'boolean' },
  },
});
const FILES = Number(v.files);
const PER_DIR = Number(v['per-dir']);
const SAVES = Number(v.saves);
const IDLE_S = Number(v['idle-s']);

type Ev = Record<string, unknown> & { type: string; time: number };

function makeRoot(): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-bench-watch-'));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  fs.mkdirSync(path.join(root, 'targets'));
  fs.mkdirSync(path.join(root, 'src'));
  fs.writeFileSync(path.join(root, 'src/s.txt'), 's\n');
  fs.writeFileSync(path.join(root, 'targets/index.ts'), `export default [
  { outputs: ['out/small.txt'], inputs: ['src/s.txt'], run: 'mkdir -p out && cp src/s.txt out/small.txt' },
  { outputs: ['out/tree.txt'], inputs: ['data/'], run: 'mkdir -p out && find data -type f | wc -l > out/tree.txt' },
];\n`);
  for (let d = 0; d * PER_DIR < FILES; d++) {
    const dir = path.join(root, 'data', `d${String(d).padStart(4, '0')}`);
    fs.mkdirSync(dir, { recursive: true });
    for (let i = 0; i < PER_DIR && d * PER_DIR + i < FILES; i++) fs.writeFileSync(path.join(dir, `f${i}.bin`), `${d}-${i}\n`);
  }
  return root;
}

/** CPU seconds (user+system) of a process, from /proc. */
function cpuSeconds(pid: number): number {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const parts = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(parts[11]) + Number(parts[12])) / 100; // utime, stime in clock ticks (100/s)
}

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

function inotifyWatches(pid: number): number {
  let n = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fdinfo`)) {
    try {
      n += (fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').match(/^inotify wd:/gm) ?? []).length;
    } catch { /* closed meanwhile */ }
  }
  return n;
}

function pct(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
}

async function benchHubmake(root: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'build.ts'), '-C', root, '--watch', '--json', '-j', '2', '--debounce', v.debounce], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const events: Ev[] = [];
  let buf = '';
  child.stdout.on('data', (c: Buffer) => {
    buf += c.toString();
    const lines = buf.split('\n');
    buf = lines.pop() ?? '';
    for (const l of lines) if (l.startsWith('{')) events.push(JSON.parse(l) as Ev);
  });
  const waitFor = async (from: number, pred: (e: Ev) => boolean, what: string, timeoutMs = 600_000): Promise<Ev> => {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = events.slice(from).find(pred);
      if (hit) return hit;
      if (child.exitCode !== null) throw new Error(`watch exited while waiting for ${what}`);
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await sleep(5);
    }
  };
  const t0 = Date.now();
  const ready = await waitFor(0, (e) => e.type === 'watch-ready', 'the first build');
  const firstBuildAndReadyMs = ready.time - t0;

  // Idle: nothing changes for IDLE_S seconds.
  const c0 = cpuSeconds(child.pid!);
  await sleep(IDLE_S * 1000);
  const idleCpuPct = ((cpuSeconds(child.pid!) - c0) / IDLE_S) * 100;
  const idle = { cpuPct: idleCpuPct, rssMiB: rssMiB(child.pid!), inotifyWatches: inotifyWatches(child.pid!), watchedDirs: ready.watches };

  const latency = async (file: string, target: string, n: number) => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const mark = events.length;
      const t = Date.now();
      fs.writeFileSync(path.join(root, file), `save ${i} ${t}\n`);
      const start = await waitFor(mark, (e) => e.type === 'start' && e.target === target, `${target} to start`);
      out.push(start.time - t);
      await waitFor(mark, (e) => e.type === 'watch-ready', 'idle again');
      await sleep(100);
    }
    return { p50: pct(out, 50), p95: pct(out, 95), max: Math.max(...out), n };
  };
  const small = await latency('src/s.txt', 'out/small.txt', SAVES);
  const tree = await latency('data/d0000/f0.bin', 'out/tree.txt', Math.max(3, Math.round(SAVES / 4)));
  const cpuDuringSaves = cpuSeconds(child.pid!) - c0;
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
  return { firstBuildAndReadyMs, idle, saveToStartMs: { smallFile: small, datasetFile: tree }, cpuSecondsTotalAfterReady: cpuDuringSaves, exitCode: code };
}

/** chokidar 5 on the same directory, in its own process: time to ready, watches, memory, idle CPU. */
async function benchChokidar(root: string) {
  const script = `
    import chokidar from 'chokidar';
    const t0 = performance.now();
    const w = chokidar.watch(['data'], { ignoreInitial: true });
    w.on('ready', () => process.stdout.write(JSON.stringify({ readyMs: Math.round(performance.now() - t0) }) + '\\n'));
  `;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'inherit'] });
  const readyMs = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (c: Buffer) => resolve((JSON.parse(c.toString()) as { readyMs: number }).readyMs));
    child.on('exit', () => reject(new Error('chokidar exited')));
  });
  const c0 = cpuSeconds(child.pid!);
  await sleep(IDLE_S * 1000);
  const res = { readyMs, idleCpuPct: ((cpuSeconds(child.pid!) - c0) / IDLE_S) * 100, rssMiB: rssMiB(child.pid!), inotifyWatches: inotifyWatches(child.pid!) };
  child.kill('SIGKILL');
  return res;
}

const root = makeRoot();
console.error(`dataset: ${FILES} files in ${Math.ceil(FILES / PER_DIR)} directories under ${root}`);
try {
  const hubmake = await benchHubmake(root);
  const chokidar = v['no-chokidar'] ? undefined : await benchChokidar(root);
  const result = { machine: machine(), files: FILES, perDir: PER_DIR, debounceMs: Number(v.debounce), hubmake, chokidar };
  console.log(JSON.stringify(result, null, 2));
  const outDir = path.join(REPO, 'bench/out');
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, 'watch-latest.json'), JSON.stringify(result, null, 2) + '\n');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
