// A damaged state file (torn, garbage, wrong shapes, a bad stat cache) is warned about once, what
// it described is treated as stale, and the build carries on, never crashes. An input that exists
// but cannot be read is named in the failure (tests run as root, where chmod 000 does not stop
// reading: a FIFO and an I/O error stand in).
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read, tempRoot, write } from './lib/cli.ts';

// ---- a damaged state file: warn, treat what it described as stale, carry on, never crash ----

const THREE = `export default [
  { outputs: ['a'], run: 'echo a >> ran.log; echo a > a' },
  { outputs: ['b'], run: 'echo b >> ran.log; echo b > b' },
  { outputs: ['c'], params: { k: 1 }, run: 'echo c >> ran.log; echo c > c' },
];
`;

function builtThree(): string {
  const root = tempRoot('hubmake-state-');
  write(root, 't.ts', THREE);
  const r = cli(root, ['-f', 't.ts', '-j', '1', '--no-cache']);
  assert.is(r.code, 0, r.stderr);
  fs.writeFileSync(path.join(root, 'ran.log'), '');
  return root;
}
const logFile = (root: string) => path.join(root, '.hubmake/log.jsonl');
const statFile = (root: string) => path.join(root, '.hubmake/stat.json');
const ranNow = (root: string) => read(root, 'ran.log').split('\n').filter(Boolean).sort();

const DAMAGE: Array<{ name: string; damage: (root: string) => void; rerun: string[]; warns: boolean }> = [
  {
    name: 'truncated in the middle of its last record',
    damage: (root) => {
      const text = fs.readFileSync(logFile(root), 'utf8').trimEnd();
      fs.writeFileSync(logFile(root), text.slice(0, text.length - 25));
    },
    // The torn record was c's success: c is rebuilt, a and b are not.
    rerun: ['c'],
    warns: true,
  },
  { name: 'with binary garbage appended', damage: (root) => fs.appendFileSync(logFile(root), Buffer.from([0, 255, 10, 123, 34, 107, 0, 10, 0x80, 0x81])), rerun: [], warns: true },
  { name: 'replaced by garbage', damage: (root) => fs.writeFileSync(logFile(root), '\u0000\u0001garbage{{{\n[1,2\n'), rerun: ['a', 'b', 'c'], warns: true },
  { name: 'emptied', damage: (root) => fs.writeFileSync(logFile(root), ''), rerun: ['a', 'b', 'c'], warns: false },
  {
    // Format 2 (engine/state-codec.ts). The first write of the build defined string 0 (its id);
    // a's success defined 1-3 (command, params, env): the lines below use them where a shape
    // error is to be the only fault.
    name: 'with valid JSON lines of the wrong shape',
    damage: (root) => {
      fs.appendFileSync(logFile(root), [
        ['o', 'a', 999, 2, 3, 0, 1, [], []], // an undefined string
        ['o', 'c', 1, 2, 3, 0, 1, ['in', 'not-a-hash'], []],
        ['o', 'c', 1, 2, 3, 0, 1, ['in'], []],
        ['o', 'c', 1, 2, 0, 0, 1, [], []], // env string 0 is not JSON
        ['o', 'b'], ['f', 'b', 0], ['f', 'b', 0, 1, 'x', 'err', 1], ['r'], ['r', 'a', 77], ['j', 'a', 0, 1, 2, 3],
        ['s', 'x', 'y'], ['s', 2 ** 40, 'y'], ['s', 4], [], ['zz', 'a'], [null],
      ].map((l) => JSON.stringify(l)).join('\n') + '\n');
    },
    rerun: [],
    warns: true,
  },
  {
    name: 'with valid JSON records of format 1 of the wrong shape',
    damage: (root) => {
      const t = Date.now();
      fs.appendFileSync(logFile(root), [
        JSON.stringify({ k: 'ok', t: 'a', cmd: 'echo a >> ran.log; echo a > a', params: '', in: null, out: {}, env: {}, b: 'x' }),
        JSON.stringify({ k: 'fail', t: 'b' }),
        JSON.stringify({ k: 'ok', t: 'c', cmd: 'x', params: '{damaged', in: {}, out: { c: 5 }, env: {}, b: 'x', ms: t }),
        JSON.stringify({ k: 'start' }),
        JSON.stringify(null), JSON.stringify([1]), JSON.stringify({ k: 'what', t: 'a' }),
      ].join('\n') + '\n');
    },
    rerun: [],
    warns: true,
  },
  { name: 'with a stat cache that is truncated', damage: (root) => fs.writeFileSync(statFile(root), read(root, '.hubmake/stat.json').slice(0, 60)), rerun: [], warns: false },
  {
    name: 'with a stat cache whose entries have the wrong shape',
    damage: (root) => {
      const s = JSON.parse(read(root, '.hubmake/stat.json')) as { v: number; g: Array<[number, number, unknown[]]> };
      assert.is(s.v, 2);
      // Every entry's ino made a string, its hash shortened, or its mtime seconds made negative.
      s.g[0]![2] = s.g[0]![2].map((x, i) => (i % 8 === 1 ? String(x) : i % 8 === 6 ? String(x).slice(1) : i % 8 === 3 ? -1e12 : x));
      fs.writeFileSync(statFile(root), JSON.stringify(s));
    },
    rerun: [],
    warns: false,
  },
  { name: 'with a stat cache of the wrong shape', damage: (root) => fs.writeFileSync(statFile(root), '{"v": 2, "g": [5, null, [1, 2, {"a": 5}]]}'), rerun: [], warns: false },
  { name: 'with a stat cache of format 1 of the wrong shape', damage: (root) => fs.writeFileSync(statFile(root), '{"a": 5, "b": null, "c": [1,2,3]}'), rerun: [], warns: false },
];

for (const d of DAMAGE) {
  test(`a state file ${d.name}: ${d.warns ? 'a warning, ' : ''}${d.rerun.length ? `only ${d.rerun.join(', ')} rebuilt` : 'nothing rebuilt'}, exit 0`, () => {
    const root = builtThree();
    assert.ok(fs.existsSync(path.join(root, '.hubmake/stat.json')) || !d.name.includes('stat'), 'the stat cache exists to damage');
    d.damage(root);
    // --no-cache: a stale target must run its command, not be restored from the artifact cache.
    const r = cli(root, ['-f', 't.ts', '-j', '1', '--no-cache']);
    assert.is(r.code, 0, r.stderr);
    if (d.warns) assert.match(r.stderr, /hubmake: warning: state file \.hubmake\/log\.jsonl has \d+ corrupt line\(s\)/);
    else assert.not.match(r.stderr, /warning/);
    assert.equal(ranNow(root), d.rerun);
    for (const x of ['a', 'b', 'c']) assert.is(read(root, x), `${x}\n`);
    // And the state is sound again afterwards: nothing to do, no warning.
    const again = cli(root, ['-f', 't.ts', '--no-cache']);
    assert.is(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    assert.not.match(again.stderr, /warning/);
    fs.rmSync(root, { recursive: true, force: true });
  });
}

// ---- inputs that exist but cannot be read (as root, chmod 000 does not stop reading) ----

test('an input that is a FIFO: the target fails naming it (the build does not hang waiting for a writer)', () => {
  const root = tempRoot('hubmake-unreadable-');
  write(root, 't.ts', `export default [{ outputs: ['a'], inputs: ['pipe'], run: 'cat pipe > a' }, { outputs: ['b'], run: 'echo b > b' }];`);
  execFileSync('mkfifo', [path.join(root, 'pipe')]);
  const r = cli(root, ['-f', 't.ts', '-k']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED  a: cannot hash its inputs or outputs: '.*\/pipe' is not a regular file \(a FIFO, socket or device\)/);
  assert.is(read(root, 'b'), 'b\n', 'other targets still build with -k');
  fs.rmSync(root, { recursive: true, force: true });
});

test('an input whose read fails with an I/O error (a symlink to /proc/self/mem): the target fails naming it', () => {
  const root = tempRoot('hubmake-unreadable-');
  write(root, 't.ts', `export default [{ outputs: ['a'], inputs: ['mem'], run: 'echo a > a' }];`);
  fs.symlinkSync('/proc/self/mem', path.join(root, 'mem'));
  const r = cli(root, ['-f', 't.ts']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED  a: cannot hash its inputs or outputs: cannot read '.*\/mem': EIO/);
  assert.not.ok(fs.existsSync(path.join(root, 'a')));
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
