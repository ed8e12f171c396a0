// Hostile and broken input. Every declaration problem ends the build with exit 2 and a message
// naming the file, target, field or key, and nothing on disk changes (the root is snapshotted
// before and after). Values quoted into commands with engine/shell.ts stay single words.
// Damaged state and unreadable inputs: reliability-state.test.ts.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read, REPO, snapshot, tempRoot, write } from './lib/cli.ts';
import { quote, sh } from '../engine/shell.ts';

interface Case {
  name: string;
  module: string;
  /** Extra files (and symlinks, as `-> target`) to create first. */
  files?: Record<string, string>;
  args?: string[];
  expect: RegExp[];
}

const CONFIG_LOADER = `import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '${REPO}/rules/config.ts';
const root = path.dirname(fileURLToPath(import.meta.url));
export default () => {
  const { config } = loadConfig(root, {});
  return [{ outputs: ['x.txt'], params: { initiative: config.initiative }, run: 'echo x > x.txt' }];
};
`;
const hubConfig = JSON.parse(fs.readFileSync(path.join(REPO, 'hub.config.json'), 'utf8')) as Record<string, unknown>;

const CASES: Case[] = [
  { name: 'a targets module with a syntax error', module: `export default [ { outputs: ['a'], run: 'x' `, expect: [/targets module 't\.ts' failed to load/, /t\.ts:\d+:\d+/] },
  { name: 'a targets module that throws while loading', module: `throw new Error('boom at load');`, expect: [/targets module 't\.ts' failed to load: boom at load/] },
  { name: 'a targets function that throws', module: `export default () => { throw new Error('boom in fn'); };`, expect: [/the targets function of 't\.ts' threw: boom in fn/] },
  { name: 'a default export that is not a list', module: `export default 5;`, expect: [/must export an array of target specs .*got number 5/] },
  {
    name: 'wrong field types',
    module: `export default [{ name: 'w', outputs: 'a.txt', run: 5, rebuild: 'sometimes', deps: [1], inputs: [null], env: 'HOME', runOnFailure: 'yes' }];`,
    expect: [/target 'w', field 'outputs': must be an array of strings, got the string "a\.txt"/, /field 'run': must be a shell command string or a function, got number 5/, /field 'rebuild': must be 'stale' or 'missing'/, /field 'deps\[0\]': must be a non-empty string, got number 1/, /field 'inputs\[0\]': must be a non-empty string, got null/, /field 'env': must be an array of strings/, /field 'runOnFailure': must be true or false/],
  },
  { name: 'a misspelt field', module: `export default [{ ouputs: ['a'], outputs: ['a'], run: 'true' }];`, expect: [/field 'ouputs': unknown field 'ouputs'/] },
  { name: 'an absolute output', module: `export default [{ outputs: ['/etc/hubmake-x'], run: 'true' }];`, expect: [/field 'outputs\[0\]': '\/etc\/hubmake-x' is absolute/] },
  { name: 'an output escaping the root with ..', module: `export default [{ outputs: ['sub/../../x'], run: 'true' }];`, expect: [/field 'outputs\[0\]': '\.\.\/x' escapes the root with \.\./] },
  // The message names the longest existing real prefix: /tmp, or /tmp/x where a checkout lives there.
  { name: 'an output under a symlink pointing outside', module: `export default [{ outputs: ['out/x'], run: 'true' }];`, files: { out: '-> /tmp' }, expect: [/'out\/x' resolves outside the root through a symlink \(\/tmp(\/x)?\)/] },
  { name: 'an output that is a dangling symlink to outside', module: `export default [{ outputs: ['x'], run: 'echo > x' }];`, files: { x: '-> /tmp/hubmake-nonexistent-target' }, expect: [/'x' is written through a dangling symlink to \/tmp\/hubmake-nonexistent-target, outside the root/] },
  { name: 'an absolute log', module: `export default [{ outputs: ['a'], log: '/tmp/x.log', run: 'true' }];`, expect: [/field 'log': '\/tmp\/x\.log' is absolute/] },
  { name: 'a log escaping the root', module: `export default [{ outputs: ['a'], log: '../x.log', run: 'true' }];`, expect: [/field 'log': '\.\.\/x\.log' escapes the root/] },
  { name: 'a log under a symlink pointing outside', module: `export default [{ outputs: ['a'], log: 'logs/a.log', run: 'true' }];`, files: { logs: '-> /tmp' }, expect: [/field 'log': 'logs\/a\.log' resolves outside the root through a symlink/] },
  { name: 'duplicate outputs', module: `export default [{ name: 'one', outputs: ['a'], run: 'true' }, { name: 'two', outputs: ['b', './a'], run: 'true' }];`, expect: [/target 'two', field 'outputs': 'a' is also declared by target 'one'/] },
  { name: 'an output inside another target\'s directory output', module: `export default [{ name: 'tree', outputs: ['out/'], run: 'true' }, { name: 'leaf', outputs: ['out/x.txt'], run: 'true' }];`, expect: [/target 'leaf', field 'outputs': 'out\/x\.txt' lies inside directory output 'out\/' of target 'tree'/] },
  { name: 'an output that is another target\'s log', module: `export default [{ name: 'one', outputs: ['a'], log: 'l.txt', run: 'true' }, { name: 'two', outputs: ['l.txt'], run: 'true' }];`, expect: [/'l\.txt' is also declared by target 'one'/] },
  { name: 'a cycle', module: `export default [{ outputs: ['a'], inputs: ['b'], run: 'true' }, { outputs: ['b'], inputs: ['c'], run: 'true' }, { outputs: ['c'], deps: ['a'], run: 'true' }];`, expect: [/dependency cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c)/] },
  { name: 'a goal that does not exist', module: `export default [{ outputs: ['alpha.txt'], run: 'true' }];`, args: ['alpah.txt'], expect: [/unknown goal 'alpah\.txt'/, /did you mean 'alpha\.txt'/] },
  { name: 'a dependency that does not exist', module: `export default [{ outputs: ['a'], deps: ['nope'], run: 'true' }];`, expect: [/target 'a', field 'deps\[0\]': depends on 'nope', which no target is named/] },
  { name: 'an input that does not exist', module: `export default [{ outputs: ['a'], inputs: ['nope.txt'], run: 'true' }];`, expect: [/field 'inputs\[0\]': input 'nope\.txt' does not exist and no target produces it/] },
  { name: 'an input that is a symlink loop', module: `export default [{ outputs: ['a'], inputs: ['loop'], run: 'true' }];`, files: { loop: '-> loop' }, expect: [/input 'loop' cannot be read \(ELOOP/] },
  { name: 'an input that is a dangling symlink', module: `export default [{ outputs: ['a'], inputs: ['gone'], run: 'true' }];`, files: { gone: '-> elsewhere.txt' }, expect: [/input 'gone' is a symlink to 'elsewhere\.txt', which does not exist/] },
  { name: 'params holding a function', module: `export default [{ outputs: ['a'], run: 'true', params: { f: () => 1 } }];`, expect: [/target 'a', field 'params\.f': params\.f is a function/] },
  { name: 'params holding a cycle', module: `const c = { a: [1] }; c.a.push(c); export default [{ outputs: ['a'], run: 'true', params: c }];`, expect: [/field 'params\.a\[1\]': params\.a\[1\] refers back to itself \(a cycle\)/] },
  { name: 'params holding a BigInt', module: `export default [{ outputs: ['a'], run: 'true', params: { n: 10n } }];`, expect: [/field 'params\.n': params\.n is a BigInt/] },
  {
    name: 'params holding NaN, undefined or a Date',
    module: `export default [{ outputs: ['a'], run: 'true', params: { x: NaN } }, { outputs: ['b'], run: 'true', params: { u: [undefined] } }, { outputs: ['c'], run: 'true', params: { d: new Date(0) } }];`,
    expect: [/target 'a', field 'params\.x': params\.x is NaN/, /target 'b', field 'params\.u\[0\]': params\.u\[0\] is undefined/, /target 'c', field 'params\.d': params\.d is a Date object/],
  },
  { name: 'a configuration file with bad JSON', module: CONFIG_LOADER, files: { 'hub.config.json': '{"initiative": "x",' }, expect: [/hub\.config\.json: invalid JSON/] },
  { name: 'a configuration file with an unknown top-level key', module: CONFIG_LOADER, files: { 'hub.config.json': JSON.stringify({ ...hubConfig, bogusKey: 1 }) }, expect: [/hub\.config\.json: key bogusKey: unknown key/] },
  { name: 'a configuration file with an unknown nested key', module: CONFIG_LOADER, files: { 'hub.config.json': JSON.stringify({ ...hubConfig, sim: { ...(hubConfig.sim as object), speed: 3 } }) }, expect: [/hub\.config\.json: key sim\.speed: unknown key/] },
  { name: 'a configuration value of the wrong type', module: CONFIG_LOADER, files: { 'hub.config.json': JSON.stringify({ ...hubConfig, doses: 'many' }) }, expect: [/hub\.config\.json: key doses: /] },
];

for (const c of CASES) {
  test(`${c.name}: exit 2, named, nothing on disk changed`, () => {
    const root = tempRoot('hubmake-hostile-');
    write(root, 't.ts', c.module);
    for (const [p, v] of Object.entries(c.files ?? {})) {
      if (v.startsWith('-> ')) fs.symlinkSync(v.slice(3), path.join(root, p));
      else write(root, p, v);
    }
    const before = snapshot(root);
    const r = cli(root, ['-f', 't.ts', ...(c.args ?? [])]);
    assert.is(r.code, 2, `exit code; stderr:\n${r.stderr}`);
    for (const re of c.expect) assert.match(r.stderr, re);
    assert.not.match(r.stderr, /\n\s+at .*\(.*:\d+:\d+\)/, 'no stack trace');
    assert.equal(snapshot(root), before, 'the root changed');
    assert.not.ok(fs.existsSync('/tmp/hubmake-nonexistent-target'), 'nothing was written outside the root');
    fs.rmSync(root, { recursive: true, force: true });
  });
}

// ---- shell safety: values quoted with engine/shell.ts reach the command as single words ----

const NASTY = ['two words', "it's", '"double"', '$(touch pwned1)', '`touch pwned2`', 'a; touch pwned3', 'line1\nline2', '$HOME', '*', '', '-n', 'back\\slash', "'; touch pwned4; '", '&& touch pwned5 #'];

test('quote and sh: each nasty value is exactly one word and round-trips through bash', () => {
  for (const v of NASTY) {
    const out = execFileSync('/bin/bash', ['-c', `printf '%s\\0' ${quote(v)}`], { encoding: 'utf8' });
    assert.equal(out.split('\0').slice(0, -1), [v], `quote(${JSON.stringify(v)})`);
  }
  const cmd = sh`printf '%s\\0' ${NASTY} ${42}`;
  const out = execFileSync('/bin/bash', ['-c', cmd], { encoding: 'utf8' });
  assert.equal(out.split('\0').slice(0, -1), [...NASTY, '42']);
  assert.is(quote('plain/path-1.txt'), 'plain/path-1.txt', 'safe words stay readable');
  assert.throws(() => quote(undefined as unknown as string), /got undefined/);
  assert.throws(() => quote('a\0b'), /NUL byte/);
});

test('values from params quoted into commands with sh: outputs hold the exact values, nothing else runs', () => {
  const root = tempRoot('hubmake-shell-');
  const specs = NASTY.map((v, i) => `  { outputs: ['out/v${i}.txt'], params: { v: ${JSON.stringify(v)} }, run: sh\`mkdir -p out && printf '%s' \${${JSON.stringify(v)}} > out/v${i}.txt\` },`).join('\n');
  write(root, 't.ts', `import { sh } from '${REPO}/engine/shell.ts';\nexport default [\n${specs}\n];\n`);
  const r = cli(root, ['-f', 't.ts']);
  assert.is(r.code, 0, r.stderr);
  NASTY.forEach((v, i) => assert.is(read(root, `out/v${i}.txt`), v));
  for (let k = 1; k <= 5; k++) assert.not.ok(fs.existsSync(path.join(root, `pwned${k}`)), `pwned${k} was created: a value ran as shell code`);
  // Quoting is deterministic, so a second build is a no-op.
  assert.match(cli(root, ['-f', 't.ts']).stdout, /nothing to do/);
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
