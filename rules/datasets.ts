// Step E2: Phase C (generation) and Phase D (overlap views), one target per dose. Datasets are
// precious (the real ones take minutes and gigabytes): `rebuild: 'missing'` regenerates them only
// when absent; when their inputs change, the engine keeps them and `--explain` says so.
import { names, prepLog, type Layout } from './layout.ts';
import type { HubSpec } from './spec.ts';
import { needsPhaseD, phaseCFiles, phaseDFiles } from './study.ts';

export function phaseC(l: Layout, dose: number): HubSpec {
  const { phaseC: C } = l.config.roots;
  return {
    name: names.phaseC(dose),
    description: `Phase C dataset for dose ${dose} in ${C} (regenerated only when missing; -B ${names.phaseC(dose)} forces)`,
    outputs: phaseCFiles(C, dose),
    params: { toolchain: l.tool.name, generation: l.tool.generationParams },
    run: l.tool.generation(dose),
    // Only written when a regeneration runs, as the plan asks (prep/ logs "if run").
    log: prepLog(l, 'c', dose),
    rebuild: 'missing',
  };
}

/** Views Phase D is asked for: trained views that come from Phase D (never a known-rejected one). */
export function phaseDViews(l: Layout) {
  return l.trained.filter(needsPhaseD);
}

export function phaseD(l: Layout, dose: number): HubSpec | null {
  const views = phaseDViews(l);
  if (views.length === 0) return null;
  const { phaseC: C, phaseD: D } = l.config.roots;
  return {
    name: names.phaseD(dose),
    description: `Phase D ${views.join('+')} views for dose ${dose} in ${D} (regenerated only when missing; -B ${names.phaseD(dose)} forces)`,
    inputs: phaseCFiles(C, dose),
    outputs: views.flatMap((v) => phaseDFiles(D, dose, v)),
    params: { toolchain: l.tool.name, views },
    // No --artifact-root: the tool would copy metrics into the hub, i.e. write hub files from a
    // dataset target, and a new hub timestamp would then regenerate the datasets.
    run: l.tool.overlap(dose, views),
    log: prepLog(l, 'd', dose),
    rebuild: 'missing',
  };
}
