// Benchmark of the reference toolchain: runs Phase C, D and E (dense gs2 and baseline gs1)
// at dose 1000 as separate processes, the way the hub calls them, and prints wall time per
// phase. A script, not a test:
//   node --import tsx bench/toolchain.ts [--positions P] [--patch-size N] [--epochs E] [--object-size M] [--keep]
// Defaults are the toolchain's defaults (432 positions, N = 64, 20 epochs).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync, readdirSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';

const argv = process.argv.slice(2);
const opt = (name: string): string | undefined => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : undefined;
};
const keep = argv.includes('--keep');
const size: string[] = [];
for (const k of ['positions', 'patch-size', 'object-size']) {
  const v = opt(k);
  if (v !== undefined) size.push(`--${k}`, v);
}
const epochs = Number(opt('epochs') ?? 20);

const dir = mkdtempSync(join(tmpdir(), 'toolchain-bench-'));
const C = join(dir, 'phase_c');
const D = join(dir, 'phase_d');
const A = join(dir, 'phase_e');
const cfg = join(dir, 'settings.json');
writeFileSync(cfg, JSON.stringify({ epochs }));

function run(label: string, tool: string, args: string[], expect: number[] = [0]): number {
  const t0 = performance.now();
  const r = spawnSync(process.execPath, ['--import', 'tsx', `toolchain/${tool}.ts`, ...args], { encoding: 'utf8' });
  const secs = (performance.now() - t0) / 1000;
  if (r.status === null || !expect.includes(r.status)) {
    process.stderr.write(r.stdout + r.stderr);
    throw new Error(`${label}: exit ${r.status}, expected ${expect.join(' or ')}`);
  }
  console.log(`${label.padEnd(44)} ${secs.toFixed(2).padStart(7)} s`);
  return secs;
}

function du(path: string): number {
  let total = 0;
  for (const e of readdirSync(path, { withFileTypes: true })) {
    const p = join(path, e.name);
    total += e.isDirectory() ? du(p) : statSync(p).size;
  }
  return total;
}

console.log(`reference toolchain benchmark — ${cpus().length} CPU(s), Node ${process.version}, ${size.join(' ') || 'default sizes'}, ${epochs} epochs`);
const exec = ['--accelerator', 'cpu', '--deterministic', '--num-workers', '0', '--config', cfg];
let total = 0;
total += run('Phase C generation (dose 1000)', 'generation', ['--output-root', C, '--dose', '1000', ...size]);
// The study's default views: dense is written, sparse is rejected (exit 1) on the default
// geometry; other sizes may let sparse pass.
const sparseExit = size.length === 0 ? [1] : [0, 1];
total += run('Phase D overlap (dense + sparse)', 'overlap', ['--phase-c-root', C, '--output-root', D, '--doses', '1000', '--views', 'dense', 'sparse'], sparseExit);
total += run('Phase D overlap (dense only)', 'overlap', ['--phase-c-root', C, '--output-root', D, '--doses', '1000', '--views', 'dense']);
total += run('Phase E training dense gs2', 'training', ['--phase-c-root', C, '--phase-d-root', D, '--artifact-root', A, '--dose', '1000', '--view', 'dense', '--gridsize', '2', ...exec]);
total += run('Phase E training baseline gs1', 'training', ['--phase-c-root', C, '--phase-d-root', D, '--artifact-root', A, '--dose', '1000', '--view', 'baseline', '--gridsize', '1', ...exec]);
console.log(`${'total'.padEnd(44)} ${total.toFixed(2).padStart(7)} s`);
console.log(`disk: Phase C ${(du(C) / 1e6).toFixed(1)} MB, Phase D ${(du(D) / 1e6).toFixed(1)} MB, Phase E ${(du(A) / 1e6).toFixed(1)} MB`);
if (keep) console.log(`kept: ${dir}`);
else rmSync(dir, { recursive: true, force: true });
