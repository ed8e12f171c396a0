// The module record (engine/module-record.ts): a no-op whose targets module read nothing that has
// changed since skips the module. Through the real command line: each kind of thing a module can
// read must make the next build run it again, and what cannot be looked at again must keep every
// build running it. Whether it ran is the build-start event's `module`; that its result is used is
// shown by what the build then runs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { BUILD_TS, cli as runCli, parseEvents, read, started, tempRoot, write, type CliResult } from './lib/cli.ts';
import { readStamp } from '../engine/stamp.ts';
import { main } from '../engine/cli.ts';

// Module files count once they are older than this (ms; the default is 2,000, tested below).
const ENV = { HUBMAKE_MODULE_RECORD: '0' };

function cli(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): CliResult {
  return runCli(root, ['--json', ...args], { ...ENV, ...env });
}

function moduleNote(r: CliResult): string {
  const start = r.events.find((e) => e.type === 'build-start');
  return String(start?.module);
}

const skipped = (r: CliResult) => moduleNote(r).startsWith('skipped');

/** Builds until the stamp carries a record: the build, then a no-op that must skip the module. */
function settle(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): void {
  const b = cli(root, args, env);
  assert.is(b.code, 0, b.stderr);
  let n = cli(root, args, env);
  // (A directory the record lists, where the build wrote its first output, takes one more.)
  if (!skipped(n) && /^run and recorded/.test(moduleNote(n))) n = cli(root, args, env);
  assert.is(n.code, 0, n.stderr);
  assert.ok(skipped(n), `a no-op after a build skips the module: ${moduleNote(n)}`);
  assert.equal(started(n), []);
}

const MODULE = `import fs from 'node:fs';
import { suffix } from './helper.ts';
export default ({ root, defines }) => {
  const cfg = JSON.parse(fs.readFileSync(root + '/cfg.json', 'utf8'));
  const parts = fs.readdirSync(root + '/parts').sort();
  const flag = fs.existsSync(root + '/flag') ? 'flag' : 'noflag';
  process.stderr.write('targets: ' + parts.length + ' parts\\n');
  return [
    ...parts.map((p) => ({ outputs: ['out/' + p], inputs: ['parts/' + p], run: 'mkdir -p out && cp parts/' + p + ' out/' + p })),
    { outputs: ['out/cfg.txt'], run: 'mkdir -p out && echo ' + cfg.word + suffix + flag + (process.env.REC_WORD ?? '') + (defines.d ?? '') + ' > out/cfg.txt' },
  ];
};
`;

/** ES modules as the hub's (package.json "type": "module"), or CommonJS as tsx loads .ts without it. */
function project(kind: 'esm' | 'cjs' = 'esm'): string {
  const root = tempRoot('hubmake-record-');
  if (kind === 'esm') write(root, 'package.json', JSON.stringify({ type: 'module' }));
  write(root, 'targets/index.ts', MODULE);
  write(root, 'targets/helper.ts', `export const suffix = '-s1-';\n`);
  write(root, 'cfg.json', JSON.stringify({ word: 'one' }));
  write(root, 'parts/a.txt', 'a\n');
  return root;
}

for (const kind of ['esm', 'cjs'] as const) test(`a no-op skips the module, and says what it printed as if it had run (${kind})`, () => {
  const root = project(kind);
  const built = cli(root);
  assert.is(built.code, 0, built.stderr);
  assert.is(moduleNote(built), 'run and recorded');
  assert.is(read(root, 'out/cfg.txt'), 'one-s1-noflag\n');
  const noop = cli(root);
  assert.is(noop.code, 0, noop.stderr);
  assert.is(moduleNote(noop), 'skipped: nothing it read has changed');
  const ran = cli(root, [], { HUBMAKE_MODULE_RECORD: 'off' });
  assert.is(ran.code, 0, ran.stderr);
  assert.is(ran.events.find((e) => e.type === 'build-start')?.module, undefined);
  // The same output either way, the module's own line included.
  assert.ok(noop.stderr.includes('targets: 1 parts\n'), noop.stderr);
  assert.is(noop.stderr, ran.stderr);
  const strip = (r: CliResult) => r.events.map((e) => {
    const { buildId, durationMs, time, module, probed, ...rest } = e;
    return JSON.stringify(Object.fromEntries(Object.entries(rest).sort()));
  });
  assert.equal(strip(noop), strip(ran));
});

// Each edit must reach the module: the next build runs it, and its new result is built.
const edits: Array<[string, (root: string) => void, string | ((root: string) => void)]> = [
  ['an imported module file', (r) => write(r, 'targets/helper.ts', `export const suffix = '-s2-';\n`), 'one-s2-noflag\n'],
  ['a file it reads', (r) => write(r, 'cfg.json', JSON.stringify({ word: 'two' })), 'two-s1-noflag\n'],
  ['a path whose existence it checks', (r) => write(r, 'flag', ''), 'one-s1-flag\n'],
  ['a directory it lists', (r) => write(r, 'parts/b.txt', 'b\n'), (r) => assert.is(read(r, 'out/b.txt'), 'b\n')],
  ['the targets module itself', (r) => write(r, 'targets/index.ts', MODULE.replace('cfg.word + suffix', "'m' + cfg.word + suffix")), 'mone-s1-noflag\n'],
];
for (const [i, [what, edit, want]] of edits.entries()) {
  // The loaders differ for imports: an imported file's edit is tried under both.
  for (const kind of i === 0 ? (['esm', 'cjs'] as const) : (['esm'] as const)) test(`an edit of ${what} runs the module again (${kind})`, () => {
    const root = project(kind);
    settle(root);
    edit(root);
    const r = cli(root);
    assert.is(r.code, 0, r.stderr);
    assert.ok(moduleNote(r).startsWith('run'), moduleNote(r));
    if (typeof want === 'string') assert.is(read(root, 'out/cfg.txt'), want);
    else want(root);
    // ...and records again: the build after is a no-op that skips it.
    const n = cli(root);
    assert.ok(skipped(n), moduleNote(n));
    assert.equal(started(n), []);
  });
}

test('a symlinked module file pointed elsewhere runs the module again', () => {
  const root = project();
  write(root, 'targets/v1.ts', `export const suffix = '-v1-';\n`);
  write(root, 'targets/v2.ts', `export const suffix = '-v2-';\n`);
  fs.rmSync(path.join(root, 'targets/helper.ts'));
  fs.symlinkSync('v1.ts', path.join(root, 'targets/helper.ts'));
  settle(root);
  assert.is(read(root, 'out/cfg.txt'), 'one-v1-noflag\n');
  fs.rmSync(path.join(root, 'targets/helper.ts'));
  fs.symlinkSync('v2.ts', path.join(root, 'targets/helper.ts'));
  const r = cli(root);
  assert.ok(!skipped(r), moduleNote(r));
  assert.is(read(root, 'out/cfg.txt'), 'one-v2-noflag\n');
});

test('a file added where an import would now find it runs the module again', () => {
  const root = project();
  // tsx resolves './lib' to lib/index.ts, and to lib.ts once there is one.
  write(root, 'targets/index.ts', MODULE.replace("'./helper.ts'", "'./lib'"));
  write(root, 'targets/lib/index.ts', `export const suffix = '-dir-';\n`);
  settle(root);
  assert.is(read(root, 'out/cfg.txt'), 'one-dir-noflag\n');
  write(root, 'targets/lib.ts', `export const suffix = '-file-';\n`);
  const r = cli(root);
  assert.ok(!skipped(r), moduleNote(r));
  assert.is(read(root, 'out/cfg.txt'), 'one-file-noflag\n');
});

// How an import resolves, and what a function run later imports, found by review: each edit
// must run the module again and build what it now says.
interface Scenario { what: string; files: Record<string, string>; edit: (root: string) => void; want: string; env?: NodeJS.ProcessEnv }
const link = (root: string, rel: string, target: string) => {
  fs.rmSync(path.join(root, rel), { force: true });
  fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
  fs.symlinkSync(target, path.join(root, rel));
};
const scenarios: Scenario[] = [
  {
    what: 'a file a target\'s function imports when it runs',
    files: {
      'targets/index.ts': `import fs from 'node:fs';\nexport default [{ outputs: ['out.txt'], run: async () => { const { text } = await import('./steps.ts'); fs.writeFileSync('out.txt', text + '\\n'); } }];\n`,
      'targets/steps.ts': `export const text = 'v1';\n`,
    },
    edit: (r) => write(r, 'targets/steps.ts', `export const text = 'v2';\n`),
    want: 'v2\n',
  },
  {
    what: 'a file whose import failed (and was caught)',
    // (A computed specifier: the engine's scan of literal imports does not see it.)
    files: { 'targets/index.ts': `let word = 'default';\nconst name = '../local.config' + '.ts';\ntry { word = (await import(name)).word; } catch {}\nexport default [{ outputs: ['out.txt'], run: 'echo ' + word + ' > out.txt' }];\n` },
    edit: (r) => write(r, 'local.config.ts', `export const word = 'override';\n`),
    want: 'override\n',
  },
  {
    what: 'package.json "imports"',
    files: {
      'package.json': JSON.stringify({ type: 'module', imports: { '#cfg': './conf/a.ts' } }),
      'conf/a.ts': `export const word = 'A';\n`,
      'conf/b.ts': `export const word = 'B';\n`,
      'targets/index.ts': `import { word } from '#cfg';\nexport default [{ outputs: ['out.txt'], run: 'echo ' + word + ' > out.txt' }];\n`,
    },
    edit: (r) => write(r, 'package.json', JSON.stringify({ type: 'module', imports: { '#cfg': './conf/b.ts' } })),
    want: 'B\n',
  },
  {
    what: 'a linked package pointed elsewhere',
    files: {
      'pkgs/one/package.json': JSON.stringify({ name: 'cfgpkg', type: 'module', exports: './index.js' }),
      'pkgs/one/index.js': `export const word = 'one';\n`,
      'pkgs/two/package.json': JSON.stringify({ name: 'cfgpkg', type: 'module', exports: './index.js' }),
      'pkgs/two/index.js': `export const word = 'two';\n`,
      'targets/node_modules/cfgpkg': 'link:../../pkgs/one',
      'targets/index.ts': `import { word } from 'cfgpkg';\nexport default [{ outputs: ['out.txt'], run: 'echo ' + word + ' > out.txt' }];\n`,
    },
    edit: (r) => link(r, 'targets/node_modules/cfgpkg', '../../pkgs/two'),
    want: 'two\n',
  },
  {
    what: 'a link read through realpathSync.native',
    files: {
      'releases/v1.txt': 'v1',
      'releases/v2.txt': 'v2',
      current: 'link:releases/v1.txt',
      'targets/index.ts': `import fs from 'node:fs';\nconst p = fs.realpathSync.native('current');\nexport default [{ outputs: ['out.txt'], run: 'echo ' + p.slice(-6, -4) + ' > out.txt' }];\n`,
    },
    edit: (r) => link(r, 'current', 'releases/v2.txt'),
    want: 'v2\n',
  },
  {
    what: 'a path with .. after a linked directory',
    files: {
      'elsewhere/sub/keep': '',
      data: 'link:elsewhere/sub',
      'targets/index.ts': `import fs from 'node:fs';\nconst w = fs.existsSync('data/../override.json') ? 'override' : 'default';\nexport default [{ outputs: ['out.txt'], run: 'echo ' + w + ' > out.txt' }];\n`,
    },
    edit: (r) => write(r, 'elsewhere/override.json', '{}'),
    want: 'override\n',
  },
  {
    what: 'NODE_OPTIONS (export conditions)',
    files: {
      'node_modules_local/pkg/package.json': '',
      'conf/dev.ts': `export const word = 'dev';\n`,
      'conf/prod.ts': `export const word = 'prod';\n`,
      'package.json': JSON.stringify({ type: 'module', imports: { '#cfg': { development: './conf/dev.ts', default: './conf/prod.ts' } } }),
      'targets/index.ts': `import { word } from '#cfg';\nexport default [{ outputs: ['out.txt'], run: 'echo ' + word + ' > out.txt' }];\n`,
    },
    edit: () => {},
    env: { NODE_OPTIONS: '--conditions=development' },
    want: 'dev\n',
  },
];
for (const sc of scenarios) {
  test(`an edit of ${sc.what} runs the module again`, () => {
    const root = tempRoot('hubmake-record-');
    write(root, 'package.json', JSON.stringify({ type: 'module' }));
    for (const [rel, text] of Object.entries(sc.files)) {
      if (text.startsWith('link:')) link(root, rel, text.slice(5));
      else write(root, rel, text);
    }
    settle(root);
    sc.edit(root);
    const r = cli(root, [], sc.env ?? {});
    assert.is(r.code, 0, r.stderr);
    assert.ok(!skipped(r), moduleNote(r));
    assert.is(read(root, 'out.txt'), sc.want);
  });
}

test('an import a tsconfig "paths" maps leaves no record, and its remapping is built', () => {
  const root = project();
  write(root, 'tsconfig.json', JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@cfg': ['./conf/a.ts'] } } }));
  write(root, 'conf/a.ts', `export const word = 'A';\n`);
  write(root, 'conf/b.ts', `export const word = 'B';\n`);
  write(root, 'targets/index.ts', `import { word } from '@cfg';\nexport default [{ outputs: ['out.txt'], run: 'echo ' + word + ' > out.txt' }];\n`);
  for (let i = 0; i < 2; i++) assert.match(moduleNote(cli(root)), /^run, not recorded: '@cfg' led to .*outside node_modules/);
  write(root, 'tsconfig.json', JSON.stringify({ compilerOptions: { baseUrl: '.', paths: { '@cfg': ['./conf/b.ts'] } } }));
  cli(root);
  assert.is(read(root, 'out.txt'), 'B\n');
});

test('a tsconfig extended without its .json is watched', () => {
  const root = project();
  write(root, 'tsconfig.json', JSON.stringify({ extends: './base' }));
  write(root, 'base.json', JSON.stringify({ compilerOptions: { strict: true } }));
  settle(root);
  write(root, 'base.json', JSON.stringify({ compilerOptions: { strict: false } }));
  const r = cli(root);
  assert.ok(!skipped(r), moduleNote(r));
});

test('a stat of a missing path, told not to throw, lets a record stand', () => {
  const root = project();
  write(root, 'targets/index.ts', `import fs from 'node:fs';\nconst st = fs.statSync('nothing-here', { throwIfNoEntry: false });\nexport default [{ outputs: ['out.txt'], run: 'echo ' + (st ? 1 : 0) + ' > out.txt' }];\n`);
  settle(root);
  write(root, 'nothing-here', '');
  const r = cli(root);
  assert.ok(!skipped(r), moduleNote(r));
  assert.is(read(root, 'out.txt'), '1\n');
});

test('a link to a module pointed elsewhere just before the build is not recorded', () => {
  const root = project();
  write(root, 'targets/v1.ts', `export const suffix = '-v1-';\n`);
  fs.rmSync(path.join(root, 'targets/helper.ts'));
  fs.symlinkSync('v1.ts', path.join(root, 'targets/helper.ts'));
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2100);
  fs.rmSync(path.join(root, 'targets/helper.ts'));
  fs.symlinkSync('v1.ts', path.join(root, 'targets/helper.ts')); // a new link: a new ctime
  const r = cli(root, [], { HUBMAKE_MODULE_RECORD: '' });
  assert.match(moduleNote(r), /^run, not recorded: .*helper\.ts changed while or just before/);
});

test('an environment variable it reads, and the -D definitions and goals, run it again', () => {
  const root = project();
  settle(root);
  const env = cli(root, [], { REC_WORD: 'w' });
  assert.ok(!skipped(env), moduleNote(env));
  assert.is(read(root, 'out/cfg.txt'), 'one-s1-noflagw\n');
  // A variable it never reads changes nothing.
  settle(root, [], { REC_WORD: 'w' });
  const other = cli(root, [], { REC_WORD: 'w', REC_UNREAD: 'x' });
  assert.ok(skipped(other), moduleNote(other));
  const def = cli(root, ['-D', 'd=D'], { REC_WORD: 'w' });
  assert.ok(!skipped(def), moduleNote(def));
  assert.is(read(root, 'out/cfg.txt'), 'one-s1-noflagwD\n');
  const goal = cli(root, ['out/cfg.txt'], { REC_WORD: 'w' });
  assert.ok(!skipped(goal), moduleNote(goal));
});

test('a touch of a module file, same bytes, still skips it', () => {
  const root = project();
  settle(root);
  const later = new Date(Date.now() + 5000);
  fs.utimesSync(path.join(root, 'targets/helper.ts'), later, later);
  fs.writeFileSync(path.join(root, 'targets/index.ts'), MODULE); // a new ctime, the same bytes
  const r = cli(root);
  assert.ok(skipped(r), moduleNote(r));
  assert.equal(started(r), []);
});

// What cannot be looked at again keeps every build running the module.
const refusals: Array<[string, string, RegExp]> = [
  ['the clock', `export default () => [{ outputs: ['o'], run: 'echo ' + (Date.now() > 0 ? 1 : 0) + ' > o' }];\n`, /Date\.now/],
  ['new Date()', `export default () => [{ outputs: ['o'], run: 'echo ' + new Date().getFullYear() + ' > o' }];\n`, /new Date\(\)/],
  ['randomness', `export default () => [{ outputs: ['o'], run: 'echo ' + (Math.random() >= 0 ? 1 : 0) + ' > o' }];\n`, /Math\.random/],
  ['a child process', `import { execSync } from 'node:child_process';\nexport default () => [{ outputs: ['o'], run: 'echo ' + execSync('echo 1').toString().trim() + ' > o' }];\n`, /child_process\.execSync/],
  ['a write', `import fs from 'node:fs';\nfs.writeFileSync('gen.txt', 'x');\nexport default [{ outputs: ['o'], inputs: ['gen.txt'], run: 'cp gen.txt o' }];\n`, /fs\.writeFileSync/],
  ['an asynchronous read', `import { readFile } from 'node:fs/promises';\nconst t = await readFile(new URL('../cfg.json', import.meta.url), 'utf8');\nexport default [{ outputs: ['o'], run: 'echo ' + t.length + ' > o' }];\n`, /fs\.promises\.readFile|fs\.readFile/],
  ['a change to the environment', `process.env.SET_BY_MODULE = '1';\nexport default [{ outputs: ['o'], run: 'echo 1 > o' }];\n`, /process\.env/],
  ['a read through a descriptor', `import fs from 'node:fs';\nconst fd = fs.openSync(new URL('../cfg.json', import.meta.url), 'r');\nfs.closeSync(fd);\nexport default [{ outputs: ['o'], run: 'echo 1 > o' }];\n`, /fs\.openSync/],
  ['standard input', `process.stdin.on('data', () => {});\nprocess.stdin.destroy();\nexport default [{ outputs: ['o'], run: 'echo 1 > o' }];\n`, /standard input/],
  ['a worker', `import { Worker } from 'node:worker_threads';\nnew Worker('1', { eval: true }).unref();\nexport default [{ outputs: ['o'], run: 'echo 1 > o' }];\n`, /new worker_threads\.Worker/],
  ['a read of something other than a regular file', `import fs from 'node:fs';\nfs.mkfifo;\nconst t = fs.readFileSync('/dev/null', 'utf8');\nexport default [{ outputs: ['o'], run: 'echo ' + t.length + ' > o' }];\n`, /not a regular file/],
  ['the present, formatted by Intl', `const d = new Intl.DateTimeFormat('en-CA').format();\nexport default [{ outputs: ['o'], run: 'echo ' + d + ' > o' }];\n`, /Intl\.DateTimeFormat/],
  ['performance.timeOrigin', `const t = performance.timeOrigin;\nexport default [{ outputs: ['o'], run: 'echo ' + (t > 0 ? 1 : 0) + ' > o' }];\n`, /performance\.timeOrigin/],
  ['the process id', `export default [{ outputs: ['o'], run: 'echo ' + (process.pid > 0 ? 1 : 0) + ' > o' }];\n`, /process\.pid/],
  ['an import of node:process', `import { ppid } from 'node:process';\nexport default [{ outputs: ['o'], run: 'echo ' + (ppid > 0 ? 1 : 0) + ' > o' }];\n`, /process/],
  ['a new vm context', `import vm from 'node:vm';\nconst r = vm.runInNewContext('1 + 1');\nexport default [{ outputs: ['o'], run: 'echo ' + r + ' > o' }];\n`, /vm\.runInNewContext/],
  ['a package loaded before the evaluation', `import { dynamicImport } from '../dynamic-import.ts';\nexport default [{ outputs: ['o'], run: 'echo ' + typeof dynamicImport + ' > o' }];\n`, /loaded before/],
];
for (const [what, source, why] of refusals) {
  test(`${what}: no record, every build runs the module`, () => {
    const root = project();
    write(root, 'targets/index.ts', source);
    write(root, 'cfg.json', '{}');
    if (what.startsWith('a package')) {
      // The engine's own module, loaded (from the sources) before any targets module.
      fs.symlinkSync(path.join(path.dirname(path.dirname(new URL(import.meta.url).pathname)), 'engine/dynamic-import.ts'), path.join(root, 'dynamic-import.ts'));
    }
    for (let i = 0; i < 3; i++) {
      const r = cli(root, [], what.startsWith('a package') ? { HUBMAKE_SOURCES: '1' } : {});
      assert.is(r.code, 0, r.stderr);
      assert.match(moduleNote(r), /^run, not recorded: /);
      assert.match(moduleNote(r), why);
    }
    assert.is(readStamp(path.join(root, '.hubmake'))?.head.modules, undefined);
  });
}

test('a module file changed just before its evaluation is not recorded until it has settled', () => {
  const root = project();
  const env = { HUBMAKE_MODULE_RECORD: '' }; // the default: 2,000 ms
  const first = cli(root, [], env);
  assert.is(first.code, 0, first.stderr);
  assert.match(moduleNote(first), /^run, not recorded: .*changed while or just before/);
  const again = cli(root, [], env);
  assert.match(moduleNote(again), /^run, not recorded: /);
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2100);
  // A no-op whose stamp has no record adds one (under the lock)...
  const noop = cli(root, [], env);
  assert.is(moduleNote(noop), 'run and recorded');
  assert.is(readStamp(path.join(root, '.hubmake'))?.head.modules?.length, 1);
  const skip = cli(root, [], env);
  assert.ok(skipped(skip), moduleNote(skip));
});

test('a no-op does not add a record while another build holds the lock', () => {
  const root = project();
  const first = cli(root, [], { HUBMAKE_MODULE_RECORD: 'off' });
  assert.is(first.code, 0, first.stderr);
  assert.is(readStamp(path.join(root, '.hubmake'))?.head.modules, undefined);
  // This test process is alive: its lock is held.
  fs.writeFileSync(path.join(root, '.hubmake/lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), started: new Date(0).toISOString() }));
  const held = cli(root);
  assert.is(held.code, 0, held.stderr);
  assert.match(moduleNote(held), /not kept \(another build holds the lock\)/);
  assert.is(readStamp(path.join(root, '.hubmake'))?.head.modules, undefined);
  fs.rmSync(path.join(root, '.hubmake/lock'));
  const free = cli(root);
  assert.is(moduleNote(free), 'run and recorded');
  assert.ok(skipped(cli(root)));
});

test('builds through two runtimes keep a record each', () => {
  const root = project();
  settle(root);
  // Another way of starting the build: other flags, which the record holds.
  const other = (): CliResult => {
    const r = spawnSync(process.execPath, ['--no-warnings', '--import', 'tsx', BUILD_TS, '-C', root, '--json'], { cwd: root, encoding: 'utf8', env: { ...process.env, ...ENV } });
    return { code: r.status, stdout: r.stdout, stderr: r.stderr, events: parseEvents(r.stdout) };
  };
  const first = other();
  assert.is(first.code, 0, first.stderr);
  assert.is(moduleNote(first), 'run and recorded');
  assert.is(readStamp(path.join(root, '.hubmake'))?.head.modules?.length, 2);
  for (let i = 0; i < 2; i++) {
    const a = cli(root);
    assert.ok(skipped(a), moduleNote(a));
    const b = other();
    assert.ok(skipped(b), moduleNote(b));
  }
  // An edit both read: each runtime runs it again once, then skips it.
  write(root, 'cfg.json', JSON.stringify({ word: 'two' }));
  assert.ok(!skipped(cli(root)));
  assert.ok(!skipped(other()));
  assert.ok(skipped(cli(root)));
  assert.ok(skipped(other()));
  assert.is(read(root, 'out/cfg.txt'), 'two-s1-noflag\n');
});

test('a damaged record in the stamp is no record', () => {
  const root = project();
  settle(root);
  const file = path.join(root, '.hubmake/settled.stamp');
  const bytes = fs.readFileSync(file);
  const at = bytes.indexOf(10);
  const head = JSON.parse(bytes.toString('utf8', 0, at));
  const [rec] = head.modules;
  for (const bad of ['x', [{ v: 1 }], ['x'], [{ ...rec, seen: [['m', 42, 'x']] }], [{ ...rec, seen: [['zz', '/', 'x']] }], [{ ...rec, output: [[3, 'x']] }]]) {
    fs.writeFileSync(file, Buffer.concat([Buffer.from(JSON.stringify({ ...head, modules: bad }) + '\n'), bytes.subarray(at + 1)]));
    const r = cli(root);
    assert.is(r.code, 0, r.stderr);
    assert.ok(!skipped(r), moduleNote(r));
    assert.equal(started(r), []);
  }
});

// In one process (main() called again, as tests and the property test do): a build that needs the
// targets while a record stands takes the evaluation that record was made from, not Node's first.
test('in one process, a build after a new record uses the latest evaluation', async () => {
  const root = project();
  write(root, 'targets/index.ts', `import fs from 'node:fs';\nconst cfg = JSON.parse(fs.readFileSync(${JSON.stringify(root)} + '/cfg.json', 'utf8'));\nexport default [{ outputs: ['out.txt'], run: 'echo ' + cfg.word + ' > out.txt' }];\n`);
  const old = Date.now() / 1000 - 60;
  for (const f of ['targets/index.ts', 'cfg.json']) fs.utimesSync(path.join(root, f), old, old);
  const saved = process.env.HUBMAKE_MODULE_RECORD;
  process.env.HUBMAKE_MODULE_RECORD = '0';
  const build = async (): Promise<string> => {
    let out = '';
    const w = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((c: string) => ((out += c), true)) as typeof process.stdout.write;
    try {
      assert.is(await main(['-C', root, '--json']), 0);
    } finally {
      process.stdout.write = w;
    }
    return String(parseEvents(out).find((e) => e.type === 'build-start')?.module);
  };
  try {
    assert.is(await build(), 'run and recorded');
    assert.is(read(root, 'out.txt'), 'one\n');
    write(root, 'cfg.json', JSON.stringify({ word: 'two' }));
    assert.is(await build(), 'run and recorded');
    assert.is(read(root, 'out.txt'), 'two\n');
    fs.rmSync(path.join(root, 'out.txt'));
    assert.is(await build(), 'run for its targets; its record stands');
    assert.is(read(root, 'out.txt'), 'two\n');
    assert.match(await build(), /^skipped/);
  } finally {
    if (saved === undefined) delete process.env.HUBMAKE_MODULE_RECORD;
    else process.env.HUBMAKE_MODULE_RECORD = saved;
  }
});

test.run();
