// Watch mode end to end: the real CLI with --watch --json in a temporary root, real file-system
// events, and assertions on which builds and which targets followed each edit.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { read, tempRoot, write } from './lib/cli.ts';
import { WatchSession } from './lib/watch-session.ts';

const MODULE = `
export default [
  { outputs: ['out/a.txt'], inputs: ['src/a.txt'], run: 'mkdir -p out && cp src/a.txt out/a.txt' },
  { outputs: ['out/b.txt'], inputs: ['src/b.txt'], run: 'mkdir -p out && cp src/b.txt out/b.txt' },
  { outputs: ['out/csv.txt'], inputs: ['data/*.csv'], run: 'mkdir -p out && cat data/*.csv > out/csv.txt' },
  // An output inside the glob's directory: the build writing it must not trigger another build.
  { outputs: ['data/sum.csv'], inputs: ['src/a.txt'], run: 'wc -c < src/a.txt | tr -d " " > data/sum.csv' },
  { outputs: ['out/all.txt'], inputs: ['out/a.txt', 'out/b.txt'], run: 'cat out/a.txt out/b.txt > out/all.txt' },
  { outputs: ['out/f.txt'], inputs: ['src/f.txt'], run: 'grep -q ok src/f.txt && cp src/f.txt out/f.txt' },
  { outputs: ['out/slow.txt'], inputs: ['src/slow.txt'], run: 'sleep 1.5 && cp src/slow.txt out/slow.txt' },
];
`;

function root(): string {
  const r = tempRoot('hubmake-watch-');
  write(r, 'targets/index.ts', MODULE);
  write(r, 'src/a.txt', 'a\n');
  write(r, 'src/b.txt', 'b\n');
  write(r, 'src/f.txt', 'ok\n');
  write(r, 'src/slow.txt', 'slow 0\n');
  write(r, 'data/x.csv', '1\n');
  return r;
}

test('watch: one rebuild of what an edit made stale, none for outputs, globs, bursts, failures, queued follow-ups, Ctrl-C', async () => {
  const r = root();
  const w = new WatchSession(r, ['-j', '2']);
  try {
    await w.waitFor(0, (e) => e.type === 'watch-ready', 'the first build');
    assert.equal(w.started(0), ['data/sum.csv', 'out/a.txt', 'out/all.txt', 'out/b.txt', 'out/csv.txt', 'out/f.txt', 'out/slow.txt']);

    // An edited input: exactly one build, of that target and what depends on it.
    let m = w.mark();
    write(r, 'src/a.txt', 'a2\n');
    await w.idleAfter(m, 'editing src/a.txt');
    await w.quiet(400);
    assert.is(w.since(m, 'build-start').length, 1, 'one build');
    assert.equal(w.started(m), ['data/sum.csv', 'out/a.txt', 'out/all.txt', 'out/csv.txt']);
    assert.equal(w.since(m, 'watch-change')[0]!.targets, ['data/sum.csv', 'out/a.txt']);
    assert.is(read(r, 'out/all.txt'), 'a2\nb\n');

    // Writing an output (or its log) is never a change.
    m = w.mark();
    write(r, 'out/b.txt', 'scribbled\n');
    write(r, 'data/sum.csv', '99\n');
    write(r, 'out/new-unrelated.txt', 'x\n');
    await w.quiet(800);
    assert.equal(w.since(m).map((e) => e.type), [], 'no event after writing outputs');

    // A new file matching a glob input.
    m = w.mark();
    write(r, 'data/y.csv', '2\n');
    await w.idleAfter(m, 'adding data/y.csv');
    assert.equal(w.started(m), ['out/csv.txt']);
    assert.ok(read(r, 'out/csv.txt').endsWith('1\n2\n'), read(r, 'out/csv.txt'));

    // A burst of 50 saves: one build (two at most, if the burst straddles a quiet period).
    m = w.mark();
    for (let i = 0; i < 50; i++) {
      write(r, 'src/b.txt', `b${i}\n`);
      await new Promise((res) => setTimeout(res, 3));
    }
    await w.idleAfter(m, 'the burst');
    await w.quiet(600);
    const builds = w.since(m, 'build-start').length;
    assert.ok(builds >= 1 && builds <= 2, `builds after 50 saves: ${builds}`);
    assert.ok(w.since(m, 'start').filter((e) => e.target === 'out/b.txt').length <= 2);
    assert.is(read(r, 'out/b.txt'), 'b49\n');

    // A failed target does not end watch mode and is retried when its inputs change.
    m = w.mark();
    write(r, 'src/f.txt', 'bad\n');
    await w.idleAfter(m, 'breaking src/f.txt');
    assert.ok(w.since(m, 'finish').some((e) => e.target === 'out/f.txt' && e.status === 'failed'));
    m = w.mark();
    write(r, 'src/a.txt', 'a3\n'); // an unrelated change does not retry the failed target
    await w.idleAfter(m, 'editing src/a.txt again');
    assert.equal(w.started(m), ['data/sum.csv', 'out/a.txt', 'out/all.txt', 'out/csv.txt']);
    m = w.mark();
    write(r, 'src/f.txt', 'ok again\n');
    await w.idleAfter(m, 'fixing src/f.txt');
    assert.ok(w.since(m, 'finish').some((e) => e.target === 'out/f.txt' && e.status === 'built'));
    assert.is(read(r, 'out/f.txt'), 'ok again\n');

    // Changes during a build queue exactly one follow-up build, with the last content.
    m = w.mark();
    write(r, 'src/slow.txt', 'slow 1\n');
    await w.waitFor(m, (e) => e.type === 'start' && e.target === 'out/slow.txt', 'the slow target to start');
    write(r, 'src/slow.txt', 'slow 2\n');
    await w.quiet(300);
    write(r, 'src/slow.txt', 'slow 3\n');
    await w.waitFor(m, (e) => e.type === 'watch-change' && e.queued === true, 'a queued change');
    const first = await w.waitFor(m, (e) => e.type === 'build-end', 'the first slow build');
    await w.idleAfter(w.events.indexOf(first) + 1, 'the follow-up build');
    await w.quiet(500);
    assert.is(w.since(m, 'build-start').length, 2, 'the build and one follow-up');
    assert.is(w.since(m, 'start').filter((e) => e.target === 'out/slow.txt').length, 2);
    assert.is(read(r, 'out/slow.txt'), 'slow 3\n');

    // Ctrl-C while idle: exit 130, no lock left behind.
    const code = await w.interrupt();
    assert.is(code, 130, w.stderr);
    assert.not.ok(fs.existsSync(path.join(r, '.hubmake/lock')), 'lock released');
  } finally {
    w.child.kill('SIGKILL');
  }
});

test('watch: Ctrl-C during a long command kills its process group, saves state, releases the lock, exits 130', async () => {
  const r = tempRoot('hubmake-watch-int-');
  write(r, 'targets/index.ts', `export default [
    { outputs: ['out/quick.txt'], inputs: ['src/q.txt'], run: 'mkdir -p out && cp src/q.txt out/quick.txt' },
    { outputs: ['out/long.txt'], inputs: ['src/l.txt'], run: 'mkdir -p out; sleep 60 & echo $! > out/long.pid; wait' },
  ];`);
  write(r, 'src/q.txt', 'q\n');
  write(r, 'src/l.txt', 'l\n');
  const w = new WatchSession(r, ['-j', '2']);
  try {
    await w.waitFor(0, (e) => e.type === 'start' && e.target === 'out/long.txt', 'the long command');
    await w.waitFor(0, (e) => e.type === 'finish' && e.target === 'out/quick.txt', 'the quick target');
    // The shell creates the pid file before it writes the pid: wait for the number, not the file.
    const pidOf = () => { try { return Number(read(r, 'out/long.pid').trim()) || 0; } catch { return 0; } };
    for (let i = 0; i < 100 && pidOf() === 0; i++) await w.quiet(100);
    const pid = pidOf();
    assert.ok(pid > 0, `the long command wrote its background child's pid (${JSON.stringify(fs.existsSync(path.join(r, 'out/long.pid')) ? read(r, 'out/long.pid') : null)})`);
    const code = await w.interrupt();
    assert.is(code, 130, w.stderr);
    assert.not.ok(fs.existsSync(path.join(r, '.hubmake/lock')), 'lock released');
    await w.quiet(300);
    // Gone, or a zombie waiting for a reaper (a container's init may be slow to reap orphans).
    let state = '';
    try {
      const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
      state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
    } catch { /* gone */ }
    assert.ok(state === '' || state === 'Z', `the command's background child was killed with its process group (state '${state}')`);
    // State saved: the quick target is recorded, so a plain build only runs the interrupted one.
    const log = read(r, '.hubmake/log.jsonl');
    assert.ok(log.includes('out/quick.txt'), 'the quick target is in the state log');
  } finally {
    w.child.kill('SIGKILL');
  }
});

test('watch --watch-restart: a running target whose input changes is cancelled and started again', async () => {
  const r = tempRoot('hubmake-watch-restart-');
  write(r, 'targets/index.ts', `export default [
    { outputs: ['out/s.txt'], inputs: ['src/s.txt'], run: 'sleep 3 && mkdir -p out && cp src/s.txt out/s.txt' },
    { outputs: ['out/t.txt'], inputs: ['src/t.txt'], run: 'sleep 1.5 && mkdir -p out && cp src/t.txt out/t.txt' },
  ];`);
  write(r, 'src/s.txt', 's0\n');
  write(r, 'src/t.txt', 't0\n');
  const w = new WatchSession(r, ['-j', '2', '--watch-restart', '--debounce', '100']);
  try {
    await w.waitFor(0, (e) => e.type === 'start' && e.target === 'out/s.txt', 'the first run of out/s.txt');
    write(r, 'src/s.txt', 's1\n');
    await w.waitFor(0, (e) => e.type === 'watch-cancel' && e.target === 'out/s.txt', 'the cancel');
    await w.waitFor(0, (e) => e.type === 'finish' && e.target === 'out/s.txt' && e.status === 'interrupted', 'the interrupted finish');
    // The other running target was not touched by the change and finishes its run.
    await w.waitFor(0, (e) => e.type === 'finish' && e.target === 'out/t.txt' && e.status === 'built', 'out/t.txt to finish');
    await w.waitFor(0, (e) => e.type === 'finish' && e.target === 'out/s.txt' && e.status === 'built', 'the rerun of out/s.txt');
    assert.is(read(r, 'out/s.txt'), 's1\n');
    assert.is(w.events.filter((e) => e.type === 'start' && e.target === 'out/t.txt').length, 1, 'out/t.txt ran once');
    assert.is(await w.interrupt(), 130);
  } finally {
    w.child.kill('SIGKILL');
  }
});

test.run();
