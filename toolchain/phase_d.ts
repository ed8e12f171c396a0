// Phase D, era 1 (studies.fly64_dose_overlap.overlap): per dose and view, filter the Phase C
// train/test splits by minimum spacing and write {view}_{split}.npz, {split}_metrics.json,
// metrics_bundle.json, then overlap_manifest.json. A rejected view prints the traceback and
// exits 1 at once: later views/doses are not processed and no manifest is written (the views
// written before stay on disk), as the real CLI does.
import { copyFileSync, existsSync, mkdirSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, UsageError, type FlagSpec } from './args.ts';
import { doseDir, writeJson, type Io } from './cli.ts';
import { readDataset, subset, withTransformation, writeDataset } from './dataset.ts';
import { DESIGN_DOSES } from './phase_c.ts';
import { selectView, type View } from './spacing.ts';

export const overlapSpecs: Record<string, FlagSpec> = {
  'phase-c-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase C root (dose_{d}/patched_{train,test}.npz)' },
  'output-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase D root to write' },
  doses: { kind: 'list', items: 'number', metavar: 'N', help: 'doses to process (default 1000 10000 100000)' },
  views: { kind: 'list', choices: ['dense', 'sparse'], metavar: '{dense,sparse}', help: 'views to build (default dense sparse)' },
  'artifact-root': { kind: 'string', metavar: 'DIR', help: 'also copy each metrics bundle to DIR/metrics/dose_{d}/{view}.json' },
};

function findSplit(dir: string, split: 'train' | 'test'): string | undefined {
  const preferred = join(dir, `patched_${split}.npz`);
  if (existsSync(preferred)) return preferred;
  const match = readdirSync(dir)
    .filter((f) => f.endsWith(`${split}.npz`))
    .sort()[0];
  return match ? join(dir, match) : undefined;
}

export async function runOverlap(argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, overlapSpecs);
  const cRoot = a['phase-c-root'] as string;
  const dRoot = a['output-root'] as string;
  if (!existsSync(cRoot)) throw new UsageError(`argument --phase-c-root: directory not found: '${cRoot}'`);
  const doses = (a['doses'] as number[] | undefined) ?? DESIGN_DOSES;
  for (const d of doses) if (!(d > 0)) throw new UsageError(`argument --doses: dose must be > 0, got ${d}`);
  const views = (a['views'] as View[] | undefined) ?? ['dense', 'sparse'];
  const artifactRoot = a['artifact-root'] as string | undefined;

  io.out('Phase D overlap views (reference toolchain, spacing filter)');
  const manifest: Record<string, unknown> = {};
  for (const dose of doses) {
    const cDir = join(cRoot, doseDir(dose));
    if (!existsSync(cDir)) {
      io.err(`WARNING: Phase C directory not found for dose=${dose}: ${cDir}; skipping`);
      continue;
    }
    const trainSrc = findSplit(cDir, 'train');
    const testSrc = findSplit(cDir, 'test');
    if (!trainSrc || !testSrc) {
      io.err(`WARNING: Phase C NPZ missing for dose=${dose} (train=${!!trainSrc}, test=${!!testSrc}) in ${cDir}; skipping`);
      continue;
    }
    const sources = { train: readDataset(trainSrc), test: readDataset(testSrc) };
    const viewEntries: Record<string, unknown> = {};
    for (const view of views) {
      const vDir = join(dRoot, doseDir(dose), view);
      mkdirSync(vDir, { recursive: true });
      io.out(`[${doseDir(dose)}/${view}] spacing filter`);
      const paths: Record<string, string> = {};
      const metrics: Record<string, unknown> = {};
      try {
        // Select both splits before writing anything, so a rejected view leaves no NPZ.
        const selections = (['train', 'test'] as const).map((split) => {
          const ds = sources[split];
          return { split, ds, sel: selectView(ds.xcoords, ds.ycoords, view, split, ds.H) };
        });
        for (const { split, ds, sel } of selections) {
          const src = split === 'train' ? trainSrc : testSrc;
          const meta = withTransformation(ds.metadata, 'overlap.py', 'spacing_filter', { view, threshold: sel.metrics.threshold });
          Object.assign(meta, {
            overlap_view: view,
            spacing_threshold: sel.metrics.threshold,
            source_file: src,
            n_accepted: sel.metrics.n_accepted,
            n_rejected: sel.metrics.n_rejected,
            acceptance_rate: sel.metrics.acceptance_rate,
            selection_strategy: sel.strategy,
            geometry_acceptance_bound: sel.metrics.geometry_acceptance_bound,
            effective_min_acceptance: sel.metrics.effective_min_acceptance,
          });
          const out = join(vDir, `${view}_${split}.npz`);
          writeDataset(out, subset(ds, sel.indices, meta));
          const mPath = join(vDir, `${split}_metrics.json`);
          writeJson(mPath, sel.metrics);
          paths[split] = out;
          paths[`${split}_metrics`] = mPath;
          metrics[split] = sel.metrics;
          io.out(
            `  ${split}: ${sel.metrics.n_accepted}/${sel.metrics.n_positions} kept (${(100 * sel.metrics.acceptance_rate).toFixed(1)}%, ` +
              `${sel.strategy}, threshold ${sel.metrics.threshold.toFixed(1)} px)`,
          );
        }
      } catch (e) {
        io.err(`Error generating ${view} view for dose=${dose}:`);
        io.err('Traceback (most recent call last, JavaScript stack):');
        io.err((e as Error).stack ?? String(e));
        io.err(`✗ ${view} view rejected for dose=${dose}: ${(e as Error).message}`);
        return 1;
      }
      const bundlePath = join(vDir, 'metrics_bundle.json');
      writeJson(bundlePath, metrics);
      if (artifactRoot !== undefined) {
        const dst = join(artifactRoot, 'metrics', doseDir(dose), `${view}.json`);
        mkdirSync(join(artifactRoot, 'metrics', doseDir(dose)), { recursive: true });
        copyFileSync(bundlePath, dst);
      }
      viewEntries[view] = { train: paths['train'], test: paths['test'], train_metrics: paths['train_metrics'], test_metrics: paths['test_metrics'], metrics_bundle: bundlePath };
    }
    manifest[doseDir(dose)] = { dose, views: viewEntries };
  }
  writeJson(join(dRoot, 'overlap_manifest.json'), manifest);
  io.out(`✓ overlap manifest: ${join(dRoot, 'overlap_manifest.json')}`);
  return 0;
}
