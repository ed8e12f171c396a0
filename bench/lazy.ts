// Check: a no-op build loads nothing that only running commands (zx), watch mode (chokidar) or
// glob patterns (fast-glob, picomatch; the graph here declares none) need. Every module URL the
// build resolves is recorded through a loader hook; the trace must show the package every build
// loads (tsx), or the check itself would be blind.
import fs from 'node:fs';
import path from 'node:path';
import { REPO, benchDir, mustSucceed, run } from './lib/measure.ts';

export interface LazyResult {
  noopPackages: string[];
  noopHasZx: boolean;
  noopHasChokidar: boolean;
  noopHasGlobs: boolean;
  runPackages: string[];
  runHasZx: boolean;
  traceSeesPackages: boolean;
  ok: boolean;
}

function packagesLoaded(root: string, trace: string): string[] {
  fs.rmSync(trace, { force: true });
  const env = { ...process.env, HUBMAKE_TRACE_FILE: trace };
  mustSucceed(run('node', ['--import', './bench/lib/trace-imports.mjs', '--import', 'tsx', 'build.ts', '-C', root], { cwd: REPO, env }), 'traced build');
  const urls = fs.existsSync(trace) ? fs.readFileSync(trace, 'utf8').split('\n') : [];
  const pkgs = new Set<string>();
  for (const u of urls) {
    const m = /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(u);
    if (m) pkgs.add(m[1]!);
    // The two packages bundled beside the compiled engine (engine/globs.ts).
    if (u.endsWith('/dist/engine/globs.cjs')) pkgs.add('fast-glob').add('picomatch');
  }
  return [...pkgs].sort();
}

export function runLazy(log: (s: string) => void): LazyResult {
  const root = benchDir('lazy');
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(path.join(root, 'targets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'in.txt'), 'x\n');
  fs.writeFileSync(path.join(root, 'targets/index.ts'), `export default [{ outputs: ['out.txt'], inputs: ['in.txt'], run: 'cp in.txt out.txt' }];\n`);
  const trace = path.join(root, '..', 'lazy-trace.txt');
  const runPackages = packagesLoaded(root, trace); // first build runs the command
  const noopPackages = packagesLoaded(root, trace); // second is a no-op
  const res: LazyResult = {
    noopPackages,
    noopHasZx: noopPackages.includes('zx'),
    noopHasChokidar: noopPackages.includes('chokidar'),
    noopHasGlobs: noopPackages.includes('fast-glob') || noopPackages.includes('picomatch'),
    runPackages,
    runHasZx: runPackages.includes('zx'),
    traceSeesPackages: noopPackages.includes('tsx'),
    ok: false,
  };
  res.ok = !res.noopHasZx && !res.noopHasChokidar && !res.noopHasGlobs && res.traceSeesPackages;
  log('\n== lazy imports ==');
  log(`no-op build loads packages: ${noopPackages.join(', ') || '(none)'}`);
  log(`a build that runs a command loads: ${runPackages.join(', ')}`);
  log(`check: no zx, no chokidar, no fast-glob or picomatch in a no-op without globs (and the trace sees tsx, so it is not blind): ${res.ok ? 'PASS' : 'FAIL'}`);
  return res;
}
