// Study knowledge of the PtychoPINN fly64 dose/overlap study (era 1, "dense/sparse"), kept in
// one place so that targets/ and the other rules only combine it. Sources:
// /work/shared/reference/ptychopinn-study.md §1.3, §1.4, §6.

/** The three Phase E views. */
export const VIEWS = ['baseline', 'dense', 'sparse'] as const;
export type View = (typeof VIEWS)[number];

/** TrainingJob.__post_init__: baseline ⇒ gs1, dense/sparse ⇒ gs2 (OVERSAMPLING-001). */
export function gridsizeOf(view: View): 1 | 2 {
  return view === 'baseline' ? 1 : 2;
}

/** Views whose training data comes from Phase D (baseline reads Phase C directly). */
export function needsPhaseD(view: View): boolean {
  return view !== 'baseline';
}

/**
 * Views the era-1 Phase D spacing filter rejects. The real overlap CLI exits 1 on the first
 * rejected view (and writes no overlap manifest), so asking for one would fail the whole
 * Phase D step; such views are not requested and show up as pending work instead.
 */
export const DEFAULT_REJECTED_VIEWS: Record<string, string> = {
  sparse:
    'Phase D spacing filter rejects the sparse view (threshold 102.4 px; ACCEPTANCE-001); ' +
    'Phase E records it as a skip event',
};

/** `f"dose_{int(dose)}"` as the study names its dose directories. */
export function doseDir(dose: number): string {
  return `dose_${Math.trunc(dose)}`;
}

/** The manifest's `dose` is a float; the stdout label prints it as `1e+03`. */
export function doseLabel(dose: number): string {
  const [mantissa, exponent = '0'] = dose.toExponential().split('e');
  const sign = exponent.startsWith('-') ? '-' : '+';
  return `${mantissa}e${sign}${exponent.replace(/^[+-]/, '').padStart(2, '0')}`;
}

/** Phase C outputs consumed downstream (the intermediate NPZs are not declared: 1.2 GB each). */
export function phaseCFiles(root: string, dose: number): string[] {
  return [`${root}/${doseDir(dose)}/patched_train.npz`, `${root}/${doseDir(dose)}/patched_test.npz`];
}

/** Phase D outputs of one view (era-1 nested layout, "E5 path alignment"). */
export function phaseDFiles(root: string, dose: number, view: View): string[] {
  const dir = `${root}/${doseDir(dose)}/${view}`;
  return [`${dir}/${view}_train.npz`, `${dir}/${view}_test.npz`];
}

/** The datasets a training job of this view reads. */
export function trainingInputs(phaseC: string, phaseD: string, dose: number, view: View): string[] {
  return needsPhaseD(view) ? phaseDFiles(phaseD, dose, view) : phaseCFiles(phaseC, dose);
}

/** `<A>/dose_{d}/{view}/gs{g}/` as run_training_job lays out its artifacts. */
export function artifactDir(phaseE: string, dose: number, view: View): string {
  return `${phaseE}/${doseDir(dose)}/${view}/gs${gridsizeOf(view)}`;
}

/** Short job label used in file names: `dose1000_dense_gs2`. */
export function jobLabel(dose: number, view: View): string {
  return `dose${Math.trunc(dose)}_${view}_gs${gridsizeOf(view)}`;
}

/** The two E1 selectors and the collect-only proof of the plan, with their hub log names. */
export const EVIDENCE = [
  {
    id: 'bundle-sha',
    log: 'green/pytest_bundle_sha_green.log',
    title: 'test_execute_training_job_persists_bundle (SHA256 on disk = result)',
  },
  {
    id: 'training-cli',
    log: 'green/pytest_training_cli_green.log',
    title: '-k training_cli (CLI manifest, bundle path, stdout SHA lines)',
  },
  {
    id: 'collect',
    log: 'collect/pytest_training_cli_collect.log',
    title: '--collect-only -k training_cli (selectors still collected)',
  },
] as const;
export type EvidenceId = (typeof EVIDENCE)[number]['id'];

/** The pytest file the selectors live in (in the PtychoPINN checkout). */
export const STUDY_TEST_FILE = 'tests/study/test_dose_overlap_training.py';
