// The tests behind toolchain/selftest.ts: named after, and asserting what, the study's
// tests/study/test_dose_overlap_training.py asserts, but run against this toolchain on a
// tiny dataset (N = 16, 96 positions, 3 epochs) generated into a temp directory.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, openSync, readSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { readBundle } from './bundle.ts';
import { type Io } from './cli.ts';
import { runGeneration } from './phase_c.ts';
import { runOverlap } from './phase_d.ts';
import { buildTrainingJobs, executeTrainingJob } from './phase_e.ts';
import { DEFAULT_SETTINGS } from './epie.ts';

export const TEST_FILE = 'tests/study/test_dose_overlap_training.py';
const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SILENT: Io = { out: () => {}, err: () => {} };

interface Fixture {
  dir: string;
  C: string;
  D: string;
  settings: string;
}

let fixture: Fixture | undefined;
/** Session fixture: Phase C + D for dose 1000 on a tiny geometry, built once. */
async function data(): Promise<Fixture> {
  if (fixture) return fixture;
  const dir = mkdtempSync(join(tmpdir(), 'hubmake-selftest-'));
  const C = join(dir, 'phase_c');
  const D = join(dir, 'phase_d');
  const gen = await runGeneration(['--output-root', C, '--dose', '1000', '--patch-size', '16', '--positions', '96'], SILENT);
  assert.equal(gen, 0, 'Phase C generation failed');
  // dense only: the sparse view stays missing, which Phase E must record as a skip
  const ov = await runOverlap(['--phase-c-root', C, '--output-root', D, '--doses', '1000', '--views', 'dense'], SILENT);
  assert.equal(ov, 0, 'Phase D overlap failed');
  const settings = join(dir, 'settings.json');
  writeFileSync(settings, JSON.stringify({ epochs: 3, seed: 7 }));
  fixture = { dir, C, D, settings };
  return fixture;
}

function sha256Chunked(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(65536);
  for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) h.update(buf.subarray(0, n));
  closeSync(fd);
  return h.digest('hex');
}

function runTrainingCli(args: string[]): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(REPO, 'toolchain', 'training.ts'), ...args], { cwd: REPO, encoding: 'utf8' });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

const HEX64 = /^[0-9a-f]{64}$/;

type Manifest = {
  jobs: Array<{ view: string; dose: number; gridsize: number; result: Record<string, unknown> }>;
  skipped_views: Array<{ dose: number; view: string; reason: string }>;
  skipped_count: number;
  skip_summary_path: string;
  dry_run: boolean;
};

export const TESTS: Array<{ name: string; fn: () => Promise<void> }> = [
  {
    name: 'test_build_training_jobs_matrix',
    async fn() {
      const f = await data();
      const { jobs, skips } = buildTrainingJobs(f.C, f.D, join(f.dir, 'matrix'), [1000]);
      assert.deepEqual(jobs.map((j) => `${j.view}/gs${j.gridsize}`), ['baseline/gs1', 'dense/gs2']);
      assert.equal(jobs[0]!.train_data_path, join(f.C, 'dose_1000', 'patched_train.npz'));
      assert.equal(jobs[1]!.train_data_path, join(f.D, 'dose_1000', 'dense', 'dense_train.npz'));
      assert.equal(jobs[1]!.artifact_dir, join(f.dir, 'matrix', 'dose_1000', 'dense', 'gs2'));
      assert.equal(skips.length, 1);
      assert.equal(skips[0]!.view, 'sparse');
      assert.match(skips[0]!.reason, /^NPZ files not found \(train=False, test=False\)/);
    },
  },
  {
    name: 'test_run_training_job_dry_run',
    async fn() {
      const f = await data();
      const A = join(f.dir, 'dry');
      const r = runTrainingCli(['--phase-c-root', f.C, '--phase-d-root', f.D, '--artifact-root', A, '--dose', '1000', '--view', 'dense', '--dry-run']);
      assert.equal(r.code, 0, r.stderr);
      const log = readFileSync(join(A, 'dose_1000', 'dense', 'gs2', 'train.log'), 'utf8');
      assert.match(log, /^DRY RUN: dense dose=1000 gridsize=2/);
      assert.ok(!existsSync(join(A, 'dose_1000', 'dense', 'gs2', 'wts.h5.zip')), 'dry run must not write a bundle');
      const m = JSON.parse(readFileSync(join(A, 'training_manifest.json'), 'utf8')) as Manifest;
      assert.equal(m.dry_run, true);
      assert.equal(m.jobs[0]!.result['dry_run'], true);
    },
  },
  {
    name: 'test_execute_training_job_persists_bundle',
    async fn() {
      const f = await data();
      const A = join(f.dir, 'persist');
      const job = buildTrainingJobs(f.C, f.D, A, [1000]).jobs.find((j) => j.view === 'dense')!;
      const result = executeTrainingJob(
        job,
        { settings: { ...DEFAULT_SETTINGS, epochs: 3 }, configPath: null, fault: undefined, execution: { accelerator: 'cpu', deterministic: true, num_workers: 0 } },
        SILENT,
      );
      assert.equal(result['status'], 'success', String(result['error']));
      const bundlePath = result['bundle_path'];
      assert.ok(typeof bundlePath === 'string', 'bundle_path must be set');
      const onDisk = join(job.artifact_dir, bundlePath);
      assert.ok(existsSync(onDisk), `bundle missing: ${onDisk}`);
      assert.ok(onDisk.endsWith('.zip'));
      const sha = result['bundle_sha256'];
      assert.ok(typeof sha === 'string' && HEX64.test(sha), `bundle_sha256 not 64 lowercase hex: ${String(sha)}`);
      // the integrity check: SHA-256 recomputed from disk (64 KiB chunks) equals the result's
      assert.equal(sha256Chunked(onDisk), sha);
      assert.equal(result['bundle_size_bytes'], statSync(onDisk).size);
      const b = readBundle(onDisk);
      assert.deepEqual(b.manifest.models, ['autoencoder', 'diffraction_to_obj']);
      for (const m of b.manifest.models) assert.ok(b.names.includes(`${m}/params.json`), `bundle lacks ${m}/params.json`);
      const log = readFileSync(job.log_path, 'utf8');
      assert.ok(log.includes(`Bundle SHA256: ${sha}`), 'train.log must record the SHA-256');
    },
  },
  {
    name: 'test_training_cli_records_bundle_path',
    async fn() {
      const f = await data();
      const A = join(f.dir, 'cli');
      const r = runTrainingCli([
        '--phase-c-root', f.C, '--phase-d-root', f.D, '--artifact-root', A, '--dose', '1000', '--view', 'dense', '--gridsize', '2',
        '--config', f.settings, '--accelerator', 'cpu', '--deterministic', '--num-workers', '0',
      ]);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(readFileSync(join(A, 'training_manifest.json'), 'utf8')) as Manifest;
      const job = m.jobs.find((j) => j.view === 'dense' && j.dose === 1000);
      assert.ok(job, 'manifest has no dense/dose=1000 job');
      const res = job.result;
      assert.equal(res['status'], 'success', String(res['error']));
      assert.equal(res['bundle_path'], 'wts.h5.zip');
      assert.ok(typeof res['bundle_sha256'] === 'string' && HEX64.test(res['bundle_sha256']));
      assert.ok(Number.isInteger(res['bundle_size_bytes']) && (res['bundle_size_bytes'] as number) > 0);
      const line = (kind: string) => new RegExp(`^    → ${kind} \\[dense/dose=1e\\+03\\]: (.+)$`, 'm').exec(r.stdout)?.[1];
      assert.equal(line('Bundle'), 'wts.h5.zip');
      assert.equal(line('SHA256'), res['bundle_sha256']);
      assert.equal(line('Size'), `${res['bundle_size_bytes']} bytes`);
    },
  },
  {
    name: 'test_training_cli_manifest_and_bridging',
    async fn() {
      const f = await data();
      const A = join(f.dir, 'bridging');
      const r = runTrainingCli(['--phase-c-root', f.C, '--phase-d-root', f.D, '--artifact-root', A, '--dose', '1000', '--view', 'baseline', '--config', f.settings]);
      assert.equal(r.code, 0, r.stderr);
      const m = JSON.parse(readFileSync(join(A, 'training_manifest.json'), 'utf8')) as Manifest;
      assert.deepEqual(m.jobs.map((j) => `${j.view}/gs${j.gridsize}`), ['baseline/gs1']);
      assert.equal(m.skipped_count, 1);
      assert.equal(m.skip_summary_path, 'skip_summary.json');
      const s = JSON.parse(readFileSync(join(A, 'skip_summary.json'), 'utf8')) as Record<string, unknown>;
      assert.deepEqual(Object.keys(s), ['timestamp', 'skipped_views', 'skipped_count']);
      assert.equal(s['skipped_count'], 1);
      assert.deepEqual(s['skipped_views'], m.skipped_views);
      assert.equal(m.skipped_views[0]!.view, 'sparse');
      assert.equal(m.skipped_views[0]!.dose, 1000);
    },
  },
];

// ---------------------------------------------------------------- runner

/** -k expressions: substrings combined with and / or / not and parentheses. */
export function keywordMatcher(expr: string): (name: string) => boolean {
  const toks = expr.match(/\(|\)|[^\s()]+/g) ?? [];
  let i = 0;
  type Node = (n: string) => boolean;
  const orExpr = (): Node => {
    let left = andExpr();
    while (toks[i] === 'or') {
      i++;
      const l = left;
      const r = andExpr();
      left = (n) => l(n) || r(n);
    }
    return left;
  };
  const andExpr = (): Node => {
    let left = notExpr();
    while (toks[i] === 'and') {
      i++;
      const l = left;
      const r = notExpr();
      left = (n) => l(n) && r(n);
    }
    return left;
  };
  const notExpr = (): Node => {
    if (toks[i] === 'not') {
      i++;
      const inner = notExpr();
      return (n) => !inner(n);
    }
    if (toks[i] === '(') {
      i++;
      const inner = orExpr();
      if (toks[i++] !== ')') throw new Error(`-k: missing ')' in '${expr}'`);
      return inner;
    }
    const word = toks[i++];
    if (word === undefined || word === ')') throw new Error(`-k: unexpected end of expression '${expr}'`);
    return (n) => n.toLowerCase().includes(word.toLowerCase());
  };
  const node = orExpr();
  if (i !== toks.length) throw new Error(`-k: unexpected '${toks[i]}' in '${expr}'`);
  return node;
}

function banner(title: string, width = 80, fill = '='): string {
  const t = ` ${title} `;
  const left = Math.max(0, Math.floor((width - t.length) / 2));
  return fill.repeat(left) + t + fill.repeat(Math.max(0, width - left - t.length));
}

export async function runSelftest(argv: string[], write: (s: string) => void): Promise<number> {
  const out = (l = ''): void => write(l + '\n');
  let collectOnly = false;
  let verbose = 0;
  let keyword: string | undefined;
  const targets: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--collect-only' || a === '--co') collectOnly = true;
    else if (a === '-v' || a === '-vv' || a === '-vvv') verbose += a.length - 1;
    else if (a === '-q') verbose = -1;
    else if (a === '-k') {
      keyword = argv[++i];
      if (keyword === undefined) {
        out('ERROR: argument -k: expected one argument');
        return 2;
      }
    } else if (a.startsWith('-')) {
      out(`ERROR: unrecognized arguments: ${a}`);
      return 2;
    } else targets.push(a);
  }
  let selected = TESTS.map((t) => t.name);
  const all = selected.length;
  if (targets.length > 0) {
    const names = new Set<string>();
    for (const t of targets) {
      const [file, fn] = t.split('::') as [string, string | undefined];
      if (file.replace(/^\.\//, '') !== TEST_FILE) {
        out(`ERROR: file or directory not found: ${file}`);
        return 2;
      }
      if (fn === undefined) TESTS.forEach((x) => names.add(x.name));
      else if (TESTS.some((x) => x.name === fn)) names.add(fn);
      else {
        out(`ERROR: not found: ${t}`);
        out(`(no match in any of [<Module ${TEST_FILE.split('/').pop()}>])`);
        return 2;
      }
    }
    selected = selected.filter((n) => names.has(n));
  }
  const narrowed = selected.length;
  if (keyword !== undefined) {
    let match: (n: string) => boolean;
    try {
      match = keywordMatcher(keyword);
    } catch (e) {
      out(`ERROR: Wrong expression passed to '-k': ${keyword}: ${(e as Error).message}`);
      return 2;
    }
    selected = selected.filter(match);
  }
  const deselected = narrowed - selected.length;
  const t0 = performance.now();
  const secs = (): string => ((performance.now() - t0) / 1000).toFixed(2);
  out(banner('test session starts'));
  out(`platform ${process.platform} -- Node ${process.version}, hubmake-selftest 0.1.0 (reference toolchain, pytest-like)`);
  out(`rootdir: ${REPO}`);
  out(`collected ${narrowed} item${narrowed === 1 ? '' : 's'}${deselected ? ` / ${deselected} deselected / ${selected.length} selected` : ''}`);
  out();
  if (collectOnly) {
    if (selected.length > 0) {
      out(`<Module ${TEST_FILE}>`);
      for (const n of selected) out(`  <Function ${n}>`);
      out();
    }
    const counted = deselected ? `${selected.length}/${narrowed} tests collected (${deselected} deselected)` : `${selected.length} tests collected`;
    out(banner(`${counted} in ${secs()}s`));
    return selected.length === 0 ? 5 : 0;
  }
  if (selected.length === 0) {
    out(banner(`${deselected} deselected in ${secs()}s`));
    return 5;
  }
  const failures: Array<{ name: string; error: unknown }> = [];
  let dots = '';
  for (const [i, name] of selected.entries()) {
    const test = TESTS.find((t) => t.name === name)!;
    let ok = true;
    try {
      await test.fn();
    } catch (e) {
      ok = false;
      failures.push({ name, error: e });
    }
    const pct = `[${String(Math.round((100 * (i + 1)) / selected.length)).padStart(3)}%]`;
    if (verbose > 0) out(`${TEST_FILE}::${name} ${ok ? 'PASSED' : 'FAILED'} ${pct}`);
    else dots += ok ? '.' : 'F';
  }
  if (verbose <= 0) out(`${TEST_FILE} ${dots}`);
  if (fixture) rmSync(fixture.dir, { recursive: true, force: true });
  fixture = undefined;
  if (failures.length > 0) {
    out();
    out(banner('FAILURES'));
    for (const f of failures) {
      out(banner(f.name, 80, '_'));
      out(f.error instanceof Error ? (f.error.stack ?? String(f.error)) : String(f.error));
    }
    out(banner('short test summary info'));
    for (const f of failures) {
      const msg = f.error instanceof Error ? f.error.message.split('\n')[0] : String(f.error);
      out(`FAILED ${TEST_FILE}::${f.name} - ${msg}`);
    }
  }
  if (failures.length === 0) out();
  const passed = selected.length - failures.length;
  const parts = [...(failures.length ? [`${failures.length} failed`] : []), ...(passed ? [`${passed} passed`] : []), ...(deselected ? [`${deselected} deselected`] : [])];
  out(banner(`${parts.join(', ')} in ${secs()}s`));
  return failures.length ? 1 : 0;
}
