// hubmake's command line. See `npx tsx build.ts --help`.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { compiledEngine, loadCompiled } from './engine/compiled.ts';

// The compiled engine when it matches the sources (engine/compiled.ts), else the sources.
const compiled = compiledEngine(path.dirname(fileURLToPath(import.meta.url)));
const { main } = compiled.file ? loadCompiled(compiled.file) : await import('./engine/cli.ts');
const t0 = performance.now();
const code = await main(process.argv.slice(2));
if (process.env.HUBMAKE_TIMING) {
  process.stderr.write(`hubmake-engine-ms: ${(performance.now() - t0).toFixed(1)}\n`);
  process.stderr.write(`hubmake-engine: ${compiled.file ? 'compiled' : `sources (${compiled.why})`}\n`);
}
process.exitCode = code;
