// The compiled engine (dist/engine, `npm run bundle`): a build uses it only while it matches the
// sources byte for byte, and it behaves as the sources do. Runs on a copy of the project, so the
// real checkout's bundle is never rebuilt or shadowed under other tests.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseEvents, REPO, tempRoot, write } from './lib/cli.ts';

function projectCopy(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-project-'));
  for (const f of ['build.ts', 'package.json', 'engine', 'scripts']) fs.cpSync(path.join(REPO, f), path.join(dir, f), { recursive: true });
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

function build(project: string, root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(project, 'build.ts'), '-C', root, '--json', ...args], {
    cwd: root, encoding: 'utf8', env: { ...process.env, HUBMAKE_TIMING: '1', ...env }, timeout: 60_000,
  });
  const engine = /hubmake-engine: (.*)/.exec(r.stderr)?.[1] ?? '';
  const ran = parseEvents(r.stdout).filter((e) => e.type === 'start').map((e) => String(e.target)).sort();
  return { code: r.status, engine, ran, stderr: r.stderr };
}

const MODULE = `export default [
  { outputs: ['a.txt'], inputs: ['src.txt'], run: 'cp src.txt a.txt' },
  { outputs: ['b.txt'], inputs: ['a.txt'], run: async (ctx) => { const fs = await import('node:fs'); fs.writeFileSync(ctx.root + '/b.txt', fs.readFileSync(ctx.root + '/a.txt', 'utf8').toUpperCase()); } },
];
`;

test('after npm run bundle a build runs the compiled engine; an edited source sends it back to the sources', () => {
  const project = projectCopy();
  const root = tempRoot('hubmake-compiled-');
  write(root, 'targets/index.ts', MODULE);
  write(root, 'src.txt', 'one\n');

  const none = build(project, root);
  assert.is(none.code, 0, none.stderr);
  assert.match(none.engine, /^sources \(no compiled engine/);
  assert.equal(none.ran, ['a.txt', 'b.txt']);

  const b = spawnSync('npm', ['run', '--silent', 'bundle'], { cwd: project, encoding: 'utf8' });
  assert.is(b.status, 0, b.stderr);
  assert.ok(fs.existsSync(path.join(project, 'dist/engine/manifest.json')));

  // The compiled engine sees the sources' state as its own: nothing to do.
  const noop = build(project, root);
  assert.is(noop.engine, 'compiled');
  assert.equal(noop.ran, []);
  write(root, 'src.txt', 'two\n');
  const edit = build(project, root);
  assert.is(edit.engine, 'compiled');
  assert.equal(edit.ran, ['a.txt', 'b.txt']);
  assert.is(fs.readFileSync(path.join(root, 'b.txt'), 'utf8'), 'TWO\n');

  // A touch does not matter; a changed byte does.
  const f = path.join(project, 'engine/errors.ts');
  fs.utimesSync(f, new Date(), new Date(Date.now() + 5000));
  assert.is(build(project, root).engine, 'compiled');
  fs.appendFileSync(f, '// edited\n');
  const stale = build(project, root);
  assert.is(stale.engine, 'sources (engine/errors.ts changed since the engine was compiled (npm run bundle))');
  assert.equal(stale.ran, []);
  assert.match(build(project, root, [], { HUBMAKE_SOURCES: '1' }).engine, /^sources \(HUBMAKE_SOURCES/);

  fs.rmSync(project, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

test('the compiled engine matches globs with the fast-glob and picomatch bundled beside it, not those of node_modules', () => {
  const project = projectCopy();
  const b = spawnSync('npm', ['run', '--silent', 'bundle'], { cwd: project, encoding: 'utf8' });
  assert.is(b.status, 0, b.stderr);
  assert.ok(fs.existsSync(path.join(project, 'dist/engine/globs.cjs')));
  // node_modules without the two packages: only the bundled file can match the patterns.
  fs.rmSync(path.join(project, 'node_modules'));
  fs.mkdirSync(path.join(project, 'node_modules'));
  for (const p of fs.readdirSync(path.join(REPO, 'node_modules'))) {
    if (p !== 'fast-glob' && p !== 'picomatch') fs.symlinkSync(path.join(REPO, 'node_modules', p), path.join(project, 'node_modules', p));
  }
  const root = tempRoot('hubmake-compiled-globs-');
  write(root, 'targets/index.ts', `export default [{ outputs: ['all.txt'], inputs: ['src/*.txt'], run: 'cat src/*.txt > all.txt' }];\n`);
  write(root, 'src/a.txt', 'a\n');
  const first = build(project, root);
  assert.is(first.code, 0, first.stderr);
  assert.is(first.engine, 'compiled');
  assert.equal(first.ran, ['all.txt']);
  write(root, 'src/b.txt', 'b\n');
  assert.equal(build(project, root).ran, ['all.txt'], 'a new match reruns the target');
  assert.equal(build(project, root).ran, []);
  // The sources have no such file beside them: deciding the glob needs the packages (the settled
  // stamp would answer without matching it), and the error says which is missing.
  const sources = build(project, root, [], { HUBMAKE_SOURCES: '1', HUBMAKE_NOOP_SHORTCUT: 'off' });
  assert.is.not(sources.code, 0);
  assert.match(sources.stderr, /fast-glob|picomatch/);
  fs.rmSync(project, { recursive: true, force: true });
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
