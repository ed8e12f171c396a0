// Benchmark 1: the synthetic graph (node-ecosystem.md §3) built by hubmake, GNU make and ninja in
// the same run — clean build, no-op, touch of one source (same bytes), content edit of one
// source — with the outputs compared byte for byte across tools and the commands run counted.
import fs from 'node:fs';
import path from 'node:path';
import { generate, outputPaths, type Tool } from './gen.ts';
import { CORES, INSTALL, REPO, benchDir, has, ms, mustSucceed, ratio, run, stat, table, type Run, type Stat } from './lib/measure.ts';

/** Reference figures from node-ecosystem.md §3 (snakemake 7.21 is not installed here). */
export const SNAKEMAKE_REFERENCE_NOOP_MS: Record<number, number> = { 1000: 1360, 10000: 8000 };

export interface Phase {
  tool: string;
  wall: Stat;
  cpu?: Stat;
  engine?: Stat;
  /** Engine time minus the time commands kept it busy: the engine's own overhead. */
  overhead?: Stat;
  commands: number[];
}

export interface SyntheticResult {
  n: number;
  jobs: number;
  skipped: Record<string, string>;
  /** Min of the interleaved clean builds (ms, cpuMs and engineMs each their own minimum), and the mean wall time. */
  clean: Record<string, { ms: number; meanMs: number; runs: number; cpuMs?: number; engineMs?: number; commands: number }>;
  outputsEqual: boolean | 'skipped';
  noop: Phase[];
  touch: Phase[];
  edit: Phase[];
  floors: Record<string, Stat>;
}

function hubmake(dir: string, form: 'node' | 'npx' = 'node', extraEnv: NodeJS.ProcessEnv = {}): Run {
  const args = ['build.ts', '-C', dir, '-j', String(CORES)];
  const env = { ...process.env, HUBMAKE_TIMING: '1', ...extraEnv };
  return form === 'node' ? run('node', ['--import', 'tsx', ...args], { cwd: REPO, env }) : run('npx', ['tsx', ...args], { cwd: REPO, env });
}

function toolRun(tool: Tool, dir: string): Run {
  if (tool === 'make') return run('make', ['-C', dir, `-j${CORES}`]);
  if (tool === 'ninja') return run('ninja', ['-C', dir, `-j${CORES}`]);
  return hubmake(dir);
}

/** Commands a run executed, read from each tool's own output. */
function commandsRun(tool: Tool, r: Run): number {
  if (tool === 'make') return r.stdout.split('\n').filter((l) => /^(cp|cat) /.test(l)).length;
  if (tool === 'ninja') return r.stdout.split('\n').filter((l) => /^\[\d+\/\d+\]/.test(l)).length;
  const m = /hubmake: (\d+) built/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

function sameOutputs(n: number, root: string, tools: Tool[]): boolean {
  for (const p of outputPaths(n)) {
    const first = fs.readFileSync(path.join(root, tools[0]!, p));
    for (const t of tools.slice(1)) if (!first.equals(fs.readFileSync(path.join(root, t, p)))) return false;
  }
  return true;
}

export function runSynthetic(n: number, runs: number, log: (s: string) => void): SyntheticResult {
  const root = benchDir(`synthetic-${n}`);
  const skipped: Record<string, string> = {};
  const tools: Tool[] = ['hubmake'];
  for (const t of ['make', 'ninja'] as const) {
    if (has(t)) tools.push(t);
    else skipped[t] = `not installed: ${INSTALL[t]}`;
  }
  log(`\n== synthetic graph, N = ${n} targets (${n / 10} sources), -j${CORES}, ${runs} runs each ==`);
  generate(n, root, tools);
  const res: SyntheticResult = { n, jobs: CORES, skipped, clean: {}, outputsEqual: 'skipped', noop: [], touch: [], edit: [], floors: {} };

  // Clean builds, interleaved like the other phases: each tool first removes its own outputs and
  // records, right before its own build. (One build per tool, hubmake's first after the tree was
  // generated, gave 1.30-1.89x make across runs: this VM's file system pays for creating files
  // soon after many were deleted, and a single build took whatever the order gave it.)
  const cleanRuns = new Map<Tool, Run[]>();
  for (let i = 0; i < runs; i++) {
    for (const t of tools) {
      const dir = path.join(root, t);
      cleanTool(dir);
      const r = mustSucceed(toolRun(t, dir), `${t} clean build`);
      cleanRuns.set(t, [...(cleanRuns.get(t) ?? []), r]);
      log(`clean build ${t} (${i + 1}/${runs}): ${ms(r.ms)}${r.engineMs !== undefined ? ` (engine ${ms(r.engineMs)})` : ''}${r.cpuMs !== undefined ? `, cpu ${ms(r.cpuMs)}` : ''}, ${commandsRun(t, r)} commands`);
    }
  }
  for (const [t, rs] of cleanRuns) {
    const min = (f: (r: Run) => number | undefined) => {
      const xs = rs.map(f).filter((x): x is number => x !== undefined);
      return xs.length ? Math.min(...xs) : undefined;
    };
    const engineMs = min((r) => r.engineMs);
    const cpuMs = min((r) => r.cpuMs);
    res.clean[t] = { ms: min((r) => r.ms)!, meanMs: rs.reduce((a, r) => a + r.ms, 0) / rs.length, runs: rs.length, commands: Math.min(...rs.map((r) => commandsRun(t, r))), ...(engineMs !== undefined ? { engineMs } : {}), ...(cpuMs !== undefined ? { cpuMs } : {}) };
  }
  if (tools.length > 1) res.outputsEqual = sameOutputs(n, root, tools);

  const phase = (label: string, before: (t: Tool, dir: string, i: number) => void): Phase[] => {
    const walls = new Map<string, number[]>();
    const cpus = new Map<string, number[]>();
    const engines = new Map<string, number[]>();
    const overheads = new Map<string, number[]>();
    const cmds = new Map<string, number[]>();
    const push = (m: Map<string, number[]>, k: string, v: number) => m.set(k, [...(m.get(k) ?? []), v]);
    for (let i = 0; i < runs; i++) {
      // Interleaved, so that load from other work on the machine falls on every tool alike.
      for (const t of tools) {
        const dir = path.join(root, t);
        before(t, dir, i);
        const r = mustSucceed(toolRun(t, dir), `${t} ${label}`);
        push(walls, t, r.ms);
        if (r.cpuMs !== undefined) push(cpus, t, r.cpuMs);
        push(cmds, t, commandsRun(t, r));
        if (r.engineMs !== undefined) push(engines, t, r.engineMs);
        if (r.engineMs !== undefined && r.commandsBusyMs !== undefined) push(overheads, t, r.engineMs - r.commandsBusyMs);
      }
      if (label === 'no-op') {
        const r = mustSucceed(hubmake(path.join(root, 'hubmake'), 'npx'), 'hubmake npx no-op');
        push(walls, 'hubmake (npx tsx)', r.ms);
        if (r.cpuMs !== undefined) push(cpus, 'hubmake (npx tsx)', r.cpuMs);
        push(cmds, 'hubmake (npx tsx)', commandsRun('hubmake', r));
        if (r.engineMs !== undefined) push(engines, 'hubmake (npx tsx)', r.engineMs);
        // The same no-op decided target by target: what a build pays when the settled stamp
        // cannot answer (the first no-op after a build that wrote its outputs moments ago, a
        // touched file, a glob input). It leaves the stamp as it is.
        const full = mustSucceed(hubmake(path.join(root, 'hubmake'), 'node', { HUBMAKE_NOOP_SHORTCUT: 'off' }), 'hubmake per-target no-op');
        const key = 'hubmake (per-target, HUBMAKE_NOOP_SHORTCUT=off)';
        push(walls, key, full.ms);
        if (full.cpuMs !== undefined) push(cpus, key, full.cpuMs);
        push(cmds, key, commandsRun('hubmake', full));
        if (full.engineMs !== undefined) push(engines, key, full.engineMs);
      }
    }
    return [...walls.keys()].map((t) => {
      const p: Phase = { tool: t, wall: stat(walls.get(t)!), commands: cmds.get(t)! };
      if (engines.has(t)) p.engine = stat(engines.get(t)!);
      if (overheads.has(t)) p.overhead = stat(overheads.get(t)!);
      if (cpus.has(t)) p.cpu = stat(cpus.get(t)!);
      return p;
    });
  };

  res.noop = phase('no-op', () => {});
  res.touch = phase('touch', (_t, dir) => {
    const f = path.join(dir, 'src/s0.txt');
    const now = new Date();
    fs.utimesSync(f, now, now);
  });
  res.edit = phase('edit', (_t, dir, i) => fs.writeFileSync(path.join(dir, 'src/s0.txt'), `leaf 0, edit ${i}\n`));
  if (tools.length > 1) res.outputsEqual = res.outputsEqual === true && sameOutputs(n, root, tools);

  const floor = (cmd: string, args: string[]) => {
    const xs: number[] = [];
    for (let i = 0; i < runs; i++) xs.push(mustSucceed(run(cmd, args, { cwd: REPO }), `${cmd} floor`).ms);
    return stat(xs);
  };
  res.floors['node -e 0'] = floor('node', ['-e', '0']);
  res.floors['node --import tsx bench/empty.ts'] = floor('node', ['--import', 'tsx', 'bench/empty.ts']);
  res.floors['npx tsx bench/empty.ts'] = floor('npx', ['tsx', 'bench/empty.ts']);
  log(renderSynthetic(res));
  return res;
}

/** Removes a tool's outputs and its own records (state, logs): its next build is a clean build. */
function cleanTool(dir: string): void {
  fs.rmSync(path.join(dir, 'out'), { recursive: true, force: true });
  fs.mkdirSync(path.join(dir, 'out'));
  for (const f of ['.hubmake', '.ninja_log', '.ninja_deps']) fs.rmSync(path.join(dir, f), { recursive: true, force: true });
}

export function renderSynthetic(r: SyntheticResult): string {
  const lines: string[] = [];
  const make = (p: Phase[]) => p.find((x) => x.tool === 'make');
  const ninja = (p: Phase[]) => p.find((x) => x.tool === 'ninja');
  const rows = (label: string, ps: Phase[]) =>
    ps.map((p) => [
      `${label} ${p.tool}`,
      ms(p.wall.min),
      ms(p.wall.mean),
      p.engine ? ms(p.engine.min) : '',
      p.overhead ? ms(p.overhead.min) : '',
      [...new Set(p.commands)].join('/'),
      ratio(p.wall.min, make(ps)?.wall.min),
      ratio(p.wall.min, ninja(ps)?.wall.min),
      p.cpu ? ms(p.cpu.min) : '',
      ratio(p.cpu?.min, make(ps)?.cpu?.min),
      ratio(p.cpu?.min, ninja(ps)?.cpu?.min),
    ]);
  const cleanRows = Object.entries(r.clean).map(([t, c]) => [`clean ${t}`, ms(c.ms), c.meanMs !== undefined ? ms(c.meanMs) : '', c.engineMs !== undefined ? ms(c.engineMs) : '', '', String(c.commands), ratio(c.ms, r.clean.make?.ms), ratio(c.ms, r.clean.ninja?.ms), ms(c.cpuMs), ratio(c.cpuMs, r.clean.make?.cpuMs), ratio(c.cpuMs, r.clean.ninja?.cpuMs)]);
  lines.push(`N = ${r.n}, -j${r.jobs}; outputs byte-equal across tools: ${r.outputsEqual}`);
  for (const [t, why] of Object.entries(r.skipped)) lines.push(`skipped ${t}: ${why}`);
  lines.push(table(['phase tool', 'wall min', 'wall mean', 'engine min', 'engine − commands', 'commands', 'vs make', 'vs ninja', 'cpu min', 'cpu vs make', 'cpu vs ninja'], [...cleanRows, ...rows('no-op', r.noop), ...rows('touch', r.touch), ...rows('edit', r.edit)]));
  lines.push(table(['start-up floor', 'min', 'mean'], Object.entries(r.floors).map(([k, s]) => [k, ms(s.min), ms(s.mean)])));
  const snake = SNAKEMAKE_REFERENCE_NOOP_MS[r.n];
  const hub = r.noop.find((p) => p.tool === 'hubmake');
  if (snake && hub) lines.push(`snakemake 7.21 no-op (reference figure from node-ecosystem.md, not measured here): ${ms(snake)}; hubmake whole-process no-op is ${(snake / hub.wall.min).toFixed(1)}x faster`);
  return lines.join('\n');
}
