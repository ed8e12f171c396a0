// hubmake's command line. See `npx tsx build.ts --help`.
import { main } from './engine/cli.ts';

const t0 = performance.now();
const code = await main(process.argv.slice(2));
if (process.env.HUBMAKE_TIMING) process.stderr.write(`hubmake-engine-ms: ${(performance.now() - t0).toFixed(1)}\n`);
process.exitCode = code;
