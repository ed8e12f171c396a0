// The on-disk state format (engine/state-codec.ts): whatever is recorded loads back exactly (hex
// hashes, nulls in env, failures, batch jobs), after compaction too and with a torn last write; a
// log and a stat cache of format 1 (hubmake before issue 6) still load, so an upgrade rebuilds
// nothing, and the next build rewrites the log in format 2.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { StatEntry } from '../engine/hash.ts';
import { logRecords, StateStore, type FailRecord, type JobRecord, type SuccessRecord, type TargetHistory } from '../engine/state.ts';
import { cli, read, tempRoot, write } from './lib/cli.ts';
import { prng } from './lib/prng.ts';
import { asRecord, hashAt, pathHashes, sameAs } from '../engine/path-hashes.ts';

const SEEDS = (process.env.PROPERTY_SEEDS ?? '5,17,29,31,43,57').split(',').map(Number);

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-statefmt-'));
const logOf = (root: string) => path.join(root, '.hubmake/log.jsonl');
const snapshot = (s: StateStore): Record<string, TargetHistory> => structuredClone(Object.fromEntries(s.history));
function loaded(root: string): StateStore {
  const s = new StateStore(root);
  s.load();
  return s;
}

type Op = { k: 'start'; t: string; b: string } | SuccessRecord | FailRecord | JobRecord;

/** Random records of the shapes the builder, the cache and the Slurm executor write. */
function randomOps(seed: number, n: number): Op[] {
  const r = prng(seed);
  const hex = () => Array.from({ length: 64 }, () => '0123456789abcdef'[r.int(16)]).join('');
  const names = ['a', 'out/b.txt', 'ü/ñ "q"', 'new\nline', 'x'.repeat(120), 'sp ace', 'c', 'd/e/f', '=eq', '0'];
  const commands = ['cp a b', `action:${hex()}`, `action:${hex()}`, 'echo "quoted" \\ back', ''];
  const builds = ['20261128T225532.725Z-17669', '20261128T230000.001Z-2', 'b3'];
  const value = () => r.pick([hex, hex, hex, () => 'missing', () => 'no-match', () => hex().toUpperCase(), () => `=${hex().slice(0, 43)}`, () => hex().slice(0, 43)])();
  const map = (keys: string[]) => {
    const m: Record<string, string> = {};
    for (let i = r.int(4); i > 0; i--) m[r.pick(keys)] = value();
    return m;
  };
  const env = () => {
    const e: Record<string, string | null> = {};
    for (let i = r.int(3); i > 0; i--) e[r.pick(['HOME', 'CUDA_VISIBLE_DEVICES', 'X'])] = r.chance(0.4) ? null : r.pick(['', '/root', '0,1', 'ü']);
    return e;
  };
  const ops: Op[] = [];
  for (let i = 0; i < n; i++) {
    const t = r.pick(names);
    const b = r.pick(builds);
    const job = r.chance(0.2) ? { job: String(1000 + r.int(100)), node: r.pick(['gpu017', 'cn1']) } : {};
    const kind = r.int(10);
    if (kind < 3) ops.push({ k: 'start', t, b });
    else if (kind < 7) {
      const out = map([t, 'o1', 'o2/x']);
      const rec: SuccessRecord = { k: 'ok', t, cmd: r.pick(commands), params: r.pick(['', '{"k":1}', '{"s":"x\\"y"}']), env: env(), in: pathHashes(map(['src/a', 'src/b', 'glob:*.csv', t])), out: pathHashes(out), ms: r.int(100000), b, ...job };
      if (r.chance(0.1)) rec.degraded = true;
      ops.push(rec);
    } else if (kind < 9) ops.push({ k: 'fail', t, b, ms: r.int(5000), code: r.pick([null, 1, 2, 137]), err: r.pick(['', 'exit 1\nlast line', 'killed "x"']), cmd: r.pick(commands), ...job });
    else ops.push({ k: 'job', t, b, id: String(r.int(1e6)), fp: hex(), out: `.hubmake/slurm/${t}.out` });
  }
  return ops;
}

function apply(s: StateStore, op: Op): void {
  if (op.k === 'start') s.recordStart(op.t, op.b);
  else if (op.k === 'ok') s.recordSuccess(op);
  else if (op.k === 'fail') s.recordFailure(op);
  else s.recordJob(op);
}

for (const seed of SEEDS) {
  test(`seed ${seed}: random records load back as written, after each compaction and with the last write torn anywhere`, () => {
    const root = tmp();
    const r = prng(seed * 7 + 1);
    const ops = randomOps(seed, 400);
    let writer = loaded(root);
    // A torn line stays in the log (warned about on every load) until a compaction drops it.
    let torn = false;
    for (let i = 0; i < ops.length; i++) {
      const before = snapshot(writer);
      const size = fs.existsSync(logOf(root)) ? fs.statSync(logOf(root)).size : 0;
      apply(writer, ops[i]!);
      const after = snapshot(writer);
      if (r.chance(0.08)) {
        // A kill mid-write: the file ends anywhere in the last write before its record's last
        // character. That record is lost and nothing else; a later build appends after it.
        writer.close();
        const full = fs.statSync(logOf(root)).size;
        const cut = size + r.int(full - size - 1);
        fs.truncateSync(logOf(root), cut);
        torn ||= cut > size;
        writer = loaded(root);
        assert.equal(snapshot(writer), before, `seed ${seed} op ${i}: torn`);
        apply(writer, ops[i]!);
        assert.equal(snapshot(writer), after);
      }
      if (r.chance(0.05)) {
        writer.close();
        writer = loaded(root);
        if (!torn) assert.equal(writer.warnings, [], `seed ${seed} op ${i}`);
        assert.equal(snapshot(writer), after, `seed ${seed} op ${i}: reloaded`);
      }
      if (r.chance(0.03)) {
        writer.compact();
        torn = false;
      }
    }
    const want = snapshot(writer);
    writer.close();
    const fresh = loaded(root);
    assert.equal(snapshot(fresh), want);
    // Compaction writes one record per live entry in format 2 and drops the dead strings.
    const sizeBefore = fs.statSync(logOf(root)).size;
    fresh.compact();
    fresh.close();
    const lines = fs.readFileSync(logOf(root), 'utf8').split('\n').filter(Boolean);
    assert.equal(JSON.parse(lines[0]!), ['v', 2]);
    for (const l of lines) assert.ok(Array.isArray(JSON.parse(l)), l);
    assert.ok(fs.statSync(logOf(root)).size <= sizeBefore);
    const again = loaded(root);
    assert.equal(again.warnings, []);
    assert.equal(snapshot(again), want);
    // Records appended after a compaction (new strings, known ones) load too.
    for (const op of randomOps(seed + 1000, 50)) apply(again, op);
    const want2 = snapshot(again);
    again.close();
    assert.equal(snapshot(loaded(root)), want2);
    fs.rmSync(root, { recursive: true, force: true });
  });
}

test('a write that fails (a full disk) leaves no reference to an undefined string behind', () => {
  const root = tmp();
  const s = loaded(root);
  s.recordStart('a', 'build-1');
  s.close();
  // The next write fails as on a full disk (TS private is no barrier to a test double).
  const full = s as unknown as { open?: () => number };
  full.open = () => { throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' }); };
  const rec: SuccessRecord = { k: 'ok', t: 'a', cmd: 'a new command', params: '', env: { E: null }, in: [], out: ['a', 'f'.repeat(64)], ms: 1, b: 'build-2' };
  assert.throws(() => s.recordSuccess(rec), /cannot record to the build state .hubmake\/log.jsonl: ENOSPC/);
  // The disk has room again: the strings the failed write introduced are defined again.
  delete full.open;
  s.recordSuccess(rec);
  s.close();
  const back = loaded(root);
  assert.equal(back.warnings, []);
  assert.equal(back.history.get('a'), { ok: rec });
  fs.rmSync(root, { recursive: true, force: true });
});

test('a path named __proto__ is a key like any other, not a prototype', () => {
  const root = tmp();
  const s = loaded(root);
  const io = JSON.parse(`{"__proto__":"${'e'.repeat(64)}","x":"missing"}`) as Record<string, string>;
  const rec: SuccessRecord = { k: 'ok', t: '__proto__', cmd: 'c', params: '', env: {}, in: pathHashes(io), out: pathHashes(io), ms: 1, b: 'b' };
  s.recordSuccess(rec);
  s.close();
  const ok = loaded(root).history.get('__proto__')!.ok!;
  assert.equal(ok.in, ['__proto__', 'e'.repeat(64), 'x', 'missing']);
  // As a map, the path is a key: the map's prototype stays Object.prototype.
  const m = asRecord(ok.in);
  assert.equal(Object.keys(m), ['__proto__', 'x']);
  assert.is(m['__proto__'], 'e'.repeat(64));
  assert.is(Object.getPrototypeOf(m), Object.prototype);
  assert.ok(sameAs(ok.in, io));
  fs.rmSync(root, { recursive: true, force: true });
});

test('logRecords lists every record in the order written, superseded ones too (the Slurm tests read job records so)', () => {
  const root = tmp();
  const s = loaded(root);
  const job: JobRecord = { k: 'job', t: 'train', b: 'b1', id: '4711', fp: 'f'.repeat(64), out: '.hubmake/slurm/train-4711.out' };
  const ok: SuccessRecord = { k: 'ok', t: 'train', cmd: 'python train.py', params: '', env: {}, in: [], out: ['model.pt', 'a'.repeat(64)], ms: 5, b: 'b1', job: '4711', node: 'gpu017' };
  s.recordStart('train', 'b1');
  s.recordJob(job);
  s.recordSuccess(ok);
  s.close();
  assert.equal(logRecords(root), [{ k: 'start', t: 'train', b: 'b1' }, job, ok]);
  assert.equal(loaded(root).history.get('train'), { ok });
  fs.rmSync(root, { recursive: true, force: true });
});

// ---- the stat cache ----

const NOW = '1795906531871698021';
const sorted = (m: Map<string, StatEntry>) => [...m].sort((a, b) => (a[0] < b[0] ? -1 : 1));
function statCases(): Map<string, StatEntry> {
  const h = (c: string) => c.repeat(64);
  return new Map<string, StatEntry>([
    ['src/s0.txt', [65024, 4259899, 7, NOW, NOW, h('a'), 1]],
    ['src/touched', [65024, 12, 0, NOW, '1795906999000000000', h('b'), 1]],
    ['ctime before mtime', [65024, 13, 5, NOW, '1795906531000000001', h('c'), 0]],
    ['ctime a year later', [65024, 14, 5, NOW, '1827442531871698021', h('d'), 1]],
    ['mtime a year older', [65024, 15, 5, '1764370531999999999', '1764370531999999999', h('e'), 1]],
    ['near a whole second', [65024, 16, 5, '1795906531999999999', '1795906532000000000', h('f'), 1]],
    ['pre-1970', [65024, 17, 5, '-1500000000', '5', h('0'), 1]],
    ['first second', [65024, 18, 5, '999999999', '1000000000', h('1'), 1]],
    ['other device', [2049, 19, 1 << 40, '1000000000', '1000000000', h('2'), 1]],
    ['not a hex hash', [2049, 2 ** 52, 3, NOW, NOW, 'missing', 0]],
    ['upper-case hex', [7, 20, 3, NOW, NOW, h('A'), 1]],
    ['ü/ñ "q"\nx', [7, 21, 3, '1795906531000000000', '1795906531000000000', h('9'), 0]],
  ]);
}

test('the stat cache saves and loads back exactly: timestamps to the nanosecond, devices, odd hashes', () => {
  const root = tmp();
  const s = new StateStore(root);
  const want = statCases();
  s.saveStatCache(want);
  assert.equal(sorted(new StateStore(root).loadStatCache()), sorted(want));
  // Smaller than format 1 (the same entries as one JSON object with hex hashes).
  assert.ok(fs.statSync(path.join(root, '.hubmake/stat.json')).size < JSON.stringify(Object.fromEntries(want)).length * 0.75);
  fs.rmSync(root, { recursive: true, force: true });
});

test('random stat entries round-trip (timestamps over the whole range, ctime anywhere around mtime)', () => {
  const root = tmp();
  const r = prng(99);
  const want = new Map<string, StatEntry>();
  // Mostly a recent week, some from any time since 1970; ctime equal, just after, or anywhere.
  const ns = () => ((r.chance(0.8) ? 1795906531n - BigInt(r.int(7 * 86400)) : BigInt(1 + r.int(2 ** 31))) * 1_000_000_000n + BigInt(r.int(1e9))).toString();
  for (let i = 0; i < 3000; i++) {
    const mt = ns();
    const ct = r.chance(0.5) ? mt : r.chance(0.5) ? (BigInt(mt) + BigInt(r.int(2 ** 30)) * BigInt(1 + r.int(1e7))).toString() : ns();
    want.set(`f${i}`, [r.pick([1, 2, 65024]), r.int(2 ** 40), r.int(2 ** 45), mt, ct, Buffer.from(String(i)).toString('hex').padEnd(64, '0'), r.pick([0, 1] as const)]);
  }
  new StateStore(root).saveStatCache(want);
  assert.equal(sorted(new StateStore(root).loadStatCache()), sorted(want));
  fs.rmSync(root, { recursive: true, force: true });
});

test('a damaged stat cache of format 2 only means re-hashing: no throw, bad entries left out', () => {
  const root = tmp();
  const s = new StateStore(root);
  s.saveStatCache(statCases());
  const file = path.join(root, '.hubmake/stat.json');
  const text = fs.readFileSync(file, 'utf8');
  fs.writeFileSync(file, text.slice(0, text.length / 2));
  assert.equal(s.loadStatCache().size, 0);
  const A = 'A'.repeat(43);
  fs.writeFileSync(file, JSON.stringify({ v: 2, g: [5, [1, 2, ['a', 1, 2, 3, 4, 0, 'short', 1, 'b', 1, 2, 0, 0, 0, A, 7, 'b2', 1, 2, 0, 1e9, 0, A, 1, 'b3', 1, 2, -5, 0, 0, A, 1, 'c', 1, 2, 0, 7, 0, A, 1, 'tail', 1]], [1, 'x', []]] }));
  assert.equal([...s.loadStatCache()], [['c', [1, 1, 2, '2000000007', '2000000007', '0'.repeat(64), 1]]]);
  fs.writeFileSync(file, JSON.stringify({ v: 2, g: 'x' }));
  assert.equal(s.loadStatCache().size, 0);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a stat cache of format 1 loads as it was (an upgrade does not re-hash every file)', () => {
  const root = tmp();
  const want = statCases();
  fs.mkdirSync(path.join(root, '.hubmake'));
  fs.writeFileSync(path.join(root, '.hubmake/stat.json'), JSON.stringify({ ...Object.fromEntries(want), 'wrong shape': [1, 2, 3], 'null': null }));
  assert.equal(sorted(new StateStore(root).loadStatCache()), sorted(want));
  fs.rmSync(root, { recursive: true, force: true });
});

// ---- an upgrade from format 1, end to end ----

/** What hubmake wrote before format 2 (produced by the CLI at f73705c) for the module below. */
const V1_LOG = [
  '{"k":"v","v":1}',
  '{"k":"ok","t":"a.txt","cmd":"cp src.txt a.txt","params":"","env":{},"in":{"src.txt":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},"out":{"a.txt":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"},"ms":130,"b":"20261128T230050.849Z-1676"}',
  '{"k":"ok","t":"b","cmd":"mkdir -p out && cat a.txt a.txt > out/b.txt && echo 2 > out/b2.txt","params":"{\\"k\\":1,\\"s\\":\\"x\\\\\\"y\\"}","env":{"HUBMAKE_FIXTURE_UNSET":null},"in":{"a.txt":"5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03","glob:data/*.csv":"no-match"},"out":{"out/b.txt":"cba5243834a58801d5f3460c1d21fe28c33b1e1c1bb8ce7513e1948eed3a19e4","out/b2.txt":"53c234e5e8472b6ac51c1ae1cab3fe06fad053beb8ebfd8977b010655bfdd3c3"},"ms":6,"b":"20261128T230050.849Z-1676"}',
  '{"k":"fail","t":"removed-since","b":"20261128T230050.849Z-1676","ms":12,"code":3,"err":"exit 3","cmd":"exit 3","job":"4711","node":"gpu017"}',
].join('\n') + '\n';
const V1_MODULE = `export default [
  { outputs: ['a.txt'], inputs: ['src.txt'], run: 'cp src.txt a.txt' },
  { name: 'b', outputs: ['out/b.txt', 'out/b2.txt'], inputs: ['a.txt', 'data/*.csv'], params: { k: 1, s: 'x"y' }, env: ['HUBMAKE_FIXTURE_UNSET'], run: 'mkdir -p out && cat a.txt a.txt > out/b.txt && echo 2 > out/b2.txt' },
];
`;

test('a log of format 1 (an upgrade): nothing is rebuilt, --explain reads it, and the build rewrites it in format 2', () => {
  const root = tempRoot('hubmake-v1-');
  write(root, 't.ts', V1_MODULE);
  write(root, 'src.txt', 'hello\n');
  write(root, 'a.txt', 'hello\n');
  write(root, 'out/b.txt', 'hello\nhello\n');
  write(root, 'out/b2.txt', '2\n');
  write(root, '.hubmake/log.jsonl', V1_LOG);
  const before = loaded(root);
  const explain = cli(root, ['-f', 't.ts', '--explain', 'b']);
  assert.is(explain.code, 0, explain.stderr);
  assert.match(explain.stdout, /up to date/);
  const r = cli(root, ['-f', 't.ts', '--json', '--no-cache']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.events.filter((e) => e.type === 'start'), []);
  assert.equal(r.events.filter((e) => e.type === 'warning'), []);
  const lines = read(root, '.hubmake/log.jsonl').split('\n').filter(Boolean);
  assert.equal(JSON.parse(lines[0]!), ['v', 2]);
  for (const l of lines) assert.ok(Array.isArray(JSON.parse(l)), l);
  // Every record as it was, the failure of a target no longer declared included.
  assert.equal(snapshot(loaded(root)), snapshot(before));
  assert.ok(read(root, '.hubmake/log.jsonl').length < V1_LOG.length);
  const again = cli(root, ['-f', 't.ts', '--no-cache']);
  assert.match(again.stdout, /nothing to do/);
  assert.not.match(again.stderr, /warning/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('format 2 lines appended to a log of format 1 (a build of the new version killed before compacting) load with it', () => {
  const root = tmp();
  write(root, '.hubmake/log.jsonl', V1_LOG.trimEnd());
  const s = loaded(root);
  s.recordStart('b', 'killed-build');
  s.close();
  const back = loaded(root);
  assert.equal(back.warnings, []);
  assert.is(back.history.get('b')?.unfinished?.b, 'killed-build');
  assert.is(hashAt(back.history.get('b')!.ok!.out, 'out/b2.txt'), '53c234e5e8472b6ac51c1ae1cab3fe06fad053beb8ebfd8977b010655bfdd3c3');
  assert.is(back.history.get('a.txt')?.ok?.env && Object.keys(back.history.get('a.txt')!.ok!.env).length, 0);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a log whose every command is its own string is not rewritten by a no-op; one full of dead strings is compacted', () => {
  const root = tempRoot('hubmake-compact-');
  // 300 targets, each with its own command text (as a Makefile-like graph has): ~one string
  // definition per record, all of them live.
  write(root, 'targets/index.ts', `const v = process.env.V ?? '0';
export default Array.from({ length: 300 }, (_, i) => ({ outputs: [\`out/f\${i}\`], run: \`mkdir -p out && echo \${i} \${v} > out/f\${i}\` }));
`);
  const log = path.join(root, '.hubmake/log.jsonl');
  assert.is(cli(root, []).code, 0);
  assert.is(cli(root, []).code, 0); // may compact the start lines of the first build away
  const before = fs.statSync(log);
  const r = cli(root, []);
  assert.match(r.stdout, /nothing to do/);
  const after = fs.statSync(log);
  assert.is(after.ino, before.ino, 'a no-op does not rewrite the log');
  assert.is(after.size, before.size);
  // Every command changes three times: 900 dead command strings pile up, then compaction drops them.
  for (const v of ['1', '2', '3']) assert.is(cli(root, [], { V: v }).code, 0);
  const lines = fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
  assert.ok(lines < 2 * 300 + 50, `compacted to about a definition and a record per target (${lines} lines)`);
  assert.match(cli(root, [], { V: '3' }).stdout, /nothing to do/);
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
