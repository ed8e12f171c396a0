// Fuzzing the loader: thousands of random specs (well-formed, subtly wrong and absurd) go through
// validateSpecs + buildGraph + resolveGoals in-process. Every outcome must be either a valid graph
// (checked against its invariants) or a DeclarationError with readable diagnostics, never another
// exception. Seed: HUBMAKE_FUZZ_SEED (default 4242).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DeclarationError } from '../engine/errors.ts';
import { buildGraph, resolveGoals, type Graph } from '../engine/graph.ts';
import { validateSpecs } from '../engine/spec.ts';
import { tempRoot, write } from './lib/cli.ts';
import { prng } from './lib/prng.ts';

const SEED = Number(process.env.HUBMAKE_FUZZ_SEED ?? 4242);
const CASES = 4000;

type R = ReturnType<typeof prng>;

const root = tempRoot('hubmake-fuzz-');
write(root, 'src/a.txt', 'a');
write(root, 'src/b.txt', 'b');
write(root, 'dir/x.txt', 'x');
fs.symlinkSync('/tmp', path.join(root, 'outside'));
fs.symlinkSync('/tmp/hubmake-fuzz-nowhere', path.join(root, 'dangling'));
fs.symlinkSync('loop', path.join(root, 'loop'));

const PATHS = [
  'a', 'b', 'c', 'out/a.txt', 'out/b.txt', 'out/', 'out/sub/', 'src/a.txt', 'src/b.txt', 'dir/', 'dir/x.txt', 'src/*.txt', 'src/**', '**/*',
  '', '.', './', '/', '..', '../x', 'a/../../b', '/etc/passwd', 'C:\\x', 'outside/x', 'dangling', 'dangling/x', 'loop', 'a//b', './a', 'a/./b/',
  'src/a.txt/x', 'src/a.txt/', 'dir/x.txt/y/z', 'spa ce', 'quo"te', "it's", '$(rm -rf /)', 'ü/ñ.txt', 'new\nline', '\u0000nul', '*', '?', '[ab]', '{a,b}', 'x'.repeat(300), '.hubmake/log.jsonl', 'node_modules/x',
];

function weird(r: R, depth = 0): unknown {
  switch (r.int(16)) {
    case 0: return undefined;
    case 1: return null;
    case 2: return r.int(2) === 0;
    case 3: return r.pick([0, -1, 1.5, NaN, Infinity, -0, 2 ** 60]);
    case 4: return BigInt(r.int(10));
    case 5: return Symbol('s');
    case 6: return () => 1;
    case 7: return r.pick(PATHS);
    case 8: return new Date(0);
    case 9: return new Map([[1, 2]]);
    case 10: return Object.create(null);
    case 11: { const o: Record<string, unknown> = {}; o.self = o; return o; }
    case 12: return depth < 3 ? Array.from({ length: r.int(4) }, () => weird(r, depth + 1)) : [];
    case 13: return depth < 3 ? Object.fromEntries(Array.from({ length: r.int(4) }, (_, i) => [r.pick(['k', 'name', '__proto__', 'constructor', `k${i}`]), weird(r, depth + 1)])) : {};
    case 14: return 'x'.repeat(r.int(5));
    default: return r.pick(['stale', 'missing', 'local', 'slurm', 'true', 'echo hi']);
  }
}

const strings = (r: R, names: string[]) => Array.from({ length: r.int(4) }, () => (r.chance(0.85) ? r.pick(r.chance(0.3) && names.length ? names : PATHS) : weird(r)));

/** A spec: mostly plausible, with a random field or two broken. */
function spec(r: R, names: string[]): unknown {
  if (r.chance(0.03)) return weird(r);
  const s: Record<string, unknown> = {};
  if (r.chance(0.5)) s.name = r.chance(0.9) ? `t${r.int(12)}` : weird(r);
  if (r.chance(0.8)) s.outputs = r.chance(0.9) ? strings(r, []) : weird(r);
  if (r.chance(0.5)) s.inputs = r.chance(0.9) ? strings(r, []) : weird(r);
  if (r.chance(0.4)) s.deps = r.chance(0.9) ? strings(r, names) : weird(r);
  if (r.chance(0.8)) s.run = r.chance(0.85) ? r.pick(['true', 'echo x > a', async () => {}]) : weird(r);
  if (r.chance(0.3)) s.params = r.chance(0.7) ? { k: r.int(3), list: [1, 'two', null], nested: { a: true } } : weird(r);
  if (r.chance(0.2)) s.env = r.chance(0.8) ? ['HOME', 'X_Y'] : weird(r);
  if (r.chance(0.2)) s.log = r.chance(0.7) ? r.pick(['logs/a.log', 'a.log', 'logs/']) : weird(r);
  for (const k of ['rebuild', 'description', 'runOnFailure', 'pool', 'cache', 'executor', 'slurm']) if (r.chance(0.08)) s[k] = weird(r);
  if (r.chance(0.05)) s[r.pick(['ouputs', 'input', 'cmd', 'constructor', '__proto__'])] = weird(r);
  if (r.chance(0.05)) s.slurm = { partition: weird(r), cpus: weird(r), [r.pick(['time', 'bogus', 'args'])]: weird(r) };
  return s;
}

/** Invariants of a graph that validated: the engine relies on every one of them. */
function checkGraph(g: Graph): void {
  const pos = new Map(g.order.map((n, i) => [n, i]));
  assert.is(pos.size, g.targets.length, 'order holds every target once');
  for (const t of g.targets) {
    assert.type(t.name, 'string');
    for (const d of g.depsOf.get(t.name)!) {
      assert.ok(g.byName.has(d), `dep ${d} exists`);
      assert.ok(pos.get(d)! < pos.get(t.name)!, `${d} comes before ${t.name}`);
    }
    for (const o of t.outputs) {
      assert.ok(!o.startsWith('/') && !o.startsWith('../') && o !== '..' && o !== '.' && o !== '', `output ${JSON.stringify(o)} stays inside the root`);
      assert.is(g.producerOf(o), t, `producer of ${o}`);
    }
    if (t.log) assert.ok(!t.log.startsWith('/') && !t.log.startsWith('../'), `log ${t.log} stays inside the root`);
    assert.type(t.paramsJson, 'string');
  }
}

test(`${CASES} random spec lists: a valid graph or a DeclarationError, never another exception`, () => {
  const r = prng(SEED);
  const tally = { graphs: 0, declarationErrors: 0, goalErrors: 0 };
  for (let i = 0; i < CASES; i++) {
    const names = Array.from({ length: 6 }, (_, k) => `t${k}`).concat(PATHS.slice(0, 5));
    const exported = r.chance(0.02) ? weird(r) : Array.from({ length: r.int(7) }, () => spec(r, names));
    let g: Graph;
    try {
      g = buildGraph(validateSpecs(exported, root), root);
    } catch (e) {
      if (!(e instanceof DeclarationError)) {
        throw new Error(`case ${i} (seed ${SEED}) threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.stack ?? String(e)}\nspecs: ${safeShow(exported)}`);
      }
      assert.ok(e.diagnostics.length > 0, 'a declaration error says something');
      for (const d of e.diagnostics) assert.ok(typeof d.message === 'string' && d.message.length > 0, `case ${i}: empty diagnostic`);
      tally.declarationErrors++;
      continue;
    }
    checkGraph(g);
    tally.graphs++;
    const goals = Array.from({ length: r.int(3) }, () => r.pick([...g.byName.keys(), ...PATHS, 't*', 'nope']));
    try {
      const res = resolveGoals(g, goals);
      for (const n of res.closure) assert.ok(g.byName.has(n));
    } catch (e) {
      if (!(e instanceof DeclarationError)) throw new Error(`case ${i} (seed ${SEED}): resolveGoals(${JSON.stringify(goals)}) threw ${(e as Error)?.stack}`);
      tally.goalErrors++;
    }
  }
  // Both kinds of outcome must be common, or the generator is not exploring.
  assert.ok(tally.graphs > CASES / 10, `only ${tally.graphs} valid graphs`);
  assert.ok(tally.declarationErrors > CASES / 10, `only ${tally.declarationErrors} declaration errors`);
});

function safeShow(v: unknown): string {
  try {
    return JSON.stringify(v, (_k, x) => (typeof x === 'bigint' ? `${x}n` : typeof x === 'function' ? '[fn]' : typeof x === 'symbol' ? String(x) : x)).slice(0, 2000);
  } catch {
    return String(v);
  }
}

test.after(() => fs.rmSync(root, { recursive: true, force: true }));

test.run();
