// CLI: npx tsx toolchain/overlap.ts --phase-c-root C --output-root D [--doses ...] [--views dense sparse]
import { runCli } from './cli.ts';
import { overlapSpecs, runOverlap } from './phase_d.ts';

await runCli('overlap.ts', overlapSpecs, runOverlap);
