// CLI: npx tsx toolchain/training.ts --phase-c-root C --phase-d-root D --artifact-root A [...]
import { runCli } from './cli.ts';
import { runTraining, trainingSpecs } from './phase_e.ts';

await runCli('training.ts', trainingSpecs, runTraining);
