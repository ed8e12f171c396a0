// The two toolchains as command-line builders: the reference simulator (`sim`, toolchain/*.ts)
// and a real PtychoPINN checkout. Pure: config in, command strings out. Nothing else in rules/
// knows a flag of the study CLIs.
import path from 'node:path';
import { toolchainOf, type HubConfig, type SimFault } from './config.ts';
import { argv, quote } from './shell.ts';
import { gridsizeOf, STUDY_TEST_FILE, type EvidenceId, type View } from './study.ts';

export interface TrainingCall {
  dose: number;
  view: View;
  /** The view's settings JSON (root-relative). */
  settingsPath: string;
  epochs: number;
  args: string[];
  fault?: SimFault;
}

export interface Toolchain {
  name: 'sim' | 'ptychopinn';
  /** One line: which toolchain this build uses (printed by the targets module, kept in the summary). */
  banner: string;
  /** Settings that shape Phase C data (its params: a change makes the datasets stale-but-kept). */
  generationParams: unknown;
  generation(dose: number): string;
  overlap(dose: number, views: View[]): string;
  training(call: TrainingCall): string;
  evidence(id: EvidenceId): string;
  /** Files whose change must rerun the test evidence (the tests and the code under test). */
  evidenceInputs: string[];
}

/**
 * The simulator: `npx tsx toolchain/<tool>.ts` in its docs, run here as `node --import tsx`, the
 * same loader without npx's start-up cost (seconds per call on a busy machine).
 */
function sim(config: HubConfig): Toolchain {
  const { roots, sim: s } = config;
  const tool = (name: string, words: Array<string | number>) => argv(['node', '--import', 'tsx', `toolchain/${name}.ts`, ...words]);
  const exec = ['--accelerator', 'cpu', '--deterministic', '--num-workers', '0'];
  return {
    name: 'sim',
    banner: 'sim (reference simulator, not PtychoPINN)',
    generationParams: { seed: s.seed, patchSize: s.patchSize, positions: s.positions, objectSize: s.objectSize },
    generation: (dose) =>
      tool('generation', [
        '--output-root', roots.phaseC, '--dose', dose, '--seed', s.seed,
        '--patch-size', s.patchSize, '--positions', s.positions,
        ...(s.objectSize !== null ? ['--object-size', s.objectSize] : []),
      ]),
    overlap: (dose, views) =>
      tool('overlap', ['--phase-c-root', roots.phaseC, '--output-root', roots.phaseD, '--doses', dose, '--views', ...views]),
    training: (c) =>
      tool('training', [
        '--phase-c-root', roots.phaseC, '--phase-d-root', roots.phaseD, '--artifact-root', roots.phaseE,
        '--dose', c.dose, '--view', c.view, '--gridsize', gridsizeOf(c.view), '--config', c.settingsPath,
        ...exec, ...(c.fault ? ['--sim-fault', c.fault] : []),
      ]),
    evidence: (id) =>
      id === 'bundle-sha'
        ? tool('selftest', [`${STUDY_TEST_FILE}::test_execute_training_job_persists_bundle`, '-vv'])
        : id === 'training-cli'
          ? tool('selftest', [STUDY_TEST_FILE, '-k', 'training_cli', '-vv'])
          : tool('selftest', ['--collect-only', STUDY_TEST_FILE]),
    evidenceInputs: ['toolchain/**/*.ts'],
  };
}

/**
 * A PtychoPINN checkout: `cd <root> && AUTHORITATIVE_CMDS_DOC=./docs/TESTING_GUIDE.md <python> -m ...`
 * (the plan's guardrail). Paths are given to the tools relative to the checkout when the checkout
 * is configured by a relative path (the usual case is `.`: the hub lives inside the checkout), and
 * absolute otherwise, so command lines never depend on where the root happens to be.
 */
function ptychopinn(config: HubConfig, root: string): Toolchain {
  const p = config.ptychopinn;
  const checkout = p.root!;
  const toTool = (rel: string) =>
    path.isAbsolute(checkout)
      ? path.resolve(root, rel)
      : path.relative(path.resolve(root, checkout), path.resolve(root, rel)) || '.';
  const C = toTool(config.roots.phaseC);
  const D = toTool(config.roots.phaseD);
  const A = toTool(config.roots.phaseE);
  const prefix = `cd ${quote(checkout)} && AUTHORITATIVE_CMDS_DOC=./docs/TESTING_GUIDE.md `;
  const py = (words: Array<string | number>) => prefix + argv([p.python, ...words]);
  const mod = (name: string) => `studies.fly64_dose_overlap.${name}`;
  return {
    name: 'ptychopinn',
    banner: `ptychopinn (checkout ${checkout}, ${p.python})`,
    generationParams: { baseNpz: p.baseNpz },
    generation: (dose) =>
      py(['-m', mod('generation'), ...(p.baseNpz ? ['--base-npz', p.baseNpz] : []), '--output-root', C, '--dose', dose]),
    overlap: (dose, views) =>
      py(['-m', mod('overlap'), '--phase-c-root', C, '--output-root', D, '--doses', dose, '--views', ...views]),
    training: (c) =>
      py([
        '-m', mod('training'), '--phase-c-root', C, '--phase-d-root', D, '--artifact-root', A,
        '--dose', c.dose, '--view', c.view, '--gridsize', gridsizeOf(c.view),
        ...(p.backend ? ['--backend', p.backend] : []),
        ...p.executionFlags,
        ...(p.epochsFlag ? [p.epochsFlag, c.epochs] : []),
        ...c.args,
      ]),
    evidence: (id) =>
      id === 'bundle-sha'
        ? py(['-m', 'pytest', `${STUDY_TEST_FILE}::test_execute_training_job_persists_bundle`, '-vv'])
        : id === 'training-cli'
          ? py(['-m', 'pytest', STUDY_TEST_FILE, '-k', 'training_cli', '-vv'])
          : py(['-m', 'pytest', '--collect-only', STUDY_TEST_FILE, '-k', 'training_cli', '-vv']),
    // Inputs must be root-relative for the engine (an absolute checkout becomes `../..`).
    evidenceInputs: p.evidenceInputs.map((g) => path.relative(root, path.resolve(root, checkout, g)).split(path.sep).join('/')),
  };
}

/** The toolchain a config selects; `root` is the absolute root directory. */
export function makeToolchain(config: HubConfig, root: string): Toolchain {
  return toolchainOf(config) === 'ptychopinn' ? ptychopinn(config, root) : sim(config);
}
