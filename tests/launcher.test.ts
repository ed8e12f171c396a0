// The command launcher with the native program (engine/launcher.c), which `npm install` compiles
// where a C compiler is: the tests of tests/lib/launcher-suite.ts, plus that it is built and used.
// launcher-bash.test.ts runs the same tests with the bash launcher, the fallback.
import { spawnSync } from 'node:child_process';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { launcherFor } from '../engine/launcher.ts';
import { launcherSuite } from './lib/launcher-suite.ts';

const compiler = ['cc', 'gcc'].find((c) => !spawnSync(c, ['--version']).error);

test('npm install compiled the native launcher where a C compiler is, and builds start their commands through it', () => {
  const p = launcherFor({});
  if (compiler) assert.is(p?.kind, 'native', `${compiler} is here, but no native launcher of engine/launcher.c's version is built (npm run bundle)`);
  else assert.is(p?.kind, 'bash', 'without a C compiler the bash launcher is used');
  assert.is(launcherFor({ HUBMAKE_LAUNCHER: 'bash' })?.kind, 'bash');
  assert.is(launcherFor({ HUBMAKE_LAUNCHER: 'off' }), undefined);
  // The bash launcher cannot pass on exported functions; the native one runs no bash of its own.
  assert.is(launcherFor({ HUBMAKE_LAUNCHER: 'bash', 'BASH_FUNC_f%%': '() { :; }' }), undefined);
  if (p?.kind === 'native') assert.is(launcherFor({ 'BASH_FUNC_f%%': '() { :; }' })?.kind, 'native');
});

test.run();

// Not when this run's environment picks another launcher (HUBMAKE_LAUNCHER=bash or off).
if (launcherFor(process.env)?.kind === 'native') launcherSuite('native');
