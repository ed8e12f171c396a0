// The watch plan (what is watched, what a changed path means, which targets a change makes the
// next build consider) and the directory watcher's reach, on real graphs and real directories.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DirWatcher } from '../engine/dirwatch.ts';
import { buildGraph, resolveGoals } from '../engine/graph.ts';
import { validateSpecs } from '../engine/spec.ts';
import { globReach, planWatch, staleScope } from '../engine/watch-plan.ts';

function tmp(files: Record<string, string>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-plan-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), text);
  }
  return root;
}

const SPECS = [
  { outputs: ['out/a.txt'], inputs: ['src/a.txt'], run: 'x', log: 'logs/a.log' },
  { outputs: ['data/derived/'], inputs: ['src/a.txt'], run: 'x' },
  { outputs: ['out/tree.txt'], inputs: ['data/'], run: 'x' },
  { outputs: ['out/csv.txt'], inputs: ['tables/**/*.csv'], run: 'x' },
  { outputs: ['out/top.txt'], inputs: ['runs/*/metrics.json'], run: 'x' },
  { outputs: ['out/all.txt'], inputs: ['out/a.txt', 'out/tree.txt'], run: 'x' },
  { outputs: ['out/other.txt'], inputs: ['src/other.txt'], run: 'x' },
  { name: 'default', deps: ['out/all.txt', 'out/csv.txt', 'out/top.txt'] },
];

function setup() {
  const root = tmp({ 'src/a.txt': 'a', 'src/other.txt': 'o', 'data/raw/1.bin': '1', 'tables/t.csv': 't', 'targets/index.ts': '', 'targets/rules.ts': '' });
  const graph = buildGraph(validateSpecs(SPECS, root), root);
  const { closure } = resolveGoals(graph, []);
  const plan = planWatch(root, graph, closure, [path.join(root, 'targets/index.ts'), path.join(root, 'targets/rules.ts')], ['params/*.yaml']);
  return { root, graph, closure, plan };
}

test('globReach: base directory and depth from the pattern', () => {
  assert.equal(globReach('data/*.csv'), { base: 'data', depth: 0 });
  assert.equal(globReach('runs/*/metrics.json'), { base: 'runs', depth: 1 });
  assert.equal(globReach('tables/**/*.csv'), { base: 'tables', depth: Infinity });
  assert.equal(globReach('*.json'), { base: '', depth: 0 });
});

test('classify: inputs map to their targets; outputs, logs, temp files and state never count', () => {
  const { plan } = setup();
  assert.equal(plan.classify('src/a.txt')?.targets.sort(), ['data/derived/', 'out/a.txt']);
  assert.equal(plan.classify('data/raw/2.bin'), { targets: ['out/tree.txt'], reload: false });
  assert.equal(plan.classify('tables/deep/er/x.csv'), { targets: ['out/csv.txt'], reload: false });
  assert.equal(plan.classify('runs/r7/metrics.json'), { targets: ['out/top.txt'], reload: false });
  assert.is(plan.classify('runs/r7/deeper/metrics.json'), undefined, 'beyond the glob');
  assert.is(plan.classify('tables/x.txt'), undefined);
  assert.is(plan.classify('src/other.txt'), undefined, 'not an input of the goals');
  assert.is(plan.classify('data/derived/x.bin'), undefined, 'inside a directory output');
  assert.is(plan.classify('out/a.txt'), undefined);
  assert.is(plan.classify('logs/a.log'), undefined);
  assert.is(plan.classify('out/a.txt.tmp-123-ab12cd'), undefined);
  assert.is(plan.classify('.hubmake/log.jsonl'), undefined);
  assert.is(plan.classify('data/node_modules/x'), undefined);
  assert.equal(plan.classify('targets/rules.ts'), { targets: [], reload: true });
  assert.equal(plan.classify('hub.config.json'), { targets: [], reload: true });
  assert.equal(plan.classify('params/lr.yaml'), { targets: [], reload: true });
  assert.is(plan.classify('other.json'), undefined);
});

test('plan: directory outputs, the state directory and node_modules are never entered', () => {
  const { root, plan } = setup();
  assert.ok(plan.skipDir(path.join(root, 'data/derived')));
  assert.ok(plan.skipDir(path.join(root, '.hubmake')));
  assert.ok(plan.skipDir(path.join(root, 'node_modules')));
  assert.not.ok(plan.skipDir(path.join(root, 'data/raw')));
  const roots = plan.roots.map((r) => [path.relative(root, r.dir), r.depth]);
  assert.ok(roots.some(([d, n]) => d === 'data' && n === Infinity));
  assert.ok(roots.some(([d, n]) => d === 'src' && n === 0));
  assert.ok(roots.some(([d, n]) => d === 'runs' && n === 1));
});

test('staleScope: dirty targets and what depends on them, plus failed dependencies upstream', () => {
  const { graph, closure } = setup();
  assert.equal([...staleScope(graph, closure, ['out/tree.txt'], new Set())].sort(), ['default', 'out/all.txt', 'out/tree.txt']);
  // A failed dependency is considered again, or out/all.txt would run on top of it.
  assert.equal([...staleScope(graph, closure, ['out/tree.txt'], new Set(['out/a.txt']))].sort(), ['default', 'out/a.txt', 'out/all.txt', 'out/tree.txt']);
  assert.equal([...staleScope(graph, closure, ['out/other.txt'], new Set())], [], 'outside the goals');
});

test('DirWatcher: one watch per directory within reach; new subdirectories followed; a missing root found when it appears', async () => {
  const root = tmp({ 'data/a/1.txt': '1', 'data/a/b/2.txt': '2', 'shallow/x/y/z.txt': 'z', 'skip/s.txt': 's' });
  for (let i = 0; i < 200; i++) fs.writeFileSync(path.join(root, 'data/a', `f${i}.txt`), String(i));
  const seen: string[] = [];
  const w = new DirWatcher(
    root,
    [{ dir: path.join(root, 'data'), depth: Infinity }, { dir: path.join(root, 'shallow'), depth: 1 }, { dir: path.join(root, 'later/results'), depth: 0 }],
    (d) => d.endsWith(`${path.sep}skip`),
    (p) => seen.push(path.relative(root, p)),
  );
  w.start();
  try {
    // root (on the way to later/), data, data/a, data/a/b, shallow, shallow/x: not 200 file watches.
    assert.is(w.count, 6);
    const settle = () => new Promise((r) => setTimeout(r, 300));
    fs.writeFileSync(path.join(root, 'data/a/b/2.txt'), 'changed');
    fs.writeFileSync(path.join(root, 'shallow/x/y/z.txt'), 'beyond depth');
    await settle();
    assert.ok(seen.includes('data/a/b/2.txt'));
    assert.not.ok(seen.some((p) => p.startsWith('shallow/x/y/')), 'beyond the depth limit');
    fs.mkdirSync(path.join(root, 'data/new/deeper'), { recursive: true });
    await settle();
    fs.writeFileSync(path.join(root, 'data/new/deeper/n.txt'), 'n');
    await settle();
    assert.ok(seen.includes('data/new/deeper/n.txt'), 'a file in a new subdirectory');
    fs.mkdirSync(path.join(root, 'later/results'), { recursive: true });
    await settle();
    fs.writeFileSync(path.join(root, 'later/results/r.json'), '{}');
    await settle();
    assert.ok(seen.includes('later/results/r.json'), 'a root that did not exist at the start');
    // A directory removed and made again (a dataset replaced wholesale) is watched again.
    const before = w.count;
    fs.rmSync(path.join(root, 'data/a'), { recursive: true });
    await settle();
    assert.is(w.count, before - 2, 'data/a and data/a/b let go');
    fs.mkdirSync(path.join(root, 'data/a'));
    await settle();
    seen.length = 0;
    fs.writeFileSync(path.join(root, 'data/a/again.txt'), 'x');
    await settle();
    assert.ok(seen.includes('data/a/again.txt'));
  } finally {
    w.close();
  }
});

test.run();
