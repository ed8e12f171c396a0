// Benchmark 4: the hub itself on the reference toolchain, in a temporary copy of the project
// (as tests/hub.test.ts does): clean build, no-op, and a one-bundle rebuild (the dense view's
// epochs changed with -D, so its training, its bundle and what summarises them rerun). Time in
// the engine versus in the tools: targets' start/finish events are timestamped as they arrive,
// the union of their intervals is "tools busy", the rest of the engine's time is the engine's own.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO, ms, table } from './lib/measure.ts';

const COPIED = ['hub.config.json', 'package.json', 'tsconfig.json', 'engine', 'targets', 'rules', 'toolchain'];

export interface HubPhase {
  label: string;
  code: number | null;
  wallMs: number;
  engineMs: number;
  ran: number;
  toolsBusyMs: number;
  toolsSumMs: number;
  engineOwnMs: number;
}

export type HubResult = { pending: string } | { phases: HubPhase[] };

function timedBuild(root: string, args: string[]): Promise<HubPhase & { stderr: string }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const c = spawn(process.execPath, ['--import', 'tsx', path.join(REPO, 'build.ts'), '-C', root, 'hub', '--json', ...args], { cwd: root, env: { ...process.env, HUBMAKE_TIMING: '1' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buf = '';
    let stderr = '';
    const open = new Map<string, number>();
    const spans: Array<[number, number]> = [];
    let sum = 0;
    let ran = 0;
    let firstEvent: number | undefined;
    c.stdout.on('data', (d: Buffer) => {
      const now = performance.now();
      buf += d.toString();
      let i;
      while ((i = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        let e: { type?: string; target?: string; durationMs?: number; status?: string };
        try { e = JSON.parse(line); } catch { continue; }
        firstEvent ??= now;
        if (e.type === 'start' && e.target) open.set(e.target, now);
        if (e.type === 'finish' && e.target) {
          const s = open.get(e.target);
          if (s !== undefined) spans.push([s, now]);
          sum += e.durationMs ?? 0;
          if (e.status === 'built') ran++;
        }
      }
    });
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject);
    c.on('close', (code) => {
      const wallMs = performance.now() - t0;
      spans.sort((a, b) => a[0] - b[0]);
      let busy = 0;
      let end = -Infinity;
      for (const [s, e] of spans) {
        if (s > end) { busy += e - s; end = e; } else if (e > end) { busy += e - end; end = e; }
      }
      const engineMs = Number(/hubmake-engine-ms: ([\d.]+)/.exec(stderr)?.[1] ?? NaN);
      resolve({ label: '', code, wallMs, engineMs, ran, toolsBusyMs: busy, toolsSumMs: sum, engineOwnMs: engineMs - busy, stderr });
    });
  });
}

export async function runHub(log: (s: string) => void): Promise<HubResult> {
  log('\n== the hub on the reference toolchain ==');
  const missing = ['targets/index.ts', 'toolchain', 'hub.config.json'].filter((f) => !fs.existsSync(path.join(REPO, f)));
  if (missing.length) {
    log(`pending: ${missing.join(', ')} not in the repository yet`);
    return { pending: `missing ${missing.join(', ')}` };
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-bench-hub-'));
  for (const f of COPIED) fs.cpSync(path.join(REPO, f), path.join(root, f), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(root, 'node_modules'));
  const phases: HubPhase[] = [];
  const step = async (label: string, args: string[]) => {
    const r = await timedBuild(root, args);
    if (r.code !== 0) log(`${label}: exit ${r.code}\n${r.stderr.slice(-1500)}`);
    phases.push({ ...r, label, stderr: undefined } as unknown as HubPhase);
  };
  await step('clean hub build', []);
  await step('no-op', []);
  await step('no-op', []);
  await step('one-bundle rebuild (-D training.dense.epochs=3)', ['-D', 'training.dense.epochs=3']);
  for (const p of phases) delete (p as { stderr?: string }).stderr;
  log(table(['phase', 'exit', 'wall', 'engine', 'ran', 'tools busy', 'tools sum', 'engine own'], phases.map((p) => [p.label, String(p.code), ms(p.wallMs), ms(p.engineMs), String(p.ran), ms(p.toolsBusyMs), ms(p.toolsSumMs), ms(p.engineOwnMs)])));
  fs.rmSync(root, { recursive: true, force: true });
  return { phases };
}
