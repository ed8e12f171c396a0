// Child process of bench/scale.ts: where a no-op build's time goes, phase by phase, in one process
// (the targets module import, validation, graph, state, stat cache, then the whole no-op main()),
// and the process's peak RSS. Prints one JSON line.
//   node --import tsx bench/probe.ts <root> [targets-module]
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { main } from '../engine/cli.ts';
import { buildGraph } from '../engine/graph.ts';
import { validateSpecs } from '../engine/spec.ts';
import { StateStore } from '../engine/state.ts';

const [root, file = 'targets/index.ts'] = process.argv.slice(2) as [string, string?];
const phases: Record<string, number> = {};
/** Resident set size after each phase, MB: where the memory of a big graph goes. */
const rssAfter: Record<string, number> = {};
const time = async <T>(k: string, f: () => T | Promise<T>): Promise<T> => {
  const t0 = performance.now();
  const v = await f();
  phases[k] = performance.now() - t0;
  rssAfter[k] = Math.round(process.memoryUsage().rss / 2 ** 20);
  return v;
};
const mod = await time('import module', () => import(pathToFileURL(path.resolve(root, file)).href) as Promise<{ default: unknown }>);
const specs = await time('evaluate module', () => (typeof mod.default === 'function' ? (mod.default as () => unknown)() : mod.default));
const targets = await time('validate specs', () => validateSpecs(specs, root));
await time('build graph', () => buildGraph(targets, root));
const st = new StateStore(root);
await time('read state', () => st.load());
await time('read stat cache', () => st.loadStatCache());
// The same files through JSON.parse alone: what reading costs beyond it is the decoding of the
// state format (string table, base64url hashes back to hex, timestamps back to ns strings).
const stateDir = path.join(root, '.hubmake');
const readText = (f: string) => (fs.existsSync(path.join(stateDir, f)) ? fs.readFileSync(path.join(stateDir, f), 'utf8') : '');
await time('  state log: read + JSON.parse only', () => {
  for (const l of readText('log.jsonl').split('\n')) if (l) JSON.parse(l);
});
await time('  stat cache: read + JSON.parse only', () => {
  const t = readText('stat.json');
  if (t) JSON.parse(t);
});
// The whole no-op as the command line runs it (module import now cached by the runtime).
const quiet = process.stdout.write.bind(process.stdout);
process.stdout.write = (() => true) as typeof process.stdout.write;
const code = await time('main() no-op (all of the above + fingerprint + decide)', () => main(['-C', root, '-f', file]));
process.stdout.write = quiet;
const size = (f: string) => (fs.existsSync(path.join(stateDir, f)) ? fs.statSync(path.join(stateDir, f)).size : 0);
console.log(JSON.stringify({ code, phases, rssAfter, targets: targets.length, maxRssKb: process.resourceUsage().maxRSS, logBytes: size('log.jsonl'), statBytes: size('stat.json') }));
