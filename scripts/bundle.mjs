// `npm run bundle` (and `prepare`, so `npm install` / `npm ci` run it): compiles the engine's
// command line into dist/engine/cli.cjs with esbuild, plus a manifest of the sources it was made
// from, which build.ts checks before it uses the bundle (engine/compiled.ts). Packages stay
// external: they resolve from node_modules as they do from the sources. Plain JavaScript, so it
// runs before anything else is set up.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
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
// The engine's C helpers, when a C compiler is there: $CC (split into words, as make does), cc or
// gcc, the first that compiles each into a program that passes its smoke test. Without one the
// engine does their work in JavaScript: the bash launcher starts the commands (engine/launcher.ts)
// and the build stats the settled stamp's paths itself (engine/stamp.ts). Each source's sha256
// goes beside its binary: the engine uses no binary of another source version (engine/native.ts).
const natives = [
  // The command launcher: its first command, through the same frames the build reads.
  { name: 'hubmake-launcher', source: 'launcher.c', what: 'native launcher', without: 'commands start through the bash launcher',
    smoke: (bin) => {
      const r = spawnSync(bin, ['bundle'], { input: 'T:\0xtrue\0', encoding: 'utf8', cwd: project, timeout: 10_000 });
      return !r.error && /T:E0( gone)?\n$/.test(r.stdout ?? '') ? undefined : `did not run a command (${r.error?.message ?? JSON.stringify(r.stdout)})`;
    } },
  // The stamp probe: one stamp file, one path confirmed and one not.
  { name: 'hubmake-stamp-probe', source: 'stamp-probe.c', what: 'stamp probe', without: 'the build stats the stamp\'s paths itself', flags: ['-pthread'],
    smoke: (bin) => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-probe-'));
      try {
        fs.writeFileSync(path.join(dir, 'a'), 'a');
        const st = fs.statSync(path.join(dir, 'a'), { bigint: true });
        const sig = (s) => `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
        fs.writeFileSync(path.join(dir, 'stamp'), `{}\ni\0f:${sig(st)}\0a\0i\0f:0:0:0:0:0\0a\0`);
        const r = spawnSync(bin, [dir, path.join(dir, 'stamp'), sig(fs.statSync(path.join(dir, 'stamp'), { bigint: true }))], { encoding: 'utf8', timeout: 10_000 });
        return !r.error && r.stdout === '1\nend 2\n' ? undefined : `did not check a stamp (${r.error?.message ?? JSON.stringify(r.stdout)})`;
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    } },
];
const helpers = [];
for (const n of natives) {
  const src = path.join(project, 'engine', n.source);
  const bin = path.join(tmp, n.name);
  const tried = [];
  let built;
  for (const cc of [process.env.CC, 'cc', 'gcc'].filter((c) => c && c.trim())) {
    const [prog, ...flags] = cc.trim().split(/\s+/);
    fs.rmSync(bin, { force: true });
    const r = spawnSync(prog, [...flags, '-O2', ...(n.flags ?? []), '-o', bin, src], { encoding: 'utf8' });
    if (r.error || r.status !== 0) {
      tried.push(`${cc}: ${r.error ? r.error.message : `exit ${r.status}\n${r.stderr.trim()}`}`);
      continue;
    }
    const failed = n.smoke(bin);
    if (failed) {
      tried.push(`${cc}: compiled, but the program ${failed}`);
      continue;
    }
    fs.writeFileSync(`${bin}.source-sha256`, crypto.createHash('sha256').update(fs.readFileSync(src)).digest('hex') + '\n');
    built = `${n.what} compiled with ${cc}`;
    break;
  }
  if (!built) {
    fs.rmSync(bin, { force: true });
    built = `no ${n.what} (${n.without}): ${tried.length ? tried.join('; ') : 'no C compiler ($CC, cc, gcc)'}`;
  }
  helpers.push(built);
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
console.log(`bundle: ${Object.keys(sources).length} sources → ${path.relative(project, out)}; ${helpers.join('; ')}`);
