// Phase E (studies.fly64_dose_overlap.training): build the job matrix (per dose: baseline
// gs1 from Phase C, dense/sparse gs2 from Phase D), record missing Phase D views as skip
// events, train each selected job, persist wts.h5.zip, and write training_manifest.json and
// skip_summary.json. A failing job is recorded as status "failed" and the CLI still exits 0.
// As in the study, each call rewrites training_manifest.json with only its own jobs.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { parseArgs, UsageError, type FlagSpec } from './args.ts';
import { doseDir, doseLabel, errorString, FileNotFoundError, fixedTimestamp, sha256File, writeJson, type Io } from './cli.ts';
import { BUNDLE_NAME, writeBundle } from './bundle.ts';
import { readDataset, type Dataset } from './dataset.ts';
import { DEFAULT_SETTINGS, reconstruct, validateSettings, type TrainSettings } from './epie.ts';

export const BACKEND = 'reference';

export const trainingSpecs: Record<string, FlagSpec> = {
  'phase-c-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase C root (baseline inputs)' },
  'phase-d-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase D root (dense/sparse inputs)' },
  'artifact-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase E output root (created if absent)' },
  dose: { kind: 'number', metavar: 'FLOAT', help: 'only this dose (default: every dose_* directory under the Phase C root)' },
  view: { kind: 'string', choices: ['baseline', 'dense', 'sparse'], help: 'only this view' },
  gridsize: { kind: 'int', choices: ['1', '2'], help: 'only this gridsize' },
  'dry-run': { kind: 'bool', help: 'enumerate jobs and write logs/manifests without training' },
  config: { kind: 'string', metavar: 'FILE', help: 'JSON training settings (epochs, step_size, ...); default built-in settings' },
  accelerator: { kind: 'string', choices: ['cpu'], help: 'execution flag accepted for parity with the study (only cpu)' },
  deterministic: { kind: 'bool', help: 'execution flag accepted for parity (the toolchain is always deterministic)' },
  'num-workers': { kind: 'int', metavar: 'N', help: 'execution flag accepted for parity (must be 0)' },
  'sim-fault': { kind: 'string', choices: ['sha-mismatch', 'train-error'], help: 'inject a failure, for testing the hub' },
};

interface Job {
  dose: number;
  view: 'baseline' | 'dense' | 'sparse';
  gridsize: 1 | 2;
  train_data_path: string;
  test_data_path: string;
  log_path: string;
  artifact_dir: string;
}

interface SkipEvent {
  dose: number;
  view: string;
  reason: string;
}

function discoverDoses(cRoot: string): number[] {
  return readdirSync(cRoot)
    .map((d) => /^dose_(\d+)$/.exec(d))
    .filter((m): m is RegExpExecArray => m !== null)
    .map((m) => Number(m[1]))
    .sort((a, b) => a - b);
}

/** The study's job matrix with allow_missing_phase_d=True. */
function buildJobs(cRoot: string, dRoot: string, aRoot: string, doses: number[]): { jobs: Job[]; skips: SkipEvent[] } {
  const jobs: Job[] = [];
  const skips: SkipEvent[] = [];
  for (const dose of doses) {
    const dd = doseDir(dose);
    const mk = (view: Job['view'], gridsize: 1 | 2, train: string, test: string): Job => {
      const artifact_dir = join(aRoot, dd, view, `gs${gridsize}`);
      return { dose, view, gridsize, train_data_path: train, test_data_path: test, log_path: join(artifact_dir, 'train.log'), artifact_dir };
    };
    const bTrain = join(cRoot, dd, 'patched_train.npz');
    const bTest = join(cRoot, dd, 'patched_test.npz');
    if (!existsSync(bTrain) || !existsSync(bTest)) {
      // Phase C inputs are not optional (TrainingJob.__post_init__ raises).
      throw new FileNotFoundError(`Phase C NPZ not found for dose=${dose}: ${!existsSync(bTrain) ? bTrain : bTest}`);
    }
    jobs.push(mk('baseline', 1, bTrain, bTest));
    for (const view of ['dense', 'sparse'] as const) {
      const vDir = join(dRoot, dd, view);
      let train = join(vDir, `${view}_train.npz`);
      let test = join(vDir, `${view}_test.npz`);
      if (!existsSync(train) || !existsSync(test)) {
        const fTrain = join(vDir, 'train.npz');
        const fTest = join(vDir, 'test.npz');
        if (existsSync(fTrain) && existsSync(fTest)) {
          train = fTrain;
          test = fTest;
        } else {
          skips.push({
            dose,
            view,
            reason:
              `NPZ files not found (train=${existsSync(train) ? 'True' : 'False'}, test=${existsSync(test) ? 'True' : 'False'}). ` +
              `Checked primary (${train}, ${test}) and fallback (train.npz/test.npz).`,
          });
          continue;
        }
      }
      jobs.push(mk(view, 2, train, test));
    }
  }
  return { jobs, skips };
}

class Stage extends Error {
  constructor(
    readonly stage: string,
    readonly inner: unknown,
  ) {
    super(`${stage} failed: ${errorString(inner)}`);
  }
}

function stage<T>(name: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw new Stage(name, e);
  }
}

interface RunOptions {
  settings: TrainSettings | { invalid: unknown };
  configPath: string | null;
  fault: 'sha-mismatch' | 'train-error' | undefined;
  execution: { accelerator: string; deterministic: boolean; num_workers: number };
}

function runJob(job: Job, opts: RunOptions, io: Io): Record<string, unknown> {
  mkdirSync(job.artifact_dir, { recursive: true });
  const label = `[${job.view}/dose=${doseLabel(job.dose)}]`;
  const bundle = join(job.artifact_dir, BUNDLE_NAME);
  // A stale bundle from an earlier run must not pass for this run's output.
  rmSync(bundle, { force: true });
  const lines: string[] = [];
  const log = (l: string): void => {
    lines.push(l);
  };
  const flush = (): void => writeFileSync(job.log_path, lines.join('\n') + '\n');
  log(`Phase E5 Training Execution — ${job.view} (dose=${doseLabel(job.dose)}, gridsize=${job.gridsize}, backend=${BACKEND})`);
  log(`Train data: ${job.train_data_path}`);
  log(`Test data: ${job.test_data_path}`);
  log(`Output dir: ${job.artifact_dir}`);
  log(`Gridsize: ${job.gridsize}`);
  log(`nphotons: ${job.dose}`);
  log(`Backend: ${BACKEND} (hubmake reference toolchain: ePIE reconstruction, not PtychoPINN)`);
  log(`Execution: accelerator=${opts.execution.accelerator} deterministic=${opts.execution.deterministic ? 'True' : 'False'} num_workers=${opts.execution.num_workers}`);
  log(`Config: ${opts.configPath ?? '(built-in defaults)'}`);
  try {
    log('Loading datasets...');
    const [train, test] = stage('loading', () => [readDataset(job.train_data_path), readDataset(job.test_data_path)] as [Dataset, Dataset]);
    log(`  train: n=${train.n} N=${train.H}; test: n=${test.n} N=${test.H}`);
    log('Validating datasets (DATA-001)...');
    stage('dataset validation', () => {
      for (const [name, ds] of [['train', train], ['test', test]] as const) {
        if (ds.H !== ds.W) throw new Error(`${name}: diffraction patterns must be square, got ${ds.H}x${ds.W}`);
        if (ds.probeGuess.rows !== ds.H || ds.probeGuess.cols !== ds.W) throw new Error(`${name}: probeGuess shape does not match diffraction`);
        if (ds.n === 0) throw new Error(`${name}: dataset is empty`);
      }
    });
    const settings = stage('training', () => {
      if ('invalid' in opts.settings) return validateSettings(opts.settings.invalid);
      return opts.settings;
    });
    log(`Settings: ${JSON.stringify(settings)}`);
    log(`Invoking reference ePIE trainer (gridsize=${job.gridsize}, ${settings.epochs} epochs)...`);
    const out = stage('training', () =>
      reconstruct(
        {
          n: train.n,
          N: train.H,
          diffraction: train.diffraction,
          xcoords: train.xcoords,
          ycoords: train.ycoords,
          probe: train.probeGuess.data,
          objectRows: train.objectGuess.rows,
          objectCols: train.objectGuess.cols,
        },
        job.gridsize,
        settings,
        (epoch, loss) => log(`Epoch ${epoch}/${settings.epochs}: loss=${loss.toPrecision(6)}`),
        opts.fault === 'train-error' ? 'train-error' : undefined,
      ),
    );
    const finalLoss = out.history[out.history.length - 1]!;
    log('Persisting model bundle...');
    writeBundle(bundle, {
      object: { rows: train.objectGuess.rows, cols: train.objectGuess.cols, data: out.object },
      probe: { n: train.H, data: out.probe },
      params: {
        N: train.H,
        gridsize: job.gridsize,
        nphotons: job.dose,
        nepochs: settings.epochs,
        step_size: settings.step_size,
        probe_step_size: settings.probe_step_size,
        seed: settings.seed,
        neighbor_count: settings.neighbor_count,
        n_groups: out.nGroups,
        intensity_scale: out.intensityScale,
        final_loss: finalLoss,
        train_data_file: job.train_data_path,
        test_data_file: job.test_data_path,
      },
    });
    let sha = sha256File(bundle);
    if (opts.fault === 'sha-mismatch') {
      // Simulated bookkeeping bug: record a digest that is not the file's.
      sha = createHash('sha256').update(`${sha}:sim-fault`).digest('hex');
    }
    const size = statSync(bundle).size;
    log(`Bundle saved: ${bundle}`);
    log(`Bundle SHA256: ${sha}`);
    log(`Bundle size: ${size} bytes`);
    log('Training completed successfully');
    log(`Final loss: ${finalLoss}`);
    log(`Epochs completed: ${out.history.length}`);
    log('Checkpoint path: None');
    log(`Bundle path: ${BUNDLE_NAME}`);
    log(`Bundle SHA256: ${sha}`);
    log(`Bundle size: ${size} bytes`);
    flush();
    io.out(`    ✓ success: final_loss=${finalLoss.toPrecision(6)} epochs=${out.history.length}`);
    io.out(`    → Bundle ${label}: ${BUNDLE_NAME}`);
    io.out(`    → SHA256 ${label}: ${sha}`);
    io.out(`    → Size ${label}: ${size} bytes`);
    return {
      status: 'success',
      final_loss: finalLoss,
      epochs_completed: out.history.length,
      checkpoint_path: null,
      bundle_path: BUNDLE_NAME,
      bundle_sha256: sha,
      bundle_size_bytes: size,
      training_results: {
        history: { train_loss: out.history },
        n_positions: train.n,
        n_groups: out.nGroups,
        intensity_scale: out.intensityScale,
        settings,
      },
    };
  } catch (e) {
    const err = e instanceof Stage ? e : new Stage('training', e);
    const cause = err.inner;
    log(`FAILED: ${err.message}`);
    log('Traceback (most recent call last, JavaScript stack):');
    log(cause instanceof Error ? (cause.stack ?? errorString(cause)) : String(cause));
    flush();
    io.out(`    ✗ failed: ${err.message}`);
    return { status: 'failed', error: err.message };
  }
}

export async function runTraining(argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, trainingSpecs);
  const cRoot = a['phase-c-root'] as string;
  const dRoot = a['phase-d-root'] as string;
  const aRoot = a['artifact-root'] as string;
  if (!existsSync(cRoot)) throw new UsageError(`argument --phase-c-root: directory not found: '${cRoot}'`);
  const numWorkers = (a['num-workers'] as number | undefined) ?? 0;
  if (numWorkers !== 0) throw new UsageError(`argument --num-workers: only 0 is supported (single-process, deterministic), got ${numWorkers}`);
  const doseFilter = a['dose'] as number | undefined;
  if (doseFilter !== undefined && !(doseFilter > 0)) throw new UsageError(`argument --dose: must be > 0, got ${doseFilter}`);
  const viewFilter = a['view'] as string | undefined;
  const gsRaw = a['gridsize'] as string | number | undefined;
  const gsFilter = gsRaw === undefined ? undefined : Number(gsRaw);
  const dryRun = a['dry-run'] === true;
  const configPath = (a['config'] as string | undefined) ?? null;
  let settings: RunOptions['settings'] = DEFAULT_SETTINGS;
  if (configPath !== null) {
    let text: string;
    try {
      text = readFileSync(configPath, 'utf8');
    } catch (e) {
      throw new UsageError(`argument --config: cannot read '${configPath}': ${(e as Error).message}`);
    }
    try {
      settings = { invalid: JSON.parse(text) as unknown };
    } catch (e) {
      throw new UsageError(`argument --config: '${configPath}' is not valid JSON: ${(e as Error).message}`);
    }
  }
  const opts: RunOptions = {
    settings,
    configPath,
    fault: a['sim-fault'] as RunOptions['fault'],
    execution: { accelerator: (a['accelerator'] as string | undefined) ?? 'cpu', deterministic: true, num_workers: numWorkers },
  };

  // The dose filter narrows the dose list before jobs are built; view and gridsize filter after.
  const doses = doseFilter !== undefined ? [doseFilter] : discoverDoses(cRoot);
  const { jobs: all, skips } = buildJobs(cRoot, dRoot, aRoot, doses);
  const jobs = all.filter((j) => (viewFilter === undefined || j.view === viewFilter) && (gsFilter === undefined || j.gridsize === gsFilter));
  io.out('Phase E training (reference toolchain)');
  io.out(`  Phase C root: ${cRoot}`);
  io.out(`  Phase D root: ${dRoot}`);
  io.out(`  Artifact root: ${aRoot}`);
  for (const s of skips) io.out(`  Skipping ${s.view} view for dose=${s.dose}: ${s.reason}`);
  io.out(`  ${all.length} job(s) enumerated, ${jobs.length} after filters; ${skips.length} view(s) skipped`);
  if (jobs.length === 0) {
    io.out('⚠ No jobs match the specified filters. Exiting without training.');
    return 0;
  }
  mkdirSync(aRoot, { recursive: true });
  const entries: Record<string, unknown>[] = [];
  for (const [i, job] of jobs.entries()) {
    io.out(`[${i + 1}/${jobs.length}] ${job.view} gs${job.gridsize} dose=${doseLabel(job.dose)} → ${job.artifact_dir}`);
    let result: Record<string, unknown>;
    if (dryRun) {
      mkdirSync(job.artifact_dir, { recursive: true });
      writeFileSync(job.log_path, `DRY RUN: ${job.view} dose=${job.dose} gridsize=${job.gridsize}\nTrain: ${job.train_data_path}\nTest: ${job.test_data_path}\n`);
      result = { ...job, dry_run: true, backend: BACKEND };
      io.out('    (dry run: not trained)');
    } else {
      result = runJob(job, opts, io);
    }
    entries.push({ ...job, backend: BACKEND, result });
  }
  const timestamp = fixedTimestamp();
  const skipSummary = { timestamp, skipped_views: skips, skipped_count: skips.length };
  writeJson(join(aRoot, 'skip_summary.json'), skipSummary);
  writeJson(join(aRoot, 'training_manifest.json'), {
    timestamp,
    phase_c_root: cRoot,
    phase_d_root: dRoot,
    artifact_root: aRoot,
    filters: { dose: doseFilter ?? null, view: viewFilter ?? null, gridsize: gsFilter ?? null },
    dry_run: dryRun,
    config_path: configPath,
    execution: opts.execution,
    jobs: entries,
    skipped_views: skips,
    skipped_count: skips.length,
    skip_summary_path: 'skip_summary.json',
  });
  io.out(`✓ Training manifest: ${join(aRoot, 'training_manifest.json')}`);
  io.out(`✓ Skip summary: ${join(aRoot, 'skip_summary.json')} (${skips.length} skipped)`);
  return 0;
}

// exported for the selftest (mirrors training.execute_training_job)
export { runJob as executeTrainingJob, buildJobs as buildTrainingJobs };
export type { Job as TrainingJob, RunOptions };
