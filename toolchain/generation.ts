// CLI: npx tsx toolchain/generation.ts --output-root C --dose 1000 [...]  (see docs/toolchain.md)
import { runCli } from './cli.ts';
import { generationSpecs, runGeneration } from './phase_c.ts';

await runCli('generation.ts', generationSpecs, runGeneration);
