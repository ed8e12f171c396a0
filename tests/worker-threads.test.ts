// The engine's two worker threads, through the real command line: stats taken ahead
// (engine/prefetch.ts; the threshold lowered with HUBMAKE_STAT_AHEAD=1,wait so that a small graph
// uses them; the property test runs one seed the same way), and big files read ahead
// (engine/read-ahead.ts; its digests and errors are tested in engine-unit).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read, started, tempRoot, write } from './lib/cli.ts';

const AHEAD = { HUBMAKE_STAT_AHEAD: '1,wait', HUBMAKE_NOOP_SHORTCUT: 'off' };

function build(root: string, env: NodeJS.ProcessEnv) {
  const r = cli(root, ['--json', '--no-cache', '-j', '1'], env);
  assert.is(r.code, 0, r.stdout + r.stderr);
  const end = r.events.find((e) => e.type === 'build-end')!;
  return { ran: started(r), statsAhead: Number(end.statsAhead ?? 0), stdout: r.stdout };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a no-op decided per target takes its stats from the worker; below the threshold no worker is started', async () => {
  const root = tempRoot('hubmake-ahead-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['out/a.txt'], inputs: ['src/a.txt'], run: 'mkdir -p out && cp src/a.txt out/a.txt' },
  { outputs: ['out/b.txt'], inputs: ['out/a.txt', 'src/b.txt'], run: 'cat out/a.txt src/b.txt > out/b.txt' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  write(root, 'src/b.txt', 'b\n');
  build(root, {});
  await sleep(150);
  const noop = build(root, AHEAD);
  assert.equal(noop.ran, []);
  // src/a.txt, out/a.txt, src/b.txt, out/b.txt: each stat'ed once, all by the worker.
  assert.is(noop.statsAhead, 4);
  assert.is(build(root, { HUBMAKE_NOOP_SHORTCUT: 'off' }).statsAhead, 0);
  assert.is(build(root, { ...AHEAD, HUBMAKE_STAT_AHEAD: 'off' }).statsAhead, 0);
  fs.rmSync(root, { recursive: true, force: true });
});

test('once a target has run, no stat taken before it is used: a file its command wrote undeclared is seen by the target that reads it', async () => {
  const root = tempRoot('hubmake-ahead-undeclared-');
  // writer declares only out/w.txt but also rewrites side.txt; reader reads side.txt after it.
  write(root, 'targets/index.ts', `export default [
  { name: 'writer', outputs: ['out/w.txt'], inputs: ['src/w.txt'], run: 'mkdir -p out && cp src/w.txt out/w.txt && cp src/w.txt side.txt' },
  { outputs: ['out/r.txt'], inputs: ['side.txt'], deps: ['writer'], run: 'cp side.txt out/r.txt' },
];
`);
  write(root, 'src/w.txt', 'v1\n');
  write(root, 'side.txt', 'v0\n');
  build(root, {});
  // Past the racy window, so that side.txt's stat cache entry vouches for its bytes by its stat.
  await sleep(150);
  assert.equal(build(root, AHEAD).ran, []);
  write(root, 'src/w.txt', 'v2\n');
  const b = build(root, AHEAD);
  assert.equal(b.ran, ['out/r.txt', 'writer']);
  assert.is(read(root, 'out/r.txt'), 'v2\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('a build that hashes a big file through the reader thread ends as soon as its work does', () => {
  const root = tempRoot('hubmake-ahead-big-');
  write(root, 'targets/index.ts', `export default [{ outputs: ['size.txt'], inputs: ['big.bin'], run: 'wc -c < big.bin > size.txt' }];\n`);
  // Sparse: 80 MiB of zeros, past the 64 MiB from which the reader thread may read ahead.
  fs.closeSync(fs.openSync(path.join(root, 'big.bin'), 'w'));
  fs.truncateSync(path.join(root, 'big.bin'), 80 << 20);
  const t0 = Date.now();
  const first = build(root, {});
  assert.equal(first.ran, ['size.txt']);
  assert.is(read(root, 'size.txt').trim(), String(80 << 20));
  // The thread is unref'd: an idle reader never keeps the process (test timeout: 120 s).
  assert.ok(Date.now() - t0 < 60_000, `the build took ${Date.now() - t0} ms`);
  fs.appendFileSync(path.join(root, 'big.bin'), 'x');
  assert.equal(build(root, {}).ran, ['size.txt'], 'one more byte at the end reruns it');
  // A touch: the stat cache no longer vouches for it, so the main thread hashes it again, and a
  // different digest would rerun the target.
  const later = new Date(Date.now() + 2000);
  fs.utimesSync(path.join(root, 'big.bin'), later, later);
  assert.equal(build(root, { HUBMAKE_READ_AHEAD: 'off' }).ran, [], 'the main thread hashes it to the same digest');
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
