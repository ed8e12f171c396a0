// End-to-end tests of the engine through the real command line, in temporary roots.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StateStore } from '../engine/state.ts';
import { cli, cliAsync, read, snapshot, started, tempRoot, write } from './lib/cli.ts';

const CHAIN = `
export default [
  { outputs: ['out/upper.txt'], inputs: ['src/a.txt'], run: 'mkdir -p out && tr a-z A-Z < src/a.txt > out/upper.txt' },
  { outputs: ['out/count.txt'], inputs: ['out/upper.txt'], run: 'wc -l < out/upper.txt | tr -d " " > out/count.txt', log: 'logs/count.log' },
  { outputs: ['out/final.txt'], inputs: ['out/count.txt'], run: 'echo "lines: $(cat out/count.txt)" > out/final.txt' },
  { name: 'default', deps: ['out/final.txt'], description: 'everything' },
];
`;

function chainRoot(): string {
  const root = tempRoot();
  write(root, 'targets/index.ts', CHAIN);
  write(root, 'src/a.txt', 'one\ntwo\n');
  return root;
}

test('clean build runs everything, second build runs nothing', () => {
  const root = chainRoot();
  const r1 = cli(root, ['--json']);
  assert.is(r1.code, 0, r1.stderr);
  assert.equal(started(r1), ['out/count.txt', 'out/final.txt', 'out/upper.txt']);
  assert.is(read(root, 'out/final.txt'), 'lines: 2\n');
  const r2 = cli(root, ['--json']);
  assert.is(r2.code, 0);
  assert.equal(started(r2), []);
  const plain = cli(root, []);
  assert.match(plain.stdout, /nothing to do/);
});

test('a touch (same bytes, new mtime) never reruns', () => {
  const root = chainRoot();
  cli(root, []);
  const future = new Date(Date.now() + 60_000);
  fs.utimesSync(path.join(root, 'src/a.txt'), future, future);
  const r = cli(root, ['--json']);
  assert.equal(started(r), []);
});

test('early cutoff: a dependency rebuilt to identical bytes stops the cascade', () => {
  const root = chainRoot();
  cli(root, []);
  write(root, 'src/a.txt', 'three\nfour\n'); // same line count
  const r = cli(root, ['--json', '--explain']);
  assert.is(r.code, 0);
  assert.equal(started(r), ['out/count.txt', 'out/upper.txt']);
  write(root, 'src/a.txt', 'x\ny\nz\n');
  const r2 = cli(root, ['--json']);
  assert.equal(started(r2), ['out/count.txt', 'out/final.txt', 'out/upper.txt']);
  assert.is(read(root, 'out/final.txt'), 'lines: 3\n');
});

test('--explain names the input with old and new hash, and hand-edited outputs', () => {
  const root = chainRoot();
  cli(root, []);
  write(root, 'src/a.txt', 'changed\n');
  const r = cli(root, ['--explain']);
  assert.match(r.stdout, /explain out\/upper\.txt: runs because\n\s+input src\/a\.txt changed: [0-9a-f]{12} -> [0-9a-f]{12}/);
  write(root, 'out/count.txt', '999\n');
  const r2 = cli(root, ['--explain']);
  assert.match(r2.stdout, /output out\/count\.txt was modified since it was built \(recorded [0-9a-f]{12}, now [0-9a-f]{12}\)/);
  assert.is(read(root, 'out/count.txt'), '1\n');
  fs.rmSync(path.join(root, 'out/final.txt'));
  const r3 = cli(root, ['--explain']);
  assert.match(r3.stdout, /output out\/final\.txt is missing/);
});

test('params: key order does not matter; a changed key is named with old and new value', () => {
  const root = tempRoot();
  const mod = (p: string) => `export default [{ outputs: ['o.txt'], params: ${p}, run: 'echo hi > o.txt' }];`;
  write(root, 'targets/index.ts', mod(`{ a: 1, b: { c: [1, 2] } }`));
  assert.is(cli(root, []).code, 0);
  write(root, 'targets/index.ts', mod(`{ b: { c: [1, 2] }, a: 1 }`));
  assert.equal(started(cli(root, ['--json'])), []);
  write(root, 'targets/index.ts', mod(`{ b: { c: [1, 3] }, a: 1 }`));
  const r = cli(root, ['--explain']);
  assert.match(r.stdout, /params key b\.c\[1\] changed: 2 -> 3/);
});

test('env: a declared variable is part of the fingerprint', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [{ outputs: ['o.txt'], env: ['GREETING'], run: 'echo "$GREETING" > o.txt' }];`);
  cli(root, [], { GREETING: 'hello' });
  assert.equal(started(cli(root, ['--json'], { GREETING: 'hello' })), []);
  const r = cli(root, ['--explain'], { GREETING: 'salut' });
  assert.match(r.stdout, /env GREETING changed: "hello" -> "salut"/);
  assert.is(read(root, 'o.txt'), 'salut\n');
});

test('command text change reruns; glob inputs see new matching files', () => {
  const root = tempRoot();
  write(root, 'data/a.csv', '1\n');
  const mod = (cmd: string) => `export default [{ outputs: ['all.csv'], inputs: ['data/*.csv'], run: ${JSON.stringify(cmd)} }];`;
  write(root, 'targets/index.ts', mod('cat data/*.csv > all.csv'));
  cli(root, []);
  write(root, 'data/b.csv', '2\n');
  const r = cli(root, ['--explain']);
  assert.match(r.stdout, /input data\/b\.csv is new/);
  assert.is(read(root, 'all.csv'), '1\n2\n');
  write(root, 'targets/index.ts', mod('cat data/*.csv | sort -r > all.csv'));
  const r2 = cli(root, ['--explain']);
  assert.match(r2.stdout, /command changed/);
  assert.is(read(root, 'all.csv'), '2\n1\n');
});

test('directory outputs and inputs are hashed as trees', () => {
  const root = tempRoot();
  write(root, 'src/x.txt', 'x');
  write(root, 'targets/index.ts', `export default [
    { outputs: ['gen/'], inputs: ['src/x.txt'], run: 'mkdir -p gen/sub && cp src/x.txt gen/sub/x && echo y > gen/y' },
    { outputs: ['list.txt'], inputs: ['gen/'], run: 'find gen -type f | sort > list.txt' },
  ];`);
  const r = cli(root, ['--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(read(root, 'list.txt'), 'gen/sub/x\ngen/y\n');
  assert.equal(started(cli(root, ['--json'])), []);
  write(root, 'gen/y', 'edited');
  const r3 = cli(root, ['--explain', '--json', '--no-cache']); // with the cache on, the edit is repaired by a restore instead
  assert.equal(started(r3), ['gen/']);
});

test('failure: exit 1, log kept, last lines printed with the log path, dependents blocked', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { outputs: ['a.txt'], run: 'for i in $(seq 1 30); do echo line $i; done; exit 3', log: 'logs/a.log' },
    { outputs: ['b.txt'], inputs: ['a.txt'], run: 'cp a.txt b.txt' },
    { outputs: ['c.txt'], run: 'sleep 0.3; echo c > c.txt' },
  ];`);
  const r = cli(root, ['-j', '2']);
  assert.is(r.code, 1);
  assert.match(r.stderr, /FAILED  a\.txt: command failed \(exit code 3\)/);
  assert.match(r.stderr, /log: logs\/a\.log/);
  assert.match(r.stderr, /\| line 30/);
  assert.not.match(r.stderr, /\| line 10\n/);
  assert.match(r.stderr, /blocked b\.txt \(needs a\.txt/);
  assert.ok(fs.existsSync(path.join(root, 'logs/a.log')));
  assert.not.ok(fs.existsSync(path.join(root, 'b.txt')));
});

test('without -k nothing new starts after a failure; with -k independent work goes on', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { outputs: ['bad.txt'], run: 'exit 1' },
    { outputs: ['slow.txt'], run: 'sleep 0.5; echo > slow.txt' },
    { outputs: ['later.txt'], inputs: ['slow.txt'], run: 'echo > later.txt' },
  ];`);
  const r = cli(root, ['-j', '2', '--json']);
  assert.is(r.code, 1);
  assert.not.ok(fs.existsSync(path.join(root, 'later.txt')));
  const r2 = cli(root, ['-j', '2', '-k', '--json']);
  assert.is(r2.code, 1);
  assert.ok(fs.existsSync(path.join(root, 'later.txt')));
});

test('a failed rerun never leaves a half-made output looking fresh', () => {
  const root = tempRoot();
  write(root, 'in.txt', 'v1');
  write(root, 'targets/index.ts', `export default [{ outputs: ['o.txt'], inputs: ['in.txt'], run: 'echo partial > o.txt; grep -q v1 in.txt; cp in.txt o.txt' }];`);
  assert.is(cli(root, []).code, 0);
  write(root, 'in.txt', 'v2');
  assert.is(cli(root, []).code, 1);
  assert.is(read(root, 'o.txt'), 'partial\n');
  const r = cli(root, ['--explain']);
  assert.is(r.code, 1, 'still stale: it runs again');
  assert.match(r.stdout, /last run \(build .*\) failed/);
});

test('rebuild: missing keeps outputs when inputs change, explains, and -B regenerates on purpose', () => {
  const root = tempRoot();
  write(root, 'seed.txt', '1');
  write(root, 'targets/index.ts', `export default [{ name: 'dataset', outputs: ['ds/data.bin'], inputs: ['seed.txt'], rebuild: 'missing', run: 'mkdir -p ds && cat seed.txt > ds/data.bin' }];`);
  cli(root, []);
  write(root, 'seed.txt', '2');
  const r = cli(root, ['--explain', '--json']);
  assert.equal(started(r), []);
  const r2 = cli(root, ['--explain']);
  assert.match(r2.stdout, /explain dataset: kept \(rebuild: 'missing'\)/);
  assert.match(r2.stdout, /input seed\.txt changed/);
  assert.match(r2.stdout, /npx tsx build\.ts "dataset" -B/);
  assert.is(read(root, 'ds/data.bin'), '1');
  fs.rmSync(path.join(root, 'ds'), { recursive: true });
  cli(root, []);
  assert.is(read(root, 'ds/data.bin'), '2');
  write(root, 'seed.txt', '3');
  cli(root, ['dataset', '-B']);
  assert.is(read(root, 'ds/data.bin'), '3');
});

test('in-process actions: ctx gives inputs, params and an atomic writeFile; the action source is fingerprinted', () => {
  const root = tempRoot();
  write(root, 'a.txt', 'A');
  const mod = (suffix: string) => `import fs from 'node:fs';
export default () => [{ outputs: ['joined.txt'], inputs: ['a.txt'], params: { sep: '+' }, log: 'logs/join.log',
  run: async (ctx) => { ctx.log('joining ' + ctx.inputs.join(',')); await ctx.writeFile('joined.txt', ctx.inputs.map((f) => fs.readFileSync(ctx.root + '/' + f, 'utf8')).join(ctx.params.sep) + '${suffix}'); } }];`;
  write(root, 'targets/index.ts', mod('!'));
  assert.is(cli(root, []).code, 0);
  assert.is(read(root, 'joined.txt'), 'A!');
  assert.match(read(root, 'logs/join.log'), /joining a\.txt/);
  assert.equal(started(cli(root, ['--json'])), []);
  write(root, 'targets/index.ts', mod('?'));
  assert.equal(started(cli(root, ['--json'])), ['joined.txt']);
  assert.is(read(root, 'joined.txt'), 'A?');
});

test('runOnFailure targets run after failures and see outcomes', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { outputs: ['bad.txt'], run: 'echo boom; exit 4', log: 'logs/bad.log' },
    { outputs: ['report.txt'], inputs: ['bad.txt'], runOnFailure: true,
      run: async (ctx) => { await ctx.writeFile('report.txt', ctx.outcomes().map((o) => o.name + ':' + o.status + ':' + (o.exitCode ?? '')).sort().join('\\n')); } },
  ];`);
  const r = cli(root, []);
  assert.is(r.code, 1);
  assert.match(read(root, 'report.txt'), /bad\.txt:failed:4/);
});

test('goals: output paths, names and globs; unknown goal lists the closest names (exit 2)', () => {
  const root = chainRoot();
  const r = cli(root, ['out/upper.txt', '--json']);
  assert.equal(started(r), ['out/upper.txt']);
  const r2 = cli(root, ['out/c*', '--json']);
  assert.equal(started(r2), ['out/count.txt']);
  const r3 = cli(root, ['out/uper.txt']);
  assert.is(r3.code, 2);
  assert.match(r3.stderr, /unknown goal 'out\/uper\.txt'/);
  assert.match(r3.stderr, /did you mean 'out\/upper\.txt'/);
});

test('declaration errors exit 2, name target and field, and change nothing on disk', () => {
  const cases: Array<[string, RegExp]> = [
    [`export default [{ outputs: ['a'], run: 'x' }, { outputs: ['a'], run: 'y', name: 'other' }];`, /'a' is also declared by target 'a'|also declared by target/],
    [`export default [{ outputs: ['a'], inputs: ['b'], run: 'x' }, { outputs: ['b'], inputs: ['a'], run: 'y' }];`, /dependency cycle: (a -> b -> a|b -> a -> b)/],
    [`export default [{ outputs: ['a'], inputs: ['nope.txt'], run: 'x' }];`, /target 'a', field 'inputs\[0\]': input 'nope\.txt' does not exist and no target produces it/],
    [`export default [{ outputs: ['a'], run: 42 }];`, /target 'a', field 'run': must be a shell command string or a function/],
    [`export default [{ run: 'x' }];`, /field 'outputs': a target with `run` must declare at least one output/],
    [`export default [{ outputs: ['../escape.txt'], run: 'x' }];`, /escapes the root/],
    [`export default [{ outputs: ['/tmp/abs.txt'], run: 'x' }];`, /is absolute/],
    [`export default [{ outputs: ['a'], run: 'x', log: '../l.log' }];`, /field 'log'.*escapes the root/],
    [`export default [{ outputs: ['a'], run: 'x', params: { n: 10n } }];`, /field 'params\.n'.*BigInt/],
    [`export default [{ outputs: ['a'], run: 'x', params: { f() {} } }];`, /params\.f is a function/],
    [`export default [{ outputs: ['a'], run: 'x', deps: ['ghost'] }];`, /depends on 'ghost', which no target is named/],
    [`export default [{ outputs: ['a'], run: 'x', rebuld: 'missing' }];`, /unknown field 'rebuld'/],
    [`export default [{ outputs: ['a'], run: 'x' ;`, /failed to load/],
    [`export default () => { throw new Error('config broke'); };`, /threw: config broke/],
    [`export default 7;`, /must export an array/],
  ];
  for (const [mod, re] of cases) {
    const root = tempRoot();
    write(root, 'targets/index.ts', mod);
    const before = snapshot(root);
    const r = cli(root, []);
    assert.is(r.code, 2, `${mod}\n${r.stderr}`);
    assert.match(r.stderr, re, mod);
    assert.equal(snapshot(root), before, `disk changed for ${mod}`);
  }
});

test('--list, --status, --graph, --dry-run', () => {
  const root = chainRoot();
  const list = cli(root, ['--list']);
  assert.match(list.stdout, /default\s+\(alias\) everything/);
  const before = snapshot(root);
  const dry = cli(root, ['-n']);
  assert.is(dry.code, 0);
  assert.match(dry.stdout, /would run out\/upper\.txt: mkdir -p out/);
  assert.match(dry.stdout, /never built/);
  assert.equal(snapshot(root), before, 'a dry run changes nothing');
  cli(root, []);
  write(root, 'src/a.txt', 'new\n');
  const st = cli(root, ['--status']);
  assert.match(st.stdout, /stale\s+out\/upper\.txt\s+\(input src\/a\.txt changed/);
  assert.match(st.stdout, /stale\?\s+out\/count\.txt/);
  const dry2 = cli(root, ['-n']);
  assert.match(dry2.stdout, /may run\s+out\/count\.txt/);
  const mer = cli(root, ['--graph', 'mermaid']);
  assert.match(mer.stdout, /^graph LR/);
  assert.match(mer.stdout, /t0 --> t1/);
  const dot = cli(root, ['--graph', 'dot']);
  assert.match(dot.stdout, /digraph hubmake/);
  const bad = cli(root, ['--graph', 'png']);
  assert.is(bad.code, 2);
  const bad2 = cli(root, ['--bogus']);
  assert.is(bad2.code, 2);
});

test('pools: targets sharing a pool never overlap', () => {
  const root = tempRoot();
  const t = (n: number) => `{ outputs: ['p${n}.txt'], pool: 'tool', run: 'echo start >> trace.log; sleep 0.2; echo end >> trace.log; echo > p${n}.txt' }`;
  write(root, 'targets/index.ts', `export default [${[1, 2, 3].map(t).join(',')}];`);
  assert.is(cli(root, ['-j', '3']).code, 0);
  assert.is(read(root, 'trace.log'), 'start\nend\n'.repeat(3));
});

test('-j2 never runs more than two commands at once (a slot is given back when a command ends, before its bookkeeping); with -j1 each start follows the previous finish', () => {
  const root = tempRoot();
  const t = (n: number) => `{ outputs: ['q${n}.txt'], run: 'echo s >> trace.log; sleep 0.05; echo e >> trace.log; echo ${n} > q${n}.txt' }`;
  write(root, 'targets/index.ts', `export default [${[1, 2, 3, 4, 5, 6, 7, 8].map(t).join(',')}];`);
  const r = cli(root, ['-j', '2', '--no-cache', '--json']);
  assert.is(r.code, 0, r.stderr);
  let running = 0;
  let most = 0;
  for (const l of read(root, 'trace.log').trim().split('\n')) most = Math.max(most, (running += l === 's' ? 1 : -1));
  assert.is(most, 2, 'two commands ran at once, never more');
  // Nor does the event stream show more: a target's finish comes before the start its slot allows.
  let open = 0;
  let shown = 0;
  for (const e of r.events) if (e.type === 'start' || e.type === 'finish') shown = Math.max(shown, (open += e.type === 'start' ? 1 : -1));
  assert.is(shown, 2, 'the events showed more than two targets running');
  fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
  const one = cli(root, ['-j', '1', '--json', '--no-cache', '-B']);
  assert.is(one.code, 0, one.stderr);
  const seq = one.events.filter((e) => e.type === 'start' || e.type === 'finish').map((e) => e.type);
  assert.equal(seq, Array.from({ length: 8 }, () => ['start', 'finish']).flat());
});

test('-j2 without -k: a command that exits 0 but leaves its output missing fails, and nothing starts after it', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { name: 'a', outputs: ['a.txt'], run: 'sleep 0.2' },
    { name: 'b', outputs: ['b.txt'], run: 'sleep 0.8; echo b > b.txt' },
    { name: 'c', outputs: ['c.txt'], run: 'echo c > c.txt' },
  ];`);
  const r = cli(root, ['-j', '2', '--json', '--no-cache']);
  assert.is(r.code, 1, r.stderr);
  assert.equal(r.events.filter((e) => e.type === 'start').map((e) => e.target).sort(), ['a', 'b']);
  assert.ok(r.events.some((e) => e.type === 'skipped' && e.target === 'c'), 'c was not skipped');
  assert.not.ok(fs.existsSync(path.join(root, 'c.txt')));
});

test('-j2 without -k: an output that is there but cannot be hashed (a FIFO) fails its target before its slot is given back: nothing starts after it, its failure shows first', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { name: 'a', outputs: ['a.p'], run: 'sleep 0.2; mkfifo a.p' },
    { name: 'b', outputs: ['b.txt'], run: 'sleep 0.8; echo b > b.txt' },
    { name: 'c', outputs: ['c.txt'], run: 'echo c > c.txt' },
  ];`);
  const r = cli(root, ['-j', '2', '--json', '--no-cache']);
  assert.is(r.code, 1, r.stderr);
  const seq = r.events.filter((e) => e.type === 'start' || e.type === 'finish' || e.type === 'skipped').map((e) => `${String(e.type)} ${String(e.target)}${e.status ? ` ${String(e.status)}` : ''}`);
  assert.equal(seq, ['start a', 'start b', 'finish a failed', 'skipped c', 'finish b built']);
  assert.not.ok(fs.existsSync(path.join(root, 'c.txt')));
});

test('-j2 decides every output as -j1 does: a declared directory, one the command wrote as a file, a symlink to a file', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [
    { name: 'd', outputs: ['out/d/'], run: 'mkdir -p out/d && echo x > out/d/f' },
    { name: 'f', outputs: ['out/f/'], run: 'sleep 0.1; mkdir -p out && echo x > out/f' },
    { name: 'l', outputs: ['out/l'], run: 'mkdir -p out && echo y > out/y && ln -sf y out/l' },
    { name: 'z', outputs: ['out/z'], run: 'sleep 0.3; mkdir -p out && echo z > out/z' },
  ];`);
  const seen: string[][] = [];
  for (const j of ['1', '2']) {
    fs.rmSync(path.join(root, 'out'), { recursive: true, force: true });
    fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
    const r = cli(root, ['-j', j, '--json', '--no-cache']);
    seen.push(r.events.filter((e) => e.type === 'finish').map((e) => `${String(e.target)} ${String(e.status)}`).sort());
  }
  assert.equal(seen[1], seen[0]);
  assert.equal(seen[0], ['d built', 'f built', 'l built', 'z built']);
});

test('paths named like what every object has (__proto__, constructor) and integer-like ones are paths like any other', () => {
  // Inputs and outputs are lists of path and hash (engine/path-hashes.ts): an output named
  // __proto__ is recorded (an object would drop it, and the target would rebuild every time),
  // such an input appearing or going is a named reason, and actions see their inputs in the order
  // declared, integer-like names included.
  const root = tempRoot();
  write(root, 'targets/index.ts', `
import fs from 'node:fs';
import path from 'node:path';
const inputs = (process.env.EXTRA ?? '').split(',').filter(Boolean);
export default [
  { outputs: ['__proto__'], inputs: ['src.txt'], run: 'cp src.txt __proto__' },
  { outputs: ['out.txt'], inputs: ['a.txt', ...inputs], run: 'cat a.txt > out.txt' },
  { outputs: ['order.txt'], inputs: ['b.txt', '2', '10', '1'], run: (ctx) => fs.writeFileSync(path.join(ctx.root, 'order.txt'), ctx.inputs.join(',')) },
];
`);
  for (const f of ['src.txt', 'a.txt', 'b.txt', '2', '10', '1', '__proto__x', 'constructor']) write(root, f, f);
  assert.is(cli(root, []).code, 0);
  assert.is(read(root, 'order.txt'), 'b.txt,2,10,1');
  for (const env of [{}, { HUBMAKE_NOOP_SHORTCUT: 'off' }]) {
    const again = cli(root, ['--json', '--explain'], env);
    assert.is(again.code, 0, again.stderr);
    assert.equal(started(again), [], `nothing reruns (${JSON.stringify(env)}): ${again.stdout}`);
  }
  for (const name of ['constructor', '__proto__']) {
    if (name === '__proto__') write(root, '__proto__', 'src.txt'); // the output above, as its command wrote it
    // The input appears, then goes: each time a reason that names it, for --explain, --dry-run and --status.
    for (const extra of [name, '']) {
      const env = { EXTRA: extra };
      const dry = cli(root, ['--dry-run', 'out.txt'], env);
      assert.is(dry.code, 0, dry.stderr);
      assert.match(dry.stdout, new RegExp(`input ${name} (is new|is gone)`));
      assert.is(cli(root, ['--status'], env).code, 0);
      const r = cli(root, ['--explain', 'out.txt'], env);
      assert.is(r.code, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`input ${name} (is new|is gone)`));
      assert.equal(started(cli(root, ['--json', 'out.txt'], env)), []);
    }
  }
});

test('a corrupted state file warns, treats targets as stale and continues', () => {
  const root = chainRoot();
  cli(root, []);
  const log = path.join(root, '.hubmake/log.jsonl');
  fs.writeFileSync(log, fs.readFileSync(log, 'utf8').slice(0, 200) + '\n{garbage');
  const r = cli(root, ['--json']);
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.events.some((e) => e.type === 'warning' && /corrupt/.test(String(e.message))));
  assert.equal(started(cli(root, ['--json'])), []);
});

test('temp files a killed build left beside an unfinished target are removed; look-alike user files stay', () => {
  const root = tempRoot();
  write(root, 'targets/index.ts', `export default [{ outputs: ['out/o.txt'], run: 'mkdir -p out && echo done > out/o.txt' }];`);
  assert.is(cli(root, []).code, 0);
  // A pid that surely ended: a process that has already exited.
  const dead = spawnSync('true').pid;
  write(root, `out/o.txt.tmp-${dead}-ab12cd`, 'half');
  write(root, `out/o.txt.hubmake-restore-${dead}-0123456789ab`, 'half');
  write(root, `out/o.txt.tmp-${process.pid}-ab12cd`, 'a live writer');
  write(root, 'out/o.txt.tmp-notes', 'mine');
  write(root, `.hubmake/log.jsonl.tmp-${dead}-zz99`, 'half');
  // The state says the target started and never finished (what a kill leaves).
  const state = new StateStore(root);
  state.load();
  state.recordStart('out/o.txt', 'killed');
  state.close();
  const r = cli(root, ['--json', '--no-cache']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(started(r), ['out/o.txt']);
  assert.ok(r.events.some((e) => e.type === 'info' && /removed 2 temp file/.test(String(e.message))));
  assert.equal(fs.readdirSync(path.join(root, 'out')).sort(), ['o.txt', `o.txt.tmp-${process.pid}-ab12cd`, 'o.txt.tmp-notes']);
  assert.not.ok(fs.existsSync(path.join(root, `.hubmake/log.jsonl.tmp-${dead}-zz99`)));
});

test('a signal while the targets module loads: exit 130 before the build starts, nothing written', async () => {
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    const root = tempRoot();
    // The module says when it starts loading, then holds the event loop as a slow module would.
    write(root, 'targets/index.ts', `import fs from 'node:fs';
fs.writeFileSync(${JSON.stringify(root)} + '/loading', '');
const t0 = Date.now(); while (Date.now() - t0 < 1500) {}
export default [{ outputs: ['a.txt'], run: 'echo > a.txt' }];`);
    const child = cliAsync(root, []);
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
    const done = new Promise<number | null>((r) => child.on('close', (code) => r(code)));
    while (!fs.existsSync(path.join(root, 'loading'))) await new Promise((r) => setTimeout(r, 20));
    child.kill(sig);
    const code = await done;
    assert.is(code, 130, `${sig}: ${stderr}`);
    assert.match(stderr, `${sig} before the build started; nothing was changed`);
    assert.not.ok(fs.existsSync(path.join(root, 'a.txt')));
    assert.not.ok(fs.existsSync(path.join(root, '.hubmake')));
  }
});

test.run();
