// Benchmark 3: how cost grows with the graph. The synthetic graph at each size, built once with
// in-process actions (bench/gen.ts: same shape, no process per target, so 100,000 targets build
// in minutes and the figures are the engine's), then: state bytes per target, peak RSS, planning
// time (the engine time of a no-op build: load, validate, graph, state, fingerprint and decide
// every target) and where that time goes (bench/probe.ts).
import fs from 'node:fs';
import path from 'node:path';
import { generate } from './gen.ts';
import { CORES, REPO, benchDir, ms, mustSucceed, run, stat, table, type Stat } from './lib/measure.ts';

export interface ScaleRow {
  n: number;
  cleanMs: number;
  cleanEngineMs: number;
  cleanMaxRssMb: number;
  noopWall: Stat;
  /** Engine time of a no-op answered by the settled stamp (engine/stamp.ts). */
  planning: Stat;
  /** Engine time of a no-op decided target by target (HUBMAKE_NOOP_SHORTCUT=off), and its peak RSS. */
  perTarget: Stat;
  perTargetMaxRssMb: number;
  noopMaxRssMb: number;
  logBytesPerTarget: number;
  statBytesPerTarget: number;
  phases: Record<string, number>;
  rssAfter: Record<string, number>;
}

function du(p: string): number {
  if (!fs.existsSync(p)) return 0;
  const st = fs.statSync(p);
  if (!st.isDirectory()) return st.size;
  return fs.readdirSync(p).reduce((a, f) => a + du(path.join(p, f)), 0);
}

export function runScale(sizes: number[], runs: number, log: (s: string) => void): ScaleRow[] {
  const rows: ScaleRow[] = [];
  log(`\n== scale: action targets (the synthetic graph, copying in-process), ${runs} no-op runs each ==`);
  for (const n of sizes) {
    const root = benchDir(`scale-${n}`);
    generate(n, root, ['hubmake']);
    const dir = path.join(root, 'hubmake');
    const args = ['--import', 'tsx', 'build.ts', '-C', dir, '-f', 'targets/actions.ts', '-j', String(CORES)];
    const env = { ...process.env, HUBMAKE_TIMING: '1' };
    const clean = mustSucceed(run('node', args, { cwd: REPO, env, rss: true }), `scale ${n} clean build`);
    const walls: number[] = [];
    const plans: number[] = [];
    const full: number[] = [];
    let rss = 0;
    let fullRss = 0;
    // The first no-op re-hashes the outputs the clean build wrote moments ago and writes the
    // settled stamp; the runs after it are answered by the stamp. Each is followed by the same
    // no-op decided per target, which leaves the stamp alone.
    mustSucceed(run('node', args, { cwd: REPO, env }), `scale ${n} first no-op`);
    for (let i = 0; i < runs; i++) {
      const r = mustSucceed(run('node', args, { cwd: REPO, env, rss: true }), `scale ${n} no-op`);
      if (!/nothing to do/.test(r.stdout)) throw new Error(`scale ${n}: the no-op build did something:\n${r.stdout.slice(-1000)}`);
      walls.push(r.ms);
      plans.push(r.engineMs ?? NaN);
      rss = Math.max(rss, r.maxRssKb ?? 0);
      const f = mustSucceed(run('node', args, { cwd: REPO, env: { ...env, HUBMAKE_NOOP_SHORTCUT: 'off' }, rss: true }), `scale ${n} per-target no-op`);
      if (!/nothing to do/.test(f.stdout)) throw new Error(`scale ${n}: the per-target no-op did something:\n${f.stdout.slice(-1000)}`);
      full.push(f.engineMs ?? NaN);
      fullRss = Math.max(fullRss, f.maxRssKb ?? 0);
    }
    const probe = mustSucceed(run('node', ['--import', 'tsx', 'bench/probe.ts', dir, 'targets/actions.ts'], { cwd: REPO }), `scale ${n} probe`);
    const p = JSON.parse(probe.stdout.trim().split('\n').pop()!) as { phases: Record<string, number>; rssAfter: Record<string, number>; logBytes: number; statBytes: number };
    const row: ScaleRow = {
      n,
      cleanMs: clean.ms,
      cleanEngineMs: clean.engineMs ?? NaN,
      cleanMaxRssMb: (clean.maxRssKb ?? 0) / 1024,
      noopWall: stat(walls),
      planning: stat(plans),
      perTarget: stat(full),
      perTargetMaxRssMb: fullRss / 1024,
      noopMaxRssMb: rss / 1024,
      logBytesPerTarget: p.logBytes / n,
      statBytesPerTarget: p.statBytes / n,
      phases: p.phases,
      rssAfter: p.rssAfter,
    };
    const other = du(path.join(dir, '.hubmake')) - p.logBytes - p.statBytes;
    log(`N = ${n}: clean build ${ms(row.cleanMs)} (engine ${ms(row.cleanEngineMs)}, peak RSS ${row.cleanMaxRssMb.toFixed(0)} MB); .hubmake also holds ${(other / 1e6).toFixed(1)} MB of artifact cache/store`);
    rows.push(row);
  }
  log(renderScale(rows));
  return rows;
}

export function renderScale(rows: ScaleRow[]): string {
  const out = [
    table(
      // The sum is issue 6's budget: under 300 bytes of state per target (engine/state-codec.ts).
      ['N', 'no-op engine (settled stamp) min', 'per target', 'no-op wall min', 'peak RSS no-op', 'planning per target (stamp off) min', 'per target', 'peak RSS, stamp off', 'peak RSS clean', 'state log B/target', 'stat cache B/target', 'state B/target'],
      rows.map((r) => [String(r.n), ms(r.planning.min), `${((r.planning.min * 1000) / r.n).toFixed(1)} µs`, ms(r.noopWall.min), `${r.noopMaxRssMb.toFixed(0)} MB`, ms(r.perTarget?.min), r.perTarget ? `${((r.perTarget.min * 1000) / r.n).toFixed(1)} µs` : '', r.perTargetMaxRssMb !== undefined ? `${r.perTargetMaxRssMb.toFixed(0)} MB` : '', `${r.cleanMaxRssMb.toFixed(0)} MB`, r.logBytesPerTarget.toFixed(0), r.statBytesPerTarget.toFixed(0), (r.logBytesPerTarget + r.statBytesPerTarget).toFixed(0)]),
    ),
  ];
  const keys = [...new Set(rows.flatMap((r) => Object.keys(r.phases)))];
  out.push('where the no-op time goes (one in-process probe per size):');
  out.push(table(['phase', ...rows.map((r) => `N=${r.n}`), ...rows.map((r) => `RSS after, N=${r.n}`)], keys.map((k) => [k, ...rows.map((r) => ms(r.phases[k])), ...rows.map((r) => (r.rssAfter?.[k] !== undefined ? `${r.rssAfter[k]} MB` : ''))])));
  return out.join('\n');
}
