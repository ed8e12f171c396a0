// Step E3: one training target per (dose, view, gridsize). Each view's settings are their own
// small target written from params, so editing the dense settings retrains dense alone.
import { hubBundle, names, recordPath, settingsPath, cliLog, type Layout } from './layout.ts';
import { argv } from './shell.ts';
import type { ActionContext, HubSpec } from './spec.ts';
import { artifactDir, gridsizeOf, trainingInputs, type View } from './study.ts';

/** Training jobs share <A>/training_manifest.json, which each call rewrites: never run two at once. */
export const TRAINING_POOL = 'phase-e-training';

/** Writes the settings JSON the tool reads (`--config`). Uses only ctx: its source is its fingerprint. */
export async function writeSettings(ctx: ActionContext): Promise<void> {
  await ctx.writeFile(ctx.outputs[0]!, JSON.stringify(ctx.params, null, 2) + '\n');
}

/** The tool's settings of one view: everything but `args` (command-line words, not settings). */
function toolSettings(l: Layout, view: View): Record<string, unknown> {
  const { args: _args, ...settings } = l.config.training[view]!;
  return settings;
}

export function settings(l: Layout, view: View): HubSpec {
  return {
    name: names.settings(view),
    description: `training settings of the ${view} view (from hub.config.json training.${view})`,
    outputs: [settingsPath(l, view)],
    params: toolSettings(l, view),
    run: writeSettings,
  };
}

export function training(l: Layout, dose: number, view: View, deps: string[]): HubSpec {
  const { roots } = l.config;
  const dir = artifactDir(roots.phaseE, dose, view);
  const record = recordPath(l, dose, view);
  const s = l.config.training[view]!;
  const train = l.tool.training({
    dose,
    view,
    settingsPath: settingsPath(l, view),
    epochs: s.epochs,
    args: s.args ?? [],
    fault: l.tool.name === 'sim' ? l.config.sim.faults[view] : undefined,
  });
  // The call's start time, so that capture-job only trusts a manifest written by this call (the
  // tool writes none when no job matches, and the file may hold an earlier call's jobs). The
  // tool's files are left alone: the build never edits files it does not own.
  const capture =
    argv([
      'node', '--import', 'tsx', 'rules/bin/capture-job.ts', '--artifact-root', roots.phaseE, '--dose', dose, '--view', view,
      '--gridsize', gridsizeOf(view), '--out', record, '--train-log', `${dir}/train.log`,
    ]) + ' --since-ns "$t0"';
  return {
    name: names.training(dose, view),
    description: `E3 training ${view} gs${gridsizeOf(view)} dose ${dose} → ${hubBundle(l, dose, view)}`,
    inputs: [...trainingInputs(roots.phaseC, roots.phaseD, dose, view), settingsPath(l, view), 'rules/bin/capture-job.ts', 'rules/manifest.ts'],
    deps,
    // The hub's CLI transcript is an output too: each hub holds the transcript of the run that
    // produced its bundles, so a new hub timestamp reruns training (and reuses the datasets).
    outputs: [`${dir}/wts.h5.zip`, `${dir}/train.log`, record, cliLog(l, dose, view)],
    // The subshell keeps a toolchain's `cd` local to the training call.
    run: `t0=$(date +%s%N) && (${train}) && ${capture}`,
    // The CLI transcript goes straight into the hub (kept with its traceback on failure).
    log: cliLog(l, dose, view),
    pool: TRAINING_POOL,
    // Hours with the real tools: always worth storing, also when the reference toolchain's
    // simulated run is quicker than the cache's minimum time.
    cache: true,
    ...slurmPlacement(l),
  };
}

/** Where training runs: locally, or as Slurm jobs when hub.config.json `slurm.enabled` is set. */
export function slurmPlacement(l: Layout): Pick<HubSpec, 'executor' | 'slurm'> {
  const s = l.config.slurm;
  if (!s.enabled) return {};
  const opts: NonNullable<HubSpec['slurm']> = {};
  if (s.partition !== null) opts.partition = s.partition;
  if (s.time !== null) opts.time = s.time;
  if (s.cpus !== null) opts.cpus = s.cpus;
  if (s.mem !== null) opts.mem = s.mem;
  if (s.gres !== null) opts.gres = s.gres;
  if (s.account !== null) opts.account = s.account;
  if (s.args.length) opts.args = [...s.args];
  return { executor: 'slurm', slurm: opts };
}
