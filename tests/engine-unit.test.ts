// Unit tests of the engine's pure parts: canonical params, the rebuilder, spec validation, graph.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { canonicalJson, flattenJson } from '../engine/canonical.ts';
import { decide, describeReason } from '../engine/decide.ts';
import { DeclarationError } from '../engine/errors.ts';
import { buildGraph, closest, resolveGoals } from '../engine/graph.ts';
import { validateSpecs } from '../engine/spec.ts';
import { CHUNK, hashFileBytes, READ_AHEAD_BYTES } from '../engine/hash.ts';
import { Disk, isNormalRel } from '../engine/disk.ts';
import { withMetrics } from '../engine/report/metrics.ts';
import type { BuildEvent } from '../engine/events.ts';
import type { FingerprintParts } from '../engine/fingerprint.ts';
import type { SuccessRecord } from '../engine/state.ts';
import { prng } from './lib/prng.ts';
import { asRecord, hashAt, pathHashes, sameAs, samePairs, unique } from '../engine/path-hashes.ts';

const root = os.tmpdir();

test('canonicalJson: key order does not matter; unserialisable values are refused with their path', () => {
  assert.is(canonicalJson({ b: 1, a: [true, null, 'x'] }), canonicalJson({ a: [true, null, 'x'], b: 1 }));
  assert.is(canonicalJson({ b: 1, a: { d: 1, c: 2 } }), '{"a":{"c":2,"d":1},"b":1}');
  const cyc: Record<string, unknown> = {};
  cyc.self = cyc;
  assert.throws(() => canonicalJson(cyc), /params\.self refers back to itself/);
  assert.throws(() => canonicalJson({ n: 1n }), /params\.n is a BigInt/);
  assert.throws(() => canonicalJson({ f: () => 1 }), /params\.f is a function/);
  assert.throws(() => canonicalJson({ x: NaN }), /params\.x is NaN/);
  assert.throws(() => canonicalJson({ d: new Date(0) }), /params\.d is a Date object/);
  assert.equal([...flattenJson({ a: { b: [1, 2] } })], [['a.b[0]', '1'], ['a.b[1]', '2']]);
});

const parts = ({ inputs, ...over }: Partial<Omit<FingerprintParts, 'inputs'>> & { inputs?: Record<string, string> } = {}): FingerprintParts => ({ command: 'cc', params: '{"a":1}', env: { E: 'x' }, inputs: pathHashes(inputs ?? { 'a.c': 'h1' }), ...over });
const rec = (p: FingerprintParts, out: Record<string, string> = { 'a.o': 'o1' }): SuccessRecord => ({ k: 'ok', t: 'a.o', cmd: p.command, params: p.params, env: p.env, in: p.inputs, out: pathHashes(out), ms: 5, b: 'B1' });

test('decide: fresh when nothing changed; every kind of change is a named reason', () => {
  const base = { policy: 'stale' as const, forced: false, failedDeps: [] as string[] };
  assert.equal(decide({ ...base, history: { ok: rec(parts()) }, now: parts(), outputs: pathHashes({ 'a.o': 'o1' }) }), { action: 'fresh' });
  const d = decide({ ...base, history: { ok: rec(parts()) }, now: parts({ command: 'cc -O2', params: '{"a":2}', env: { E: 'y' }, inputs: { 'a.c': 'h2', 'b.c': 'h3' } }), outputs: pathHashes({ 'a.o': 'o9' }) });
  assert.is(d.action, 'run');
  const kinds = d.action === 'run' ? d.reasons.map((r) => r.kind) : [];
  assert.equal(kinds.sort(), ['command-changed', 'env-changed', 'input-changed', 'input-changed', 'output-modified', 'params-changed']);
  const text = d.action === 'run' ? d.reasons.map(describeReason).join('\n') : '';
  assert.match(text, /params key a changed: 1 -> 2/);
  assert.match(text, /input b\.c is new/);
  assert.match(text, /env E changed: "x" -> "y"/);
  assert.equal(decide({ ...base, history: undefined, now: parts(), outputs: pathHashes({ 'a.o': 'missing' }) }), { action: 'run', reasons: [{ kind: 'never-built' }, { kind: 'output-missing', path: 'a.o' }] });
  const unfinished = decide({ ...base, history: { ok: rec(parts()), unfinished: { k: 'start', t: 'a.o', b: 'B2' } }, now: parts(), outputs: pathHashes({ 'a.o': 'o1' }) });
  assert.equal(unfinished, { action: 'run', reasons: [{ kind: 'unfinished', build: 'B2' }] });
  assert.equal(decide({ ...base, forced: true, history: { ok: rec(parts()) }, now: parts(), outputs: pathHashes({ 'a.o': 'o1' }) }).action, 'run');
});

test('decide, property: fresh exactly when the last run succeeded whole and every output and part is as it recorded', () => {
  // decide() answers the usual case in place, before gathering reasons: both ways must agree
  // with this statement of what fresh means, over small domains where equal values are common.
  const r = prng(7);
  const map = (keys: string[], values: Array<string | null>) => {
    const m: Record<string, string | null> = {};
    for (const k of keys) if (r.chance(0.7)) m[k] = r.pick(values);
    return m;
  };
  const same = (a: Record<string, unknown>, b: Record<string, unknown>) => Object.keys(a).length === Object.keys(b).length && Object.keys(a).every((k) => k in b && a[k] === b[k]);
  let fresh = 0;
  for (let i = 0; i < 5000; i++) {
    const nowIn = map(['a.c', 'b.c', 'c.c'], ['h1', 'h2']) as Record<string, string>;
    const now = parts({ command: r.pick(['cc', 'cc -O2']), params: r.pick(['', '{"a":1}']), env: map(['E', 'F'], ['x', null]), inputs: nowIn });
    // The same inputs as recorded, in the order of now or another one (a spec reordered).
    const sameIn = () => (r.chance(0.5) ? { ...nowIn } : Object.fromEntries(Object.entries(nowIn).reverse()));
    const old = r.chance(0.8) ? parts({ command: r.chance(0.9) ? now.command : 'cc -g', params: r.chance(0.9) ? now.params : '{"a":2}', env: r.chance(0.8) ? { ...now.env } : map(['E', 'F'], ['x', null]), inputs: r.chance(0.7) ? sameIn() : (map(['a.c', 'b.c', 'c.c'], ['h1', 'h2']) as Record<string, string>) }) : undefined;
    const outputs = map(['a.o', 'b.o'], ['o1', 'missing']) as Record<string, string>;
    const recorded = r.chance(0.8) ? { ...outputs } : (map(['a.o', 'b.o'], ['o1', 'o2']) as Record<string, string>);
    const ok = old && rec(old, recorded);
    if (ok && r.chance(0.1)) ok.degraded = true;
    const history = ok || r.chance(0.3) ? { ...(ok ? { ok } : {}), ...(r.chance(0.1) ? { unfinished: { k: 'start' as const, t: 'a.o', b: 'B2' } } : {}), ...(r.chance(0.1) ? { fail: { k: 'fail' as const, t: 'a.o', b: 'B3', ms: 1, code: 1, err: 'e', cmd: 'cc' } } : {}) } : undefined;
    const d = { policy: 'stale' as const, forced: r.chance(0.05), history, now, outputs: pathHashes(outputs), failedDeps: r.chance(0.05) ? ['x'] : [] };
    const want = !d.forced && !d.failedDeps.length && !!ok && !history!.unfinished && !history!.fail && !ok.degraded
      && Object.keys(outputs).every((p) => outputs[p] !== 'missing' && asRecord(ok.out)[p] === outputs[p])
      && ok.cmd === now.command && ok.params === now.params && same(ok.env, now.env) && same(asRecord(ok.in), nowIn);
    const got = decide(d);
    assert.is(got.action, want ? 'fresh' : 'run', `case ${i}: ${JSON.stringify(d)}`);
    if (got.action === 'run') assert.ok(got.reasons.length > 0, `case ${i}: a run gives its reasons`);
    if (want) fresh++;
  }
  assert.ok(fresh > 300, `enough fresh cases to mean something: ${fresh}`);
});

test('path-hashes, property: a flat list is the same as a map exactly when it makes that map (the last hash of a path listed twice)', () => {
  // Short lists are compared in place, long ones through a Map: both ways, with repeated paths
  // (a hand-edited log may hold some), as an object built from the list in order would compare.
  const r = prng(11);
  let same = 0;
  for (let i = 0; i < 4000; i++) {
    const n = r.chance(0.5) ? r.int(5) : 5 + r.int(20);
    const keys = Array.from({ length: n + 3 }, (_, j) => `p${j}`);
    const m: Record<string, string> = {};
    for (const k of keys) if (r.chance(0.8)) m[k] = r.pick(['h1', 'h2']);
    const list = pathHashes(m);
    if (r.chance(0.3)) list.push(r.pick(keys), r.pick(['h1', 'h2'])); // a path listed twice, or one more
    if (r.chance(0.2) && list.length) list.splice(2 * r.int(list.length / 2), 2); // one fewer
    if (r.chance(0.2) && list.length) list[2 * r.int(list.length / 2) + 1] = 'h3';
    const paths = list.filter((_, j) => j % 2 === 0);
    const made = new Map<string, string>();
    paths.forEach((p, j) => made.set(p, list[2 * j + 1]!));
    const want = made.size === Object.keys(m).length && [...made].every(([p, h]) => m[p] === h);
    assert.is(sameAs(list, m), want, `case ${i}: ${JSON.stringify(list)} vs ${JSON.stringify(m)}`);
    // The same, list against list, in the map's order or another one.
    const other = pathHashes(Object.fromEntries(r.chance(0.5) ? Object.entries(m) : Object.entries(m).reverse()));
    assert.is(samePairs(list, other), want, `case ${i}: ${JSON.stringify(list)} vs ${JSON.stringify(other)}`);
    assert.is(samePairs(other, list), want, `case ${i}: ${JSON.stringify(other)} vs ${JSON.stringify(list)}`);
    // Each path once, where it first appears, with its last hash.
    const u = unique(list);
    assert.equal(u.filter((_, j) => j % 2 === 0), [...new Set(paths)], `case ${i}: unique ${JSON.stringify(list)}`);
    assert.equal(asRecord(u), asRecord(list));
    if (want) same++;
    // As a map, the last of a path's hashes counts, as hashAt reads it.
    const back = asRecord(list);
    for (const p of paths) assert.is(hashAt(list, p), back[p]);
  }
  assert.ok(same > 1000 && same < 3500, `both answers are common: ${same}`);
});

test("decide: rebuild 'missing' keeps existing outputs whatever changed, runs only when one is absent", () => {
  const base = { policy: 'missing' as const, forced: false, failedDeps: [] as string[] };
  const kept = decide({ ...base, history: { ok: rec(parts()) }, now: parts({ inputs: { 'a.c': 'h9' } }), outputs: pathHashes({ 'a.o': 'o1' }) });
  assert.is(kept.action, 'keep');
  assert.equal(decide({ ...base, history: { ok: rec(parts()) }, now: parts(), outputs: pathHashes({ 'a.o': 'o1' }) }), { action: 'fresh' });
  assert.is(decide({ ...base, history: { ok: rec(parts()) }, now: parts(), outputs: pathHashes({ 'a.o': 'missing' }) }).action, 'run');
  assert.is(decide({ ...base, history: undefined, now: parts(), outputs: pathHashes({ 'a.o': 'o1' }) }).action, 'keep');
});

test('validateSpecs: collects every problem with target and field', () => {
  try {
    validateSpecs([{ outputs: ['x'], run: 'a', rebuild: 'sometimes' }, { outputs: 'y', run: 'b' }, 5], root);
    assert.unreachable();
  } catch (e) {
    assert.instance(e, DeclarationError);
    const ds = (e as DeclarationError).diagnostics;
    assert.ok(ds.some((d) => d.target === 'x' && d.field === 'rebuild'));
    assert.ok(ds.some((d) => d.field === 'outputs' && /array of strings/.test(d.message)));
    assert.ok(ds.some((d) => d.target === '#2'));
  }
});

test('graph: dependency edges from files, dirs, globs and deps; cycle path; goals and closure', () => {
  const specs = validateSpecs([
    { outputs: ['gen/'], run: 'g' },
    { outputs: ['a.txt'], inputs: ['gen/x.bin'], run: 'a' },
    { outputs: ['b.txt'], inputs: ['*.txt'], run: 'b' },
    { name: 'c', outputs: ['c.out'], deps: ['b.txt'], run: 'c' },
    { name: 'default', deps: ['c'] },
  ], root);
  const g = buildGraph(specs, root);
  assert.equal(g.depsOf.get('a.txt'), ['gen/']);
  assert.equal(g.depsOf.get('b.txt'), ['a.txt']);
  assert.equal(g.depsOf.get('c'), ['b.txt']);
  assert.equal([...resolveGoals(g, []).closure].sort(), ['a.txt', 'b.txt', 'c', 'default', 'gen/']);
  assert.equal([...resolveGoals(g, ['a.txt']).closure].sort(), ['a.txt', 'gen/']);
  assert.throws(() => buildGraph(validateSpecs([
    { outputs: ['p'], inputs: ['r'], run: 'x' }, { outputs: ['q'], inputs: ['p'], run: 'x' }, { outputs: ['r'], inputs: ['q'], run: 'x' },
  ], root), root), /dependency cycle: (p -> r -> q -> p|r -> q -> p -> r|q -> p -> r -> q)/);
  assert.throws(() => buildGraph(validateSpecs([{ outputs: ['d/'], run: 'x' }, { outputs: ['d/f'], run: 'y' }], root), root), /lies inside directory output 'd\/'/);
});

test('hashFileBytes: big files read by the worker thread hash as the bytes do; errors are the main thread\'s own', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-hash-big-'));
  const f = path.join(dir, 'x.bin');
  const M = READ_AHEAD_BYTES;
  const fifo = path.join(dir, 'fifo');
  spawnSync('mkfifo', [fifo]);
  const codeOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (e) {
      return `${(e as NodeJS.ErrnoException).code} ${(e as Error).message}`;
    }
    return 'no error';
  };
  // 'on': handed to the thread after the first read; unset: after the first 8 MiB when reading
  // proves slow (here the page cache holds the file: mostly not); 'off': never.
  for (const mode of ['on', 'off', undefined]) {
    if (mode === undefined) delete process.env.HUBMAKE_READ_AHEAD;
    else process.env.HUBMAKE_READ_AHEAD = mode;
    for (const size of [M, M + 1, M + CHUNK * 9 + 5]) {
      const bytes = crypto.randomBytes(size);
      fs.writeFileSync(f, bytes);
      const want = crypto.createHash('sha256').update(bytes).digest('hex');
      assert.is(hashFileBytes(f, size, true), want, `${mode}: size ${size}`);
      // A file that grew since its stat is hashed to its end, whoever reads the end.
      fs.appendFileSync(f, 'more');
      assert.is(hashFileBytes(f, size, true), crypto.createHash('sha256').update(bytes).update('more').digest('hex'), `${mode}: grown`);
    }
    // A FIFO and a missing file fail as the main thread's own open does (the code kept), and
    // the thread serves the next file.
    assert.match(codeOf(() => hashFileBytes(fifo, M)), /is not a regular file/, String(mode));
    assert.match(codeOf(() => hashFileBytes(path.join(dir, 'missing'), M)), /^ENOENT ENOENT: no such file or directory, open '[^']*missing'$/, String(mode));
    const bytes = crypto.randomBytes(M + 3);
    fs.writeFileSync(f, bytes);
    assert.is(hashFileBytes(f, M + 3), crypto.createHash('sha256').update(bytes).digest('hex'), String(mode));
  }
  delete process.env.HUBMAKE_READ_AHEAD;
  fs.rmSync(dir, { recursive: true, force: true });
});

test('hashFileBytes: equals sha256 of the bytes at every size around its read size (one-shot and streaming paths)', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-hash-'));
  const f = path.join(dir, 'x.bin');
  const M = CHUNK;
  for (const size of [0, 1, 4095, M - 1, M, M + 1, 2 * M, 2 * M + 7, 37 * M + 5]) {
    const bytes = crypto.randomBytes(size);
    fs.writeFileSync(f, bytes);
    const want = crypto.createHash('sha256').update(bytes).digest('hex');
    assert.is(hashFileBytes(f, size), want, `size ${size}`);
    assert.is(hashFileBytes(f, size, true), want, `size ${size}, stat known`);
  }
  fs.rmSync(dir, { recursive: true, force: true });
});

test('validateSpecs: a symlinked output among hundreds in one directory (answered from a listing) is still refused', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-links-'));
  fs.mkdirSync(path.join(dir, 'out'));
  for (let i = 0; i < 300; i++) fs.writeFileSync(path.join(dir, 'out', `f${i}`), '');
  fs.rmSync(path.join(dir, 'out', 'f250'));
  fs.symlinkSync('/etc/hostname', path.join(dir, 'out', 'f250'));
  const specs = Array.from({ length: 300 }, (_, i) => ({ outputs: [`out/f${i}`], run: 'true' }));
  try {
    validateSpecs(specs, dir);
    assert.unreachable('the symlinked output must be refused');
  } catch (e) {
    if (!(e instanceof DeclarationError)) throw e;
    assert.equal(e.diagnostics.map((d) => d.target), ['out/f250']);
    assert.match(e.diagnostics[0]!.message, /resolves outside the root through a symlink/);
  }
  fs.rmSync(path.join(dir, 'out', 'f250'));
  assert.is(validateSpecs(specs, dir).length, 300);
  fs.rmSync(dir, { recursive: true, force: true });
});

test('metrics logger: busy time is the union of overlapping command runs; events pass through', () => {
  let t = 0;
  const seen: string[] = [];
  const lines: string[] = [];
  const emit = withMetrics((e) => seen.push(e.type), (l) => lines.push(l), () => t);
  const at = (ms: number, e: Record<string, unknown>) => { t = ms; emit(e as unknown as BuildEvent); };
  at(0, { type: 'start', target: 'a', command: 'x' });
  at(50, { type: 'start', target: 'b', command: 'x' });
  at(100, { type: 'finish', target: 'a', status: 'built', durationMs: 100 });
  at(150, { type: 'finish', target: 'b', status: 'built', durationMs: 100 });
  at(400, { type: 'start', target: 'c', command: 'x' });
  at(420, { type: 'finish', target: 'c', status: 'built', durationMs: 20 });
  at(500, { type: 'build-end' });
  assert.equal(lines.join(''), 'hubmake-commands-busy-ms: 170.0\nhubmake-commands-ran: 3\nhubmake-decided-by: per-target rebuilder\n');
  assert.is(seen.length, 7);
  lines.length = 0;
  at(600, { type: 'build-end', settled: true });
  assert.match(lines.join(''), /^hubmake-decided-by: settled stamp$/m);
});

test('Disk.abs: joining a normal path by hand gives what path.join gives, and odd paths still go through path.join', () => {
  const paths = ['a', 'out/c0_1', 'a.b/c..d', 'a/..b', '..', '../x', 'a/../b', './a', 'a/./b', 'a/.', 'a//b', 'a/', '/abs', '', '.', 'x y/z', 'ä/ö', '.hidden/.x', 'a/.../b'];
  for (const root of ['/tmp/root', '/', '/tmp/root/']) {
    const disk = new Disk(path.resolve(root));
    for (const p of paths) assert.is(disk.abs(p), path.join(path.resolve(root), p), `${root} + ${JSON.stringify(p)}`);
  }
  assert.ok(isNormalRel('out/c0_1'));
  assert.not.ok(isNormalRel('a/../b'));
});

test('closest: suggests near names', () => {
  assert.match(closest('baselin', ['baseline', 'dense', 'hub']) ?? '', /'baseline'/);
  assert.is(closest('zzzzzzzzzz', ['a']), undefined);
});

test.run();
