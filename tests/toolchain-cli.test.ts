// End-to-end tests of the reference toolchain CLIs (Phase C generation, Phase D overlap,
// Phase E training) on small geometries: file layouts and JSON schemas of the study, the
// study's failure paths (rejected view, missing view, failed training), usage errors, and
// byte-identical reruns. Most calls run in-process through the same entry point the CLIs use
// (runMain: same exit-code mapping); a few run as real processes to check exit codes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { runMain, type Io } from '../toolchain/cli.ts';
import type { FlagSpec } from '../toolchain/args.ts';
import { generationSpecs, runGeneration } from '../toolchain/phase_c.ts';
import { overlapSpecs, runOverlap } from '../toolchain/phase_d.ts';
import { runTraining, trainingSpecs } from '../toolchain/phase_e.ts';
import { readNpz, type NdArray } from '../toolchain/npz.ts';
import { readZip } from '../toolchain/zip.ts';

const root = mkdtempSync(join(tmpdir(), 'toolchain-cli-'));
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

interface Run {
  code: number;
  out: string;
  err: string;
}
type Main = (argv: string[], io: Io) => Promise<number>;
async function call(main: Main, specs: Record<string, FlagSpec>, argv: string[]): Promise<Run> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runMain('tool', specs, argv, { out: (l) => out.push(l), err: (l) => err.push(l) }, main);
  return { code, out: out.join('\n') + '\n', err: err.join('\n') + '\n' };
}
const gen = (argv: string[]) => call(runGeneration, generationSpecs, argv);
const overlap = (argv: string[]) => call(runOverlap, overlapSpecs, argv);
const train = (argv: string[]) => call(runTraining, trainingSpecs, argv);
const json = (p: string) => JSON.parse(readFileSync(p, 'utf8')) as Record<string, any>;

function processRun(tool: string, argv: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', `toolchain/${tool}.ts`, ...argv], { encoding: 'utf8' });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

// Small dataset shared by the training tests: N = 16, 96 positions, dose 1000.
const C = join(root, 'small', 'C');
const D = join(root, 'small', 'D');
const settings = join(root, 'settings.json');
writeFileSync(settings, JSON.stringify({ epochs: 4, seed: 3 }));
const small = ['--patch-size', '16', '--positions', '96'];
const E = (name: string) => join(root, 'E', name);
const trainArgs = (A: string, view: string, extra: string[] = []) => [
  '--phase-c-root', C, '--phase-d-root', D, '--artifact-root', A, '--dose', '1000', '--view', view,
  '--config', settings, '--accelerator', 'cpu', '--deterministic', '--num-workers', '0', ...extra,
];

test.before(async () => {
  assert.is((await gen(['--output-root', C, '--dose', '1000', ...small])).code, 0);
  assert.is((await overlap(['--phase-c-root', C, '--output-root', D, '--doses', '1000', '--views', 'dense'])).code, 0);
});

test('generation: three NPZ per dose with DATA-001 keys/dtypes, y split, run_manifest schema', async () => {
  const out = join(root, 'gen');
  const r = await gen(['--output-root', out, '--dose', '1000', '--dose', '10000', '--patch-size', '16', '--positions', '40']);
  assert.is(r.code, 0, r.err);
  const m = json(join(out, 'run_manifest.json'));
  assert.equal(Object.keys(m), ['dose_1000', 'dose_10000']);
  assert.equal(Object.keys(m['dose_1000']), ['dose', 'train', 'test', 'intermediate_dir']);
  assert.is(m['dose_10000'].dose, 10000);
  assert.is(m['dose_1000'].train, join(out, 'dose_1000', 'patched_train.npz'));
  for (const f of ['simulated_raw', 'patched_train', 'patched_test']) assert.ok(existsSync(join(out, 'dose_1000', `${f}.npz`)), f);
  const tr = readNpz(join(out, 'dose_1000', 'patched_train.npz'));
  const te = readNpz(join(out, 'dose_1000', 'patched_test.npz'));
  const dtypes = Object.fromEntries([...tr].map(([k, v]) => [k, typeof v === 'string' ? 'str' : v.dtype]));
  assert.equal(dtypes, {
    diffraction: 'float32', Y: 'complex64', objectGuess: 'complex64', probeGuess: 'complex64',
    xcoords: 'float64', ycoords: 'float64', scan_index: 'int64', _metadata: 'str',
  });
  const diff = tr.get('diffraction') as NdArray;
  assert.is(diff.shape.length, 3);
  assert.equal(diff.shape.slice(1), [16, 16]);
  const maxTrainY = Math.max(...(tr.get('ycoords') as NdArray).data as Float64Array);
  const minTestY = Math.min(...(te.get('ycoords') as NdArray).data as Float64Array);
  assert.ok(maxTrainY < minTestY, 'train must be the lower half of the y range');
  assert.is(diff.shape[0]! + (te.get('diffraction') as NdArray).shape[0]!, 40);
  const metaText = tr.get('_metadata') as string;
  const meta = JSON.parse(metaText);
  assert.ok(meta.data_transformations.some((t: { tool: string }) => t.tool === 'transpose_rename_convert'));
  assert.not.match(metaText, /timestamp|hostname/);
});

test('numpy loads the Phase C and Phase D NPZ files; counts per pattern match the dose', () => {
  if (!hasNumpy) {
    console.log('  (skipped: python3 with numpy not available)');
    return;
  }
  const py = `
import numpy as np, json, sys
for path in sys.argv[1:]:
    d = np.load(path)
    assert d['diffraction'].dtype == np.float32 and d['diffraction'].ndim == 3, path
    assert d['Y'].dtype == np.complex64 and d['Y'].shape == d['diffraction'].shape, path
    assert d['objectGuess'].dtype == np.complex64 and d['probeGuess'].dtype == np.complex64
    assert d['xcoords'].dtype == np.float64 and d['ycoords'].dtype == np.float64
    assert d['scan_index'].dtype == np.int64
    assert len(d['xcoords']) == d['diffraction'].shape[0]
    meta = json.loads(str(d['_metadata']))
    assert isinstance(meta['data_transformations'], list)
d = np.load(sys.argv[1])
counts = (d['diffraction'].astype(np.float64) ** 2).sum(axis=(1, 2))
assert abs(counts.mean() - 1000) < 60, counts.mean()
print('ok')
`;
  const files = [join(C, 'dose_1000', 'simulated_raw.npz'), join(C, 'dose_1000', 'patched_test.npz'), join(D, 'dose_1000', 'dense', 'dense_train.npz')];
  const r = spawnSync('python3', ['-c', py, ...files], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
});

test('overlap at the default geometry: dense written, sparse rejected with exit 1 and no manifest', async () => {
  const c = join(root, 'default', 'C');
  const d = join(root, 'default', 'D');
  assert.is((await gen(['--output-root', c, '--dose', '1000'])).code, 0);
  const r = await overlap(['--phase-c-root', c, '--output-root', d, '--doses', '1000']);
  assert.is(r.code, 1);
  assert.match(r.err, /Insufficient positions meet spacing threshold for sparse view in (train|test) split even after greedy downsampling/);
  for (const f of ['dense_train.npz', 'dense_test.npz', 'train_metrics.json', 'test_metrics.json', 'metrics_bundle.json']) {
    assert.ok(existsSync(join(d, 'dose_1000', 'dense', f)), f);
  }
  assert.equal(readdirSync(join(d, 'dose_1000', 'sparse')).filter((f) => f.endsWith('.npz')), []);
  assert.not.ok(existsSync(join(d, 'overlap_manifest.json')));
  const dense = readNpz(join(d, 'dose_1000', 'dense', 'dense_train.npz'));
  const meta = JSON.parse(dense.get('_metadata') as string);
  assert.is(meta.overlap_view, 'dense');
  assert.is(meta.selection_strategy, 'greedy');
  // with only the dense view the same data succeeds
  const ok = await overlap(['--phase-c-root', c, '--output-root', join(root, 'default', 'D2'), '--doses', '1000', '--views', 'dense']);
  assert.is(ok.code, 0, ok.err);
});

test('overlap --views dense: metrics, bundle, manifest and artifact copy follow the study schema', async () => {
  const d = join(root, 'ovl', 'D');
  const h = join(root, 'ovl', 'H');
  const r = await overlap(['--phase-c-root', C, '--output-root', d, '--doses', '1000', '--views', 'dense', '--artifact-root', h]);
  assert.is(r.code, 0, r.err);
  const m = json(join(d, 'overlap_manifest.json'));
  assert.equal(Object.keys(m['dose_1000']), ['dose', 'views']);
  assert.equal(Object.keys(m['dose_1000'].views.dense), ['train', 'test', 'train_metrics', 'test_metrics', 'metrics_bundle']);
  const metrics = json(join(d, 'dose_1000', 'dense', 'train_metrics.json'));
  assert.equal(Object.keys(metrics), [
    'min_spacing', 'max_spacing', 'mean_spacing', 'median_spacing', 'threshold', 'n_positions', 'n_accepted',
    'n_rejected', 'acceptance_rate', 'geometry_acceptance_bound', 'effective_min_acceptance',
  ]);
  assert.ok(Math.abs(metrics['threshold'] - 0.3 * 16) < 1e-9);
  const bundle = json(join(d, 'dose_1000', 'dense', 'metrics_bundle.json'));
  assert.equal(Object.keys(bundle), ['train', 'test']);
  assert.equal(json(join(h, 'metrics', 'dose_1000', 'dense.json')), bundle);
  // a dose without Phase C data is a WARNING and is skipped, as in the study
  const w = await overlap(['--phase-c-root', C, '--output-root', join(root, 'ovl', 'D2'), '--doses', '1000', '5000', '--views', 'dense']);
  assert.is(w.code, 0, w.err);
  assert.match(w.err, /WARNING: Phase C directory not found for dose=5000/);
  assert.equal(Object.keys(json(join(root, 'ovl', 'D2', 'overlap_manifest.json'))), ['dose_1000']);
  const npz = readNpz(join(d, 'dose_1000', 'dense', 'dense_train.npz'));
  assert.is((npz.get('diffraction') as NdArray).shape[0], metrics['n_accepted']);
});

test('training dense gs2 and baseline gs1: outputs, manifest schema, stdout lines, falling loss', async () => {
  const A = E('main');
  const r = await train(trainArgs(A, 'dense', ['--gridsize', '2']));
  assert.is(r.code, 0, r.err);
  const jobDir = join(A, 'dose_1000', 'dense', 'gs2');
  const m = json(join(A, 'training_manifest.json'));
  assert.equal(Object.keys(m), [
    'timestamp', 'phase_c_root', 'phase_d_root', 'artifact_root', 'filters', 'dry_run', 'config_path', 'execution',
    'jobs', 'skipped_views', 'skipped_count', 'skip_summary_path',
  ]);
  assert.equal(m['filters'], { dose: 1000, view: 'dense', gridsize: 2 });
  const job = m['jobs'][0];
  assert.equal(Object.keys(job), ['dose', 'view', 'gridsize', 'train_data_path', 'test_data_path', 'log_path', 'artifact_dir', 'backend', 'result']);
  const res = job.result;
  assert.equal(Object.keys(res), ['status', 'final_loss', 'epochs_completed', 'checkpoint_path', 'bundle_path', 'bundle_sha256', 'bundle_size_bytes', 'training_results']);
  assert.is(res.status, 'success');
  assert.is(res.epochs_completed, 4);
  assert.is(res.bundle_path, 'wts.h5.zip');
  const bundle = join(jobDir, 'wts.h5.zip');
  assert.is(res.bundle_sha256, createHash('sha256').update(readFileSync(bundle)).digest('hex'));
  assert.is(res.bundle_size_bytes, statSync(bundle).size);
  const loss: number[] = res.training_results.history.train_loss;
  assert.ok(loss[loss.length - 1]! < loss[0]!, `loss must fall: ${loss}`);
  assert.is(res.final_loss, loss[loss.length - 1]);
  assert.ok(r.out.includes('    → Bundle [dense/dose=1e+03]: wts.h5.zip\n'));
  assert.ok(r.out.includes(`    → SHA256 [dense/dose=1e+03]: ${res.bundle_sha256}\n`));
  assert.ok(r.out.includes(`    → Size [dense/dose=1e+03]: ${res.bundle_size_bytes} bytes\n`));
  const log = readFileSync(join(jobDir, 'train.log'), 'utf8');
  assert.match(log, /^Phase E5 Training Execution — dense \(dose=1e\+03, gridsize=2, backend=reference\)/);
  assert.ok(log.includes(`Bundle SHA256: ${res.bundle_sha256}\n`) && log.includes(`Bundle size: ${res.bundle_size_bytes} bytes\n`));
  assert.match(log, /Training completed successfully\nFinal loss: .*\nEpochs completed: 4\n/);
  const zip = readZip(bundle);
  assert.equal([...zip.keys()], [
    'manifest.json',
    'autoencoder/params.json', 'autoencoder/weights/object.npy', 'autoencoder/weights/probe.npy',
    'diffraction_to_obj/params.json', 'diffraction_to_obj/weights/object.npy', 'diffraction_to_obj/weights/probe.npy',
  ]);
  assert.equal(JSON.parse(zip.get('manifest.json')!.toString()).models, ['autoencoder', 'diffraction_to_obj']);
  const skip = json(join(A, 'skip_summary.json'));
  assert.equal(Object.keys(skip), ['timestamp', 'skipped_views', 'skipped_count']);
  assert.is(skip['skipped_count'], 1);
  assert.equal(Object.keys(skip['skipped_views'][0]), ['dose', 'view', 'reason']);
  assert.is(m['skip_summary_path'], 'skip_summary.json');

  // baseline gs1 from Phase C; the manifest now holds only this call's job (study behaviour)
  const b = await train(trainArgs(A, 'baseline', ['--gridsize', '1']));
  assert.is(b.code, 0, b.err);
  const m2 = json(join(A, 'training_manifest.json'));
  assert.equal(m2['jobs'].map((j: { view: string }) => j.view), ['baseline']);
  assert.is(m2['jobs'][0].result.status, 'success');
  assert.ok(existsSync(bundle), 'the dense bundle stays on disk');
});

test('a missing Phase D view is a skip event (exit 0); a filter matching nothing writes no manifest', async () => {
  const A = E('skip');
  const r = await train(trainArgs(A, 'sparse'));
  assert.is(r.code, 0, r.err);
  assert.match(r.out, /Skipping sparse view for dose=1000: NPZ files not found \(train=False, test=False\)/);
  assert.match(r.out, /⚠ No jobs match the specified filters\. Exiting without training\./);
  assert.not.ok(existsSync(join(A, 'training_manifest.json')));
  const noD = await train(['--phase-c-root', C, '--phase-d-root', join(root, 'nowhere'), '--artifact-root', A, '--dose', '1000', '--view', 'baseline', '--config', settings]);
  assert.is(noD.code, 0, noD.err);
  const skip = json(join(A, 'skip_summary.json'));
  assert.equal(skip['skipped_views'].map((s: { view: string }) => s.view), ['dense', 'sparse']);
  // Phase C inputs are not optional: a dose without them is an error (exit 1)
  const noC = await train(['--phase-c-root', C, '--phase-d-root', D, '--artifact-root', A, '--dose', '5000', '--config', settings]);
  assert.is(noC.code, 1);
  assert.match(noC.err, /FileNotFoundError: Phase C NPZ not found for dose=5000/);
});

test('invalid settings fail the job like the study: status failed, ValueError, traceback in train.log, exit 0', async () => {
  for (const [i, bad] of [{ epochs: 0 }, { epochs: '10' }].entries()) {
    const cfg = join(root, `bad${i}.json`);
    writeFileSync(cfg, JSON.stringify(bad));
    const A = E(`bad${i}`);
    const r = await train([...trainArgs(A, 'dense').filter((x) => x !== settings && x !== '--config'), '--config', cfg]);
    assert.is(r.code, 0, r.err);
    const res = json(join(A, 'training_manifest.json'))['jobs'][0].result;
    assert.is(res.status, 'failed');
    assert.match(res.error, /^training failed: ValueError: epochs must be an integer >= 1/);
    const log = readFileSync(join(A, 'dose_1000', 'dense', 'gs2', 'train.log'), 'utf8');
    assert.match(log, /FAILED: training failed: ValueError: .*\nTraceback \(most recent call last/);
    assert.not.ok(existsSync(join(A, 'dose_1000', 'dense', 'gs2', 'wts.h5.zip')));
    assert.not.match(r.out, /→ SHA256/);
  }
});

test('--sim-fault train-error fails the job; --sim-fault sha-mismatch records a wrong digest for a good bundle', async () => {
  const A = E('faults');
  const t = await train(trainArgs(A, 'dense', ['--sim-fault', 'train-error']));
  assert.is(t.code, 0, t.err);
  const failed = json(join(A, 'training_manifest.json'))['jobs'][0].result;
  assert.is(failed.status, 'failed');
  assert.match(failed.error, /^training failed: RuntimeError: simulated training fault/);
  assert.match(readFileSync(join(A, 'dose_1000', 'dense', 'gs2', 'train.log'), 'utf8'), /Traceback/);

  const s = await train(trainArgs(A, 'dense', ['--sim-fault', 'sha-mismatch']));
  assert.is(s.code, 0, s.err);
  const res = json(join(A, 'training_manifest.json'))['jobs'][0].result;
  const disk = createHash('sha256').update(readFileSync(join(A, 'dose_1000', 'dense', 'gs2', 'wts.h5.zip'))).digest('hex');
  assert.is(res.status, 'success');
  assert.match(res.bundle_sha256, /^[0-9a-f]{64}$/);
  assert.is.not(res.bundle_sha256, disk);
  assert.ok(s.out.includes(`→ SHA256 [dense/dose=1e+03]: ${res.bundle_sha256}`));
  // the bundle is the same as a fault-free run's
  const clean = E('clean');
  assert.is((await train(trainArgs(clean, 'dense'))).code, 0);
  assert.is(json(join(clean, 'training_manifest.json'))['jobs'][0].result.bundle_sha256, disk);
});

test('usage errors exit 2 and name the flag; unreadable inputs are clear errors', async () => {
  // real processes, to check the exit codes of the CLIs themselves
  const t = processRun('training', ['--phase-d-root', D, '--artifact-root', E('u')]);
  assert.is(t.code, 2);
  assert.match(t.err, /--phase-c-root/);
  const g = processRun('generation', ['--output-root', join(root, 'u'), '--dose', 'lots']);
  assert.is(g.code, 2);
  assert.match(g.err, /--dose/);
  const o = processRun('overlap', ['--phase-c-root', C, '--output-root', join(root, 'u'), '--views', 'medium']);
  assert.is(o.code, 2);
  assert.match(o.err, /--views/);
  // in-process for the rest (same exit-code mapping)
  const cases: Array<[Promise<Run>, RegExp]> = [
    [gen(['--output-root', join(root, 'u'), '--patch-size', '48']), /--patch-size/],
    [gen(['--output-root', join(root, 'u'), '--bogus', '1']), /--bogus/],
    [train([...trainArgs(E('u'), 'dense').slice(0, -7), '--config', join(root, 'missing.json')]), /--config/],
    [train(trainArgs(E('u'), 'dense', ['--num-workers', '2'])), /--num-workers/],
    [train(trainArgs(E('u'), 'dense', ['--gridsize', '3'])), /--gridsize/],
    [overlap(['--phase-c-root', join(root, 'nowhere'), '--output-root', join(root, 'u')]), /--phase-c-root/],
  ];
  for (const [p, re] of cases) {
    const r = await p;
    assert.is(r.code, 2, r.err);
    assert.match(r.err, re);
  }
  const base = await gen(['--output-root', join(root, 'u'), '--dose', '1000', '--base-npz', join(root, 'missing.npz')]);
  assert.is(base.code, 1);
  assert.match(base.err, /--base-npz: no such file/);
});

test('--base-npz takes object, probe and scan positions from an NPZ', async () => {
  const out = join(root, 'base');
  const r = await gen(['--output-root', out, '--dose', '1000', '--base-npz', join(C, 'dose_1000', 'simulated_raw.npz'), '--positions', '50']);
  assert.is(r.code, 0, r.err);
  const raw = readNpz(join(out, 'dose_1000', 'simulated_raw.npz'));
  const src = readNpz(join(C, 'dose_1000', 'simulated_raw.npz'));
  assert.is((raw.get('diffraction') as NdArray).shape[0], 50);
  assert.equal(Array.from((raw.get('xcoords') as NdArray).data as Float64Array), Array.from(((src.get('xcoords') as NdArray).data as Float64Array).slice(0, 50)));
  assert.equal(Array.from((raw.get('objectGuess') as NdArray).data as Float32Array), Array.from((src.get('objectGuess') as NdArray).data as Float32Array));
});

test('same arguments give byte-identical files, run after run (C, D, E)', async () => {
  const digest = async (): Promise<Record<string, string>> => {
    const w = join(root, 'repro');
    rmSync(w, { recursive: true, force: true });
    assert.is((await gen(['--output-root', join(w, 'C'), '--dose', '1000', ...small])).code, 0);
    assert.is((await overlap(['--phase-c-root', join(w, 'C'), '--output-root', join(w, 'D'), '--doses', '1000', '--views', 'dense'])).code, 0);
    for (const [view, gs] of [['dense', '2'], ['baseline', '1']]) {
      const args = ['--phase-c-root', join(w, 'C'), '--phase-d-root', join(w, 'D'), '--artifact-root', join(w, 'E'), '--dose', '1000', '--view', view!, '--gridsize', gs!, '--config', settings];
      assert.is((await train(args)).code, 0);
    }
    const files: Record<string, string> = {};
    const walk = (d: string): void => {
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) walk(p);
        else files[relative(w, p)] = createHash('sha256').update(readFileSync(p)).digest('hex');
      }
    };
    walk(w);
    return files;
  };
  const first = await digest();
  const second = await digest();
  assert.ok(Object.keys(first).length >= 15, `only ${Object.keys(first).length} files`);
  assert.equal(second, first);
});

test.after(() => rmSync(root, { recursive: true, force: true }));
test.run();
