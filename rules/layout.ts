// Where everything lives: the hub's file names and the tmp roots' bookkeeping files. Pure.
// The first configured dose keeps the plan's exact hub names (`data/wts_dense_gs2.h5.zip`);
// further doses add `_dose<d>`, so adding dose 10000 renames nothing that already exists.
import { hubDir, type HubConfig } from './config.ts';
import { makeToolchain, type Toolchain } from './toolchain.ts';
import { gridsizeOf, jobLabel, type View } from './study.ts';

export interface Layout {
  config: HubConfig;
  tool: Toolchain;
  /** The hub directory, root-relative, no trailing slash. */
  hub: string;
  /** Views that are trained (configured minus those Phase D is known to reject). */
  trained: View[];
  /** Configured views that cannot be produced yet (pending work in the summary). */
  pending: View[];
}

export function makeLayout(config: HubConfig, root: string): Layout {
  const skip = new Set(config.overlap.skipViews);
  return {
    config,
    tool: makeToolchain(config, root),
    hub: hubDir(config),
    trained: config.views.filter((v) => !skip.has(v)),
    pending: config.views.filter((v) => skip.has(v)),
  };
}

const doseSuffix = (l: Layout, dose: number) => (dose === l.config.doses[0] ? '' : `_dose${Math.trunc(dose)}`);

export const prepLog = (l: Layout, phase: 'c' | 'd', dose: number) =>
  `${l.hub}/prep/phase_${phase}_generation${doseSuffix(l, dose)}.log`;
export const cliLog = (l: Layout, dose: number, view: View) => `${l.hub}/cli/${jobLabel(dose, view)}.log`;
export const hubBundle = (l: Layout, dose: number, view: View) =>
  `${l.hub}/data/wts_${view}_gs${gridsizeOf(view)}${doseSuffix(l, dose)}.h5.zip`;
export const hubManifest = (l: Layout) => `${l.hub}/data/training_manifest.json`;
export const hubSkipSummary = (l: Layout) => `${l.hub}/data/skip_summary.json`;
export const prettyManifest = (l: Layout) => `${l.hub}/analysis/training_manifest_pretty.json`;
export const checksumsFile = (l: Layout) => `${l.hub}/analysis/bundle_checksums.txt`;
export const verificationFile = (l: Layout) => `${l.hub}/analysis/bundle_verification.json`;
export const summaryFile = (l: Layout) => `${l.hub}/analysis/summary.md`;

/** Per-job record captured right after its training call (survives later calls). */
export const recordPath = (l: Layout, dose: number, view: View) =>
  `${l.config.roots.phaseE}/records/${jobLabel(dose, view)}.json`;
/** One view's training settings, written from the config (the tool's --config file). */
export const settingsPath = (l: Layout, view: View) => `${l.config.roots.phaseE}/settings/${view}.json`;

/** Target names (short ones are for people: --list, -B, goals). */
export const names = {
  phaseC: (dose: number) => `phase-c-dose${Math.trunc(dose)}`,
  phaseD: (dose: number) => `phase-d-dose${Math.trunc(dose)}`,
  settings: (view: View) => `settings-${view}`,
  training: (dose: number, view: View) => `train-${jobLabel(dose, view).replace(/_/g, '-')}`,
  merge: 'training-manifest',
  verify: 'verify',
  summary: 'summary',
} as const;

