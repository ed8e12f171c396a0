// Watch mode reloads the graph when the targets module, a module it imports, or its configuration
// changes, rebuilds only what the new declarations changed, and survives a broken module.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { read, tempRoot, write } from './lib/cli.ts';
import { WatchSession } from './lib/watch-session.ts';

const INDEX = (extra = '') => `
import { readFileSync } from 'node:fs';
import { copy } from './rules.ts';
export default () => {
  const cfg = JSON.parse(readFileSync(new URL('../hub.config.json', import.meta.url), 'utf8'));
  return [
    { outputs: ['out/x.txt'], inputs: ['src/x.txt'], params: cfg.x, run: copy('x') },
    { outputs: ['out/y.txt'], inputs: ['src/y.txt'], params: cfg.y, run: 'mkdir -p out && cp src/y.txt out/y.txt' },${extra}
  ];
};
`;

test('watch: module, imported rules and configuration reload the graph; a broken module keeps the last good graph', async () => {
  const r = tempRoot('hubmake-watch-reload-');
  write(r, 'targets/index.ts', INDEX());
  write(r, 'targets/rules.ts', `export const copy = (n: string) => \`mkdir -p out && cp src/\${n}.txt out/\${n}.txt\`;\n`);
  write(r, 'hub.config.json', JSON.stringify({ x: { lr: 1 }, y: { lr: 1 } }));
  write(r, 'src/x.txt', 'x\n');
  write(r, 'src/y.txt', 'y\n');
  const w = new WatchSession(r, ['-j', '1']);
  try {
    await w.waitFor(0, (e) => e.type === 'watch-ready', 'the first build');
    assert.equal(w.started(0), ['out/x.txt', 'out/y.txt']);

    // A rule imported by the module changes one command: only that target runs.
    let m = w.mark();
    write(r, 'targets/rules.ts', `export const copy = (n: string) => \`mkdir -p out && cp src/\${n}.txt out/\${n}.txt && echo v2 >> out/\${n}.txt\`;\n`);
    await w.idleAfter(m, 'editing rules.ts');
    assert.ok(w.since(m, 'watch-change').some((e) => e.reload === true));
    assert.is(w.since(m, 'watch-reload').length, 1);
    assert.equal(w.started(m), ['out/x.txt']);
    assert.is(read(r, 'out/x.txt'), 'x\nv2\n');

    // The configuration: one target's params change, only it runs.
    m = w.mark();
    write(r, 'hub.config.json', JSON.stringify({ x: { lr: 1 }, y: { lr: 2 } }));
    await w.idleAfter(m, 'editing hub.config.json');
    assert.equal(w.started(m), ['out/y.txt']);

    // A broken module: the error is reported and watch mode goes on with the last good graph.
    m = w.mark();
    write(r, 'targets/index.ts', INDEX() + '\nexport const broken = ;\n');
    await w.waitFor(m, (e) => e.type === 'watch-reload-error', 'the reload error');
    assert.is(w.started(m).length, 0);
    m = w.mark();
    write(r, 'src/y.txt', 'y2\n');
    await w.idleAfter(m, 'editing an input while the module is broken');
    assert.equal(w.started(m), ['out/y.txt']);
    assert.is(read(r, 'out/y.txt'), 'y2\n');

    // The fix is picked up: the new target is built, the others stay fresh.
    m = w.mark();
    write(r, 'src/z.txt', 'z\n');
    write(r, 'targets/index.ts', INDEX(`\n    { outputs: ['out/z.txt'], inputs: ['src/z.txt'], run: copy('z') },`));
    await w.idleAfter(m, 'fixing the module');
    const reload = await w.waitFor(m, (e) => e.type === 'watch-reload', 'the reload');
    assert.equal(reload.added, ['out/z.txt']);
    assert.equal(w.started(m), ['out/z.txt']);

    // The new target's inputs are watched from now on.
    m = w.mark();
    write(r, 'src/z.txt', 'z2\n');
    await w.idleAfter(m, 'editing the new target\'s input');
    assert.equal(w.started(m), ['out/z.txt']);
    assert.is(read(r, 'out/z.txt'), 'z2\nv2\n');

    assert.is(await w.interrupt(), 130);
  } finally {
    w.child.kill('SIGKILL');
  }
});

test.run();
