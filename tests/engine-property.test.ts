// The incremental engine's central property, on random graphs and random edits: after every
// incremental build (a) every output equals what a clean build produces and (b) the commands that
// ran are exactly the minimal set (an oracle with early cutoff). Seeded: a failure names its seed.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { main } from '../engine/cli.ts';
import { tempRoot } from './lib/cli.ts';
import { prng } from './lib/prng.ts';
import { GLOB, Oracle, randomGraph, writeTargetsModule, type GraphSpec } from './lib/randomGraph.ts';

const SEEDS = (process.env.PROPERTY_SEEDS ?? '11,23,37,41').split(',').map(Number);
const STEPS = Number(process.env.PROPERTY_STEPS ?? 55);
const TARGETS = 32;

/** Stats the builds so far took from the worker that stat'ed ahead (engine/prefetch.ts). */
let statsAhead = 0;
/** Builds that skipped the targets module (its record stood: engine/module-record.ts). */
let moduleSkipped = 0;
/** Builds narrowed to the targets the moved paths reach (engine/narrow.ts). */
let narrowed = 0;

/**
 * Runs the real command line in this process (the module is loaded once per root), quietly.
 * Resolves to how the settled stamp (engine/stamp.ts) took part, from the --json events: it
 * answered the whole build, vouched for some targets, or neither.
 */
async function build(root: string, cache = false): Promise<'settled' | 'partial' | 'none'> {
  const write = process.stdout.write.bind(process.stdout);
  const werr = process.stderr.write.bind(process.stderr);
  let err = '';
  let out = '';
  process.stdout.write = ((c: string) => { out += c; return true; }) as typeof process.stdout.write;
  process.stderr.write = ((c: string) => { err += c; return true; }) as typeof process.stderr.write;
  try {
    // --no-cache: the property is the rebuilder's minimal set; the artifact cache would restore
    // reverted or deleted outputs without running their commands (the cache run below checks it).
    const code = await main(['-C', root, '-j', '3', '--json', ...(cache ? [] : ['--no-cache'])]);
    if (code !== 0) throw new Error(`build exited ${code}: ${err}`);
    const events = out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; settled?: boolean; vouched?: number; statsAhead?: number });
    statsAhead += events.find((e) => e.type === 'build-end')?.statsAhead ?? 0;
    const start = events.find((e) => e.type === 'build-start') as { module?: string; narrowed?: string } | undefined;
    if (String(start?.module).startsWith('skipped')) moduleSkipped++;
    if (/^\d/.test(start?.narrowed ?? '')) narrowed++;
    if (events.find((e) => e.type === 'build-end')?.settled) return 'settled';
    return (events.find((e) => e.type === 'build-start')?.vouched ?? 0) > 0 ? 'partial' : 'none';
  } finally {
    process.stdout.write = write;
    process.stderr.write = werr;
  }
}

function readRan(root: string): string[] {
  const f = path.join(root, '.ran');
  const text = fs.existsSync(f) ? fs.readFileSync(f, 'utf8') : '';
  fs.rmSync(f, { force: true });
  return text.split('\n').filter(Boolean).sort();
}

function setup(root: string, g: GraphSpec, files: Map<string, string>): void {
  fs.writeFileSync(path.join(root, 'graph.json'), JSON.stringify(g));
  writeTargetsModule(root);
  for (const [f, c] of files) {
    if (!f.startsWith('src/')) continue;
    fs.mkdirSync(path.dirname(path.join(root, f)), { recursive: true });
    fs.writeFileSync(path.join(root, f), c);
  }
}

function outputsOf(root: string, g: GraphSpec): Map<string, string> {
  return new Map(g.nodes.map((n) => [n.name, fs.readFileSync(path.join(root, n.name), 'utf8')]));
}

const words = ['alpha', 'beta', 'gamma', 'delta', 'eps', 'zeta'];

// The no-glob seed also lets module records stand at once (HUBMAKE_MODULE_RECORD=0: its module was
// just written): its no-ops skip the module, and take the key from the stamp.
// One more seed with the artifact cache on (the default): restores stand in for some runs, so the
// commands that ran are a subset of the minimal set, and every output still equals the oracle's.
// And one seed whose graph has no glob input, so that the settled stamp can answer whole builds:
// an extra no-op build follows half the steps, and a stamp that wrongly says "nothing to do" shows
// as a ran set smaller than the oracle's.
// The last of the seeds takes its stats ahead on a worker thread whatever the graph's size
// (HUBMAKE_STAT_AHEAD=1,wait: from one file, and waiting for the worker, which would otherwise
// not have started before so small a graph is decided; by default only from 20,000 files): a stat used after the build changed
// that file shows as a ran set or an output that differs.
interface Run { seed: number; cache: boolean; glob: boolean; ahead?: boolean }
const RUNS: Run[] = [
  ...SEEDS.map((seed, i) => ({ seed, cache: false, glob: true, ahead: i === SEEDS.length - 1 })),
  { seed: Number(process.env.PROPERTY_CACHE_SEED ?? 53), cache: true, glob: true },
  { seed: Number(process.env.PROPERTY_STAMP_SEED ?? 67), cache: false, glob: false },
];

for (const { seed, cache, glob, ahead } of RUNS) {
  test(`seed ${seed}${cache ? ' (artifact cache on)' : ''}${glob ? '' : ' (no glob: settled stamp in play)'}${ahead ? ' (stats taken ahead)' : ''}: ${STEPS} random edits, each build equals a clean build and runs ${cache ? 'no more than' : ''} the minimal set`, async () => {
    if (ahead) process.env.HUBMAKE_STAT_AHEAD = '1,wait';
    else delete process.env.HUBMAKE_STAT_AHEAD;
    statsAhead = 0;
    moduleSkipped = 0;
    narrowed = 0;
    // Narrowed whenever the moved paths allow it (HUBMAKE_NARROW=1: whatever share they reach).
    if (!glob) process.env.HUBMAKE_MODULE_RECORD = '0';
    if (!glob) process.env.HUBMAKE_NARROW = '1';
    const r = prng(seed);
    const g = randomGraph(seed, TARGETS, 8, { glob });
    const seen = { settled: 0, partial: 0, none: 0 };
    let builds = 0;
    const root = tempRoot('hubmake-prop-');
    // As ES modules (the hub's kind): a module evaluated again in this process is loaded again.
    if (!glob) fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ type: 'module' }));
    const files = new Map<string, string>(g.sources.map((s) => [s, `${r.pick(words)} ${s}\n`]));
    setup(root, g, files);
    const oracle = new Oracle(g);
    await build(root, cache);
    assert.equal(readRan(root), oracle.step(files), `seed ${seed}: first build`);
    let extra = 0;
    const log: string[] = [];
    for (let step = 1; step <= STEPS; step++) {
      const edits = 1 + r.int(2);
      for (let e = 0; e < edits; e++) {
        const kind = r.int(glob ? 9 : 10);
        const src = r.pick(g.sources);
        const node = r.pick(g.nodes);
        const abs = (f: string) => path.join(root, f);
        if (kind === 0 || kind === 1) {
          // Content change; half the time with the same length, so 'count' targets cut off early.
          const old = files.get(src)!;
          const now = r.chance(0.5) ? old.split('').reverse().join('') : `${old}${r.pick(words)}\n`;
          files.set(src, now);
          fs.writeFileSync(abs(src), now);
          log.push(`${step}: edit ${src}`);
        } else if (kind === 2) {
          const t = new Date(Date.now() + r.int(100_000));
          fs.utimesSync(abs(src), t, t);
          log.push(`${step}: touch ${src}`);
        } else if (kind === 3) {
          node.p = (node.p + 1 + r.int(3)) % 7;
          fs.writeFileSync(path.join(root, 'graph.json'), JSON.stringify(g));
          log.push(`${step}: params ${node.name}`);
        } else if (kind === 4) {
          fs.rmSync(abs(node.name), { force: true });
          files.delete(node.name);
          log.push(`${step}: delete ${node.name}`);
        } else if (kind === 5) {
          const junk = `hand edit ${step}\n`;
          fs.writeFileSync(abs(node.name), junk);
          files.set(node.name, junk);
          log.push(`${step}: hand-edit ${node.name}`);
        } else if (kind === 6) {
          // Byte-identical rewrite through a new inode (editors save by rename).
          fs.writeFileSync(abs(`${src}.swp`), files.get(src)!);
          fs.renameSync(abs(`${src}.swp`), abs(src));
          log.push(`${step}: rewrite-same ${src}`);
        } else if (kind === 9) {
          // Same length, other bytes, and the old mtime put back: only size, inode and ctime remain
          // to tell (the settled stamp and the stat cache must both see it).
          const old = files.get(src)!;
          const now = old.replace(/[a-z]/, (c) => (c === 'z' ? 'a' : String.fromCharCode(c.charCodeAt(0) + 1)));
          const st = fs.statSync(abs(src));
          files.set(src, now);
          fs.writeFileSync(abs(src), now);
          fs.utimesSync(abs(src), st.atime, st.mtime);
          log.push(`${step}: same-size edit, mtime kept ${src}`);
        } else if (kind === 7) {
          const f = `src/extra${extra++}.txt`;
          files.set(f, `${r.pick(words)}\n`);
          fs.writeFileSync(abs(f), files.get(f)!);
          log.push(`${step}: new ${f} (matches ${GLOB})`);
        } else {
          log.push(`${step}: nothing`);
        }
      }
      seen[await build(root, cache)]++;
      builds++;
      const expected = oracle.step(files);
      const ran = readRan(root);
      if (cache) {
        const extraRuns = ran.filter((n) => !expected.includes(n));
        assert.equal(extraRuns, [], `seed ${seed} step ${step}: ran more than the minimal set; edits:\n${log.slice(-6).join('\n')}`);
      } else assert.equal(ran, expected, `seed ${seed} step ${step}: ran set differs; edits:\n${log.slice(-6).join('\n')}`);
      const actual = outputsOf(root, g);
      for (const n of g.nodes) assert.is(actual.get(n.name), files.get(n.name), `seed ${seed} step ${step}: ${n.name}`);
      if (!glob && r.chance(0.5)) {
        seen[await build(root, cache)]++;
        builds++;
        assert.equal(readRan(root), [], `seed ${seed} step ${step}: a second build ran commands; edits:\n${log.slice(-6).join('\n')}`);
      } else if (glob && r.chance(0.25)) {
        // Past the racy window of the directories the glob's stamp watches: the first no-op can
        // write a stamp, and the second is answered by it; the next step's edits must see past it.
        await new Promise((res) => setTimeout(res, 120));
        for (let i = 0; i < 2; i++) {
          seen[await build(root, cache)]++;
          builds++;
          assert.equal(readRan(root), [], `seed ${seed} step ${step}: a no-op build ran commands; edits:\n${log.slice(-6).join('\n')}`);
        }
      }
      if (step % 25 === 0 || step === STEPS) {
        // A real clean build from scratch must agree byte for byte.
        const clean = tempRoot('hubmake-clean-');
        setup(clean, g, files);
        await build(clean, cache);
        assert.equal(outputsOf(clean, g), actual, `seed ${seed} step ${step}: differs from a clean build`);
        fs.rmSync(clean, { recursive: true, force: true });
      }
    }
    // The stamp must have answered (not only been checked) often enough to matter. A graph with
    // a glob is answered whole or decided per target, never in part.
    // Edits between builds make most no-glob builds partial: the stamp vouches for the targets the
    // edits do not reach, and the oracle checks that exactly the others ran.
    if (glob) {
      assert.is(seen.partial, 0);
      assert.ok(seen.settled >= builds / 10, `seed ${seed}: the stamp answered ${seen.settled} of ${builds} builds`);
    } else {
      assert.ok(seen.settled >= builds / 5, `seed ${seed}: the stamp answered ${seen.settled} of ${builds} builds`);
      assert.ok(seen.partial >= builds / 4, `seed ${seed}: the stamp vouched for part of ${seen.partial} of ${builds} builds`);
      assert.ok(moduleSkipped >= seen.settled / 2, `seed ${seed}: ${moduleSkipped} of ${seen.settled} settled builds skipped the module`);
      // Most of the builds the stamp vouched for in part were narrowed (those that were not: the
      // targets module's graph.json changed, or an output was deleted... see narrow.ts).
      assert.ok(narrowed >= seen.partial / 2, `seed ${seed}: ${narrowed} of ${seen.partial} builds in part were narrowed`);
    }
    // Every build decides some targets before it runs any: the worker's stats were used.
    if (ahead) assert.ok(statsAhead >= builds, `seed ${seed}: ${statsAhead} stats taken ahead in ${builds} builds`);
    else assert.is(statsAhead, 0);
    delete process.env.HUBMAKE_STAT_AHEAD;
    delete process.env.HUBMAKE_MODULE_RECORD;
    delete process.env.HUBMAKE_NARROW;
    fs.rmSync(root, { recursive: true, force: true });
  });
}

test.run();
