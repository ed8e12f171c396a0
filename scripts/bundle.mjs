// `npm run bundle` (and `prepare`, so `npm install` / `npm ci` run it): compiles the engine's
// command line into dist/engine/cli.cjs with esbuild, plus a manifest of the sources it was made
// from, which build.ts checks before it uses the bundle (engine/compiled.ts). Packages stay
// external: they resolve from node_modules as they do from the sources. Plain JavaScript, so it
// runs before anything else is set up.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

const project = path.dirname(path.dirname(new URL(import.meta.url).pathname));
const out = path.join(project, 'dist/engine');
let esbuild;
try {
  esbuild = await import('esbuild');
} catch {
  console.log('bundle: esbuild is not installed; hubmake runs from its TypeScript sources');
  process.exit(0);
}
// Compile into a fresh directory, then swap it in, so a build starting meanwhile sees the old
// bundle or the new one, never half of one.
const tmp = `${out}.tmp-${process.pid}`;
fs.rmSync(tmp, { recursive: true, force: true });
const res = await esbuild.build({
  absWorkingDir: project,
  entryPoints: ['engine/cli.ts'],
  bundle: true,
  // One CommonJS file, which build.ts evaluates itself (engine/compiled.ts): loaded through tsx's
  // ESM hooks, every chunk and every `node:` import of an ESM bundle was a round trip to tsx's
  // loader thread (~35 ms per build). Lazy modules (watch mode, the live view, Slurm) are
  // initialised only when first imported; packages stay external and load from node_modules.
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  packages: 'external',
  outfile: path.join(tmp, 'cli.cjs'),
  define: { 'import.meta.url': '__hubmake_module_url' },
  banner: { js: 'const __hubmake_module_url = require("node:url").pathToFileURL(__filename).href;' },
  metafile: true,
  logLevel: 'warning',
  plugins: [{
    // The engine's import() sites, redirected to the function build.ts hands in (engine/compiled.ts).
    name: 'dynamic-import',
    setup(b) {
      b.onLoad({ filter: /engine[\\/]dynamic-import\.ts$/ }, () => ({ contents: 'export const dynamicImport = (s) => __hubmake_import(s);', loader: 'js' }));
    },
  }],
});
// fast-glob and picomatch as one file beside it, evaluated only by a build that matches a pattern
// (engine/globs.ts): through tsx's require hook their ~80 files cost ~30 ms. Not in the manifest:
// they change only with node_modules, and `npm install` / `npm ci` run this script again.
await esbuild.build({
  absWorkingDir: project,
  stdin: { contents: "module.exports = { fastGlob: require('fast-glob'), picomatch: require('picomatch') };", resolveDir: project, loader: 'js' },
  bundle: true,
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  outfile: path.join(tmp, 'globs.cjs'),
  logLevel: 'warning',
});
// The native command launcher (engine/launcher.c), when a C compiler is there: $CC (split into
// words, as make does), cc or gcc, the first that compiles it into a program that runs one command.
// Without one the build starts its commands through the bash launcher (engine/launcher.ts). The
// source's sha256 goes beside the binary: the engine uses no binary of another source version.
const launcherSrc = path.join(project, 'engine/launcher.c');
const launcherBin = path.join(tmp, 'hubmake-launcher');
const tried = [];
let launcher;
for (const cc of [process.env.CC, 'cc', 'gcc'].filter((c) => c && c.trim())) {
  const [prog, ...flags] = cc.trim().split(/\s+/);
  fs.rmSync(launcherBin, { force: true });
  const r = spawnSync(prog, [...flags, '-O2', '-o', launcherBin, launcherSrc], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    tried.push(`${cc}: ${r.error ? r.error.message : `exit ${r.status}\n${r.stderr.trim()}`}`);
    continue;
  }
  // Its first command, through the same frames the build reads.
  const smoke = spawnSync(launcherBin, ['bundle'], { input: 'T:\0xtrue\0', encoding: 'utf8', cwd: project, timeout: 10_000 });
  if (smoke.error || !/T:E0( gone)?\n$/.test(smoke.stdout ?? '')) {
    tried.push(`${cc}: compiled, but the program did not run a command (${smoke.error?.message ?? JSON.stringify(smoke.stdout)})`);
    continue;
  }
  fs.writeFileSync(`${launcherBin}.source-sha256`, crypto.createHash('sha256').update(fs.readFileSync(launcherSrc)).digest('hex') + '\n');
  launcher = `native launcher compiled with ${cc}`;
  break;
}
if (!launcher) {
  fs.rmSync(launcherBin, { force: true });
  launcher = `no native launcher (commands start through the bash launcher): ${tried.length ? tried.join('; ') : 'no C compiler ($CC, cc, gcc)'}`;
}
const sources = {};
for (const rel of Object.keys(res.metafile.inputs).sort()) {
  sources[rel] = crypto.createHash('sha256').update(fs.readFileSync(path.join(project, rel))).digest('hex');
}
fs.writeFileSync(path.join(tmp, 'manifest.json'), JSON.stringify({ entry: 'cli.cjs', sources }, null, 1) + '\n');
const old = `${out}.old-${process.pid}`;
if (fs.existsSync(out)) fs.renameSync(out, old);
fs.renameSync(tmp, out);
fs.rmSync(old, { recursive: true, force: true });
console.log(`bundle: ${Object.keys(sources).length} sources → ${path.relative(project, out)}; ${launcher}`);
