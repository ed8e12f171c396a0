// Narrowed builds (engine/narrow.ts): when the targets module's record stands and a few paths
// moved, the build validates, reads and decides only the targets those paths reach and their
// direct dependencies. Through the real command line: it must run exactly what a build of the
// whole graph runs, report the same decisions and counts, leave the same outputs and records, and
// hand over to the whole graph wherever the shape cannot speak.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { REPO, cli as runCli, cliAsync, parseEvents, read, started, tempRoot, write, type CliResult } from './lib/cli.ts';
import { readStamp, checkStamp } from '../engine/stamp.ts';
import { narrowedGraph, reach, validatedAt } from '../engine/narrow.ts';
import { runBuild } from '../engine/session.ts';
import { importTargets } from '../engine/load.ts';
import { StateStore, logRecords } from '../engine/state.ts';
import { Disk } from '../engine/disk.ts';

const CHAINS = 6;
const TARGETS = CHAINS * 4;
const ENV = { HUBMAKE_MODULE_RECORD: '0' };

/**
 * CHAINS chains of three copies from src/s<j>.txt, and m<j> joining chain j's end with the next
 * one's: an edit of src/s0.txt reaches chain 0, m0 and the m before it (5 of 24 targets).
 */
const MODULE = (extra = '') => `const N = ${CHAINS};
const specs = [];
for (let j = 0; j < N; j++) {
  specs.push({ outputs: ['out/c' + j + '_0'], inputs: ['src/s' + j + '.txt'], run: 'mkdir -p out && cp src/s' + j + '.txt out/c' + j + '_0' });
  for (let k = 1; k < 3; k++) specs.push({ outputs: ['out/c' + j + '_' + k], inputs: ['out/c' + j + '_' + (k - 1)], run: 'cp out/c' + j + '_' + (k - 1) + ' out/c' + j + '_' + k });
  const next = 'out/c' + ((j + 1) % N) + '_2';
  specs.push({ outputs: ['out/m' + j], inputs: ['out/c' + j + '_2', next], run: 'cat out/c' + j + '_2 ' + next + ' > out/m' + j });
}
${extra}
process.stderr.write('declared ' + specs.length + ' targets\\n');
export default specs;
`;

function project(extra = ''): string {
  const root = tempRoot('hubmake-narrow-');
  write(root, 'package.json', JSON.stringify({ type: 'module' }));
  write(root, 'targets/index.ts', MODULE(extra));
  for (let j = 0; j < CHAINS; j++) write(root, `src/s${j}.txt`, `source ${j}\n`);
  return root;
}

function cli(root: string, env: NodeJS.ProcessEnv = {}): CliResult {
  return runCli(root, ['--json'], { ...ENV, ...env });
}

const startOf = (r: CliResult) => r.events.find((e) => e.type === 'build-start') as { narrowed?: string; module?: string; targets?: number; runnable?: number; vouched?: number } | undefined;
const endOf = (r: CliResult) => r.events.find((e) => e.type === 'build-end') as { counts: Record<string, number>; settled?: boolean } | undefined;
const decisions = (r: CliResult) => r.events.filter((e) => e.type === 'decision').map((e) => `${String(e.target)} ${String(e.action)}`).sort();

/** A build, then a no-op that skips the module: from here on the record stands. */
function settle(root: string): void {
  const b = cli(root);
  assert.is(b.code, 0, b.stderr);
  const n = cli(root);
  assert.is(n.code, 0, n.stderr);
  assert.ok(String(startOf(n)?.module).startsWith('skipped'), String(startOf(n)?.module));
}

/** The same project in another root, as it stands (outputs and state included). */
function copy(root: string): string {
  const other = tempRoot('hubmake-narrow-copy-');
  for (const e of fs.readdirSync(root)) if (e !== 'node_modules') fs.cpSync(path.join(root, e), path.join(other, e), { recursive: true });
  return other;
}

const outputs = (root: string) => Object.fromEntries(fs.readdirSync(path.join(root, 'out')).sort().map((f) => [f, read(root, `out/${f}`)]));

/** Each target's last success, as the log holds it: its command, inputs, outputs. */
function successes(root: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const r of logRecords(root)) if (r.k === 'ok') out[r.t] = JSON.stringify([r.cmd, r.in, r.out]);
  return out;
}

test('an edit is narrowed: exactly what it reaches runs, and the build reads as one of the whole graph', () => {
  const root = project();
  settle(root);
  // The stamp (it is copied too) may only be used with this root's paths: the copy builds whole.
  write(root, 'src/s0.txt', 'edited 0\n');
  const whole = copy(root);
  const n = cli(root);
  const w = cli(whole, { HUBMAKE_NARROW: 'off' });
  assert.is(n.code, 0, n.stderr);
  assert.is(w.code, 0, w.stderr);
  assert.is(startOf(n)?.narrowed, `5 of ${TARGETS} targets to decide`);
  assert.is(startOf(w)?.narrowed, undefined);
  // The module was not run: what it printed is printed again, once.
  assert.is(startOf(n)?.module, 'skipped: nothing it read has changed');
  assert.is(n.stderr.split('declared 24 targets').length - 1, 1, n.stderr);
  assert.equal(started(n), ['out/c0_0', 'out/c0_1', 'out/c0_2', 'out/m0', 'out/m5']);
  assert.equal(started(n), started(w));
  // Every target decided once, as the whole graph decides them, and the same counts and totals.
  assert.equal(decisions(n), decisions(w));
  assert.is(decisions(n).length, TARGETS);
  assert.equal(endOf(n)?.counts, endOf(w)?.counts);
  assert.equal(endOf(n)?.counts, { built: 5, fresh: TARGETS - 5, kept: 0, failed: 0, blocked: 0, skipped: 0 });
  assert.is(startOf(n)?.targets, startOf(w)?.targets);
  assert.is(startOf(n)?.runnable, startOf(w)?.runnable);
  assert.is(startOf(n)?.vouched, TARGETS - 5);
  assert.equal(outputs(root), outputs(whole));
  assert.is(read(root, 'out/m5'), 'source 5\nedited 0\n');
  // The same records: the narrowed build appended only its targets', and kept every other one.
  assert.equal(successes(root), successes(whole));
  // Its stamp answers the next no-op, and the outline stands: the next edit is narrowed again.
  const again = cli(root);
  assert.ok(endOf(again)?.settled, JSON.stringify(endOf(again)));
  write(root, 'src/s3.txt', 'edited 3\n');
  const second = cli(root);
  assert.is(startOf(second)?.narrowed, `5 of ${TARGETS} targets to decide`);
  assert.equal(started(second), ['out/c3_0', 'out/c3_1', 'out/c3_2', 'out/m2', 'out/m3']);
  assert.is(read(root, 'out/m2'), 'source 2\nedited 3\n');
  // A deleted output and a hand-edited one: their producers run again.
  fs.rmSync(path.join(root, 'out/c4_1'));
  write(root, 'out/m1', 'by hand\n');
  const third = cli(root);
  assert.match(String(startOf(third)?.narrowed), /^\d+ of 24 targets to decide$/);
  assert.equal(started(third), ['out/c4_1', 'out/m1']);
  assert.is(read(root, 'out/m1'), 'source 1\nsource 2\n');
  assert.is(read(root, 'out/c4_1'), 'source 4\n');
});

test('the targets the stamp vouches for are counted as a build of the whole graph counts them, aliases included', () => {
  const root = project(`specs.push({ name: 'three', deps: ['out/m3'] });`);
  settle(root);
  write(root, 'src/s0.txt', 'edited 0\n');
  const n = cli(root);
  assert.is(startOf(n)?.narrowed, `5 of ${TARGETS + 1} targets to decide`);
  // All but the five it reaches: the alias too (a build of the whole graph: knownFresh).
  assert.is(startOf(n)?.vouched, TARGETS + 1 - 5);
  assert.is(startOf(n)?.targets, TARGETS + 1);
  assert.is(startOf(n)?.runnable, TARGETS);
});

test('what the shape cannot speak for is decided by the whole graph, with the reason', () => {
  const root = project();
  settle(root);
  // A moved input that is gone: the declaration error a build of the whole graph gives.
  fs.rmSync(path.join(root, 'src/s1.txt'));
  const gone = cli(root);
  assert.is(gone.code, 2, gone.stderr);
  assert.match(gone.stderr + gone.stdout, /src\/s1\.txt/);
  write(root, 'src/s1.txt', 'source 1\n');
  assert.is(cli(root).code, 0);
  // A change that reaches more than half the goals' targets.
  for (let j = 0; j < CHAINS; j += 2) write(root, `src/s${j}.txt`, `wide ${j}\n`);
  const wide = cli(root);
  assert.is(wide.code, 0, wide.stderr);
  assert.match(String(startOf(wide)?.narrowed), /^no: it reaches more than 12 of 24 targets$/);
  assert.is(started(wide).length, 3 * 4 + 3);
  // The same change, narrowed all the same when the share allows it (HUBMAKE_NARROW=1).
  for (let j = 0; j < CHAINS; j += 2) write(root, `src/s${j}.txt`, `wider ${j}\n`);
  const allowed = cli(root, { HUBMAKE_NARROW: '1' });
  assert.match(String(startOf(allowed)?.narrowed), /^\d+ of 24 targets to decide$/);
  assert.equal(started(allowed), started(wide));
});

test("a target that keeps its outputs (rebuild: 'missing') leaves no stamp, so no narrowed build trusts its old record", () => {
  const root = project(`specs.push({ outputs: ['out/kept'], inputs: ['src/s1.txt', 'src/s2.txt'], rebuild: 'missing', run: 'cat src/s1.txt src/s2.txt > out/kept' });`);
  settle(root);
  write(root, 'src/s1.txt', 'edited 1\n');
  const first = cli(root);
  assert.is(first.code, 0, first.stderr);
  assert.match(String(startOf(first)?.narrowed), /^\d+ of 25 targets to decide$/);
  assert.ok(decisions(first).includes('out/kept keep'), decisions(first).join('\n'));
  // Its record still holds the first content of src/s1.txt: the build wrote no stamp, and the next
  // one decides with the whole graph, seeing src/s1.txt differ from that record.
  assert.is(readStamp(path.join(root, '.hubmake')), undefined);
  write(root, 'src/s2.txt', 'edited 2\n');
  const next = cli(root, { HUBMAKE_NARROW: '1' });
  assert.is(startOf(next)?.narrowed, undefined);
  assert.match(JSON.stringify(next.events.find((e) => e.type === 'decision' && e.target === 'out/kept')), /src\/s1\.txt.*src\/s2\.txt/);
});

test('an action the change reaches is not narrowed: its ctx.outcomes() reports on every target', () => {
  const root = project(`specs.push({ outputs: ['out/count'], inputs: ['out/m0'], run: (ctx) => ctx.writeFile('out/count', String(ctx.outcomes().length)) });
specs.push({ outputs: ['out/final'], inputs: ['out/count', 'src/s4.txt'], run: 'cat out/count src/s4.txt > out/final' });`);
  settle(root);
  write(root, 'src/s0.txt', 'edited\n');
  const r = cli(root);
  assert.is(r.code, 0, r.stderr);
  assert.is(startOf(r)?.narrowed, "no: 'out/count' is an action (its ctx.outcomes() reports on every target)");
  assert.is(read(root, 'out/count'), String(TARGETS + 2));
  // An edit it does not reach is narrowed, without running the module (the outline has them all).
  write(root, 'src/s3.txt', 'edited\n');
  const other = cli(root);
  assert.is(startOf(other)?.narrowed, `5 of ${TARGETS + 2} targets to decide`);
  assert.is(startOf(other)?.module, 'skipped: nothing it read has changed');
  // One that reaches a command reading the action's output: the action is in its graph, fresh, and
  // not stored: the module runs for it, and the build is narrowed all the same.
  write(root, 'src/s4.txt', 'edited\n');
  const near = cli(root);
  assert.is(near.code, 0, near.stderr);
  assert.is(startOf(near)?.narrowed, `6 of ${TARGETS + 2} targets to decide`);
  assert.is(startOf(near)?.module, 'run for its targets; its record stands');
  assert.equal(started(near), ['out/c4_0', 'out/c4_1', 'out/c4_2', 'out/final', 'out/m3', 'out/m4']);
  assert.is(read(root, 'out/final'), `${TARGETS + 2}edited\n`);
});

test('the log: a narrowed build reads some records and never compacts it; a full build does once it is due', () => {
  const root = project();
  settle(root);
  const lines = () => read(root, '.hubmake/log.jsonl').split('\n').filter((l) => /^\["[ofrj]"/.test(l)).length;
  const compacted = lines();
  let narrowedBuilds = 0;
  let due: CliResult | undefined;
  for (let i = 0; i < 30 && !due; i++) {
    write(root, 'src/s0.txt', `edit ${i}\n`);
    const r = cli(root);
    assert.is(r.code, 0, r.stderr);
    if (/^\d/.test(String(startOf(r)?.narrowed))) {
      narrowedBuilds++;
      // Each appends a start and a success per target it ran; none is rewritten.
      assert.is(lines(), compacted + 10 * narrowedBuilds);
    } else due = r;
  }
  assert.ok(due, 'a narrowed build gave way to a full one');
  assert.is(startOf(due)?.narrowed, 'no: the state log is due for compaction');
  // 24 live records: compaction is due past 24 + 6 + 100 lines.
  assert.is(narrowedBuilds, Math.floor((TARGETS + TARGETS / 4 + 100 - compacted) / 10));
  assert.is(lines(), TARGETS);
  write(root, 'src/s0.txt', 'after compaction\n');
  const after = cli(root);
  assert.is(startOf(after)?.narrowed, `5 of ${TARGETS} targets to decide`);
  assert.is(read(root, 'out/m0'), 'after compaction\nsource 1\n');
});

test('a partial load of the state: the same records for its targets; new strings numbered past every one; a doubly defined string reads the whole log', () => {
  const root = project();
  settle(root);
  const full = new StateStore(root);
  full.load();
  const known = { lines: full.counts().lines, strings: full.counts().strings };
  const some = new StateStore(root);
  some.load({ names: ['out/m0', 'out/c2_1'], ...known });
  assert.equal([...some.history.keys()].sort(), ['out/c2_1', 'out/m0']);
  assert.equal(some.history.get('out/m0'), full.history.get('out/m0'));
  assert.equal(some.history.get('out/c2_1'), full.history.get('out/c2_1'));
  assert.equal(some.counts(), { ...known, live: undefined });
  // A record with a new command and a new build id, and one whose strings this store never read.
  const okOf = (n: string) => full.history.get(n)!.ok!;
  some.recordSuccess({ ...okOf('out/m0'), cmd: 'a new command', b: 'new-build' });
  some.recordSuccess({ ...okOf('out/c5_2'), t: 'out/c5_2' });
  assert.is(some.counts().lines, known.lines + 2);
  some.compact(); // refused: it does not know every record
  some.close();
  const after = new StateStore(root);
  after.load();
  assert.is(after.history.size, TARGETS);
  assert.is(after.history.get('out/m0')!.ok!.cmd, 'a new command');
  assert.is(after.history.get('out/m0')!.ok!.b, 'new-build');
  assert.equal(after.history.get('out/c5_2')!.ok, okOf('out/c5_2'));
  for (const [n, h] of full.history) if (n !== 'out/m0') assert.equal(after.history.get(n), h, n);
  assert.equal(after.warnings, []);
  const numbers = read(root, '.hubmake/log.jsonl').split('\n').filter((l) => l.startsWith('["s",')).map((l) => (JSON.parse(l) as number[])[1]);
  assert.is(new Set(numbers).size, numbers.length, 'no string number defined twice');
  // Records looked for by more names than a regular expression should hold: the whole log is read.
  const many = new StateStore(root);
  many.load({ names: ['out/m0', ...Array.from({ length: 2500 }, (_, i) => `no such target ${i}`)], ...known });
  assert.is(many.history.size, TARGETS);
  assert.type(many.counts().live, 'number');
  // A string number defined again after its use (a write that failed half-way): read whole.
  const log = read(root, '.hubmake/log.jsonl');
  const number = (JSON.parse(log.split('\n').find((l) => l.startsWith('["o","out/c3_0"'))!) as number[])[2]!;
  fs.appendFileSync(path.join(root, '.hubmake/log.jsonl'), `${JSON.stringify(['s', number, 'redefined'])}\n`);
  const again = new StateStore(root);
  again.load({ names: ['out/c3_0'], ...known });
  assert.is(again.history.size, TARGETS);
  assert.is(again.history.get('out/c3_0')!.ok!.cmd, full.history.get('out/c3_0')!.ok!.cmd);
  assert.type(again.counts().live, 'number');
});

test('a narrowed session whose stamp moved after the check changes nothing and says so', async () => {
  const root = project();
  settle(root);
  write(root, 'src/s0.txt', 'edited\n');
  const stateDir = path.join(root, '.hubmake');
  const stamp = readStamp(stateDir)!;
  const check = checkStamp(stateDir, new Disk(root), stamp.head.key, stamp)!;
  assert.is(check.changed.length, 1);
  const imported = await importTargets(root, 'targets/index.ts');
  const reached = reach(root, stamp, check.movedAt, 0.5);
  if (typeof reached === 'string') throw new Error(reached);
  const targets = validatedAt(reached, imported.specs, root);
  if (typeof targets === 'string') throw new Error(targets);
  const n = narrowedGraph(reached, targets);
  if (typeof n === 'string') throw new Error(n);
  // Another build's stamp in its place (the same bytes, another file).
  const bytes = fs.readFileSync(stamp.file);
  fs.rmSync(stamp.file);
  fs.writeFileSync(stamp.file, bytes);
  const log = read(root, '.hubmake/log.jsonl');
  const loaded = { graph: n.graph, moduleHash: imported.moduleHash, moduleFiles: imported.moduleFiles };
  const code = await runBuild({ root, loaded, goals: stamp.head.goals, closure: new Set(n.graph.order), always: false, jobs: 1, keepGoing: false, dryRun: false, emit: () => {}, stampKey: stamp.head.key, stampCheck: check, narrowed: { stamp, fresh: n.fresh, outside: { fresh: n.outside, targets: n.outsideTargets } } });
  assert.is(code, 'stale');
  assert.is(read(root, '.hubmake/log.jsonl'), log);
  assert.equal(fs.readFileSync(stamp.file), bytes);
  assert.is(read(root, 'out/c0_0'), 'source 0\n');
  // The command line plans again with the whole graph when that happens; here, the next build is narrowed.
  const r = cli(root);
  assert.is(startOf(r)?.narrowed, `5 of ${TARGETS} targets to decide`);
  assert.is(read(root, 'out/c0_0'), 'edited\n');
});

test('through the command line: a narrowed build that had to wait for the lock plans again with the whole graph', async () => {
  const root = project();
  settle(root);
  write(root, 'src/s0.txt', 'edited\n');
  // Another process holds the build lock for a while (as a build would), changing nothing.
  const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
    const { Lock } = await import(${JSON.stringify(path.join(REPO, 'engine/lock.ts'))});
    const lock = new Lock(${JSON.stringify(path.join(root, '.hubmake'))});
    await lock.acquire(() => {});
    process.stdout.write('held\\n');
    setTimeout(() => { lock.release(); process.exit(0); }, 1500);
  `], { stdio: ['ignore', 'pipe', 'inherit'] });
  await new Promise<void>((res) => holder.stdout!.once('data', () => res()));
  const r = await new Promise<CliResult>((res) => {
    const c = cliAsync(root, ['--json'], ENV);
    let out = '';
    let err = '';
    c.stdout!.on('data', (d) => (out += d));
    c.stderr!.on('data', (d) => (err += d));
    c.on('close', (code) => res({ code, stdout: out, stderr: err, events: parseEvents(out) }));
  });
  assert.is(r.code, 0, r.stderr);
  assert.ok(r.events.some((e) => e.type === 'lock-wait'), 'it waited');
  // What the module printed: once, though the build was planned twice (replayed, then run).
  assert.is(r.stderr.split('declared 24 targets').length - 1, 1, r.stderr);
  const starts = r.events.filter((e) => e.type === 'build-start');
  assert.is(starts.length, 1, 'one build, planned again after the wait');
  assert.is((starts[0] as { narrowed?: string }).narrowed, undefined);
  assert.equal(started(r), ['out/c0_0', 'out/c0_1', 'out/c0_2', 'out/m0', 'out/m5']);
  assert.is(read(root, 'out/m5'), 'source 5\nedited\n');
  // And the stamp it wrote answers the next build.
  assert.ok(endOf(cli(root))?.settled);
});

test('a graph with glob inputs has no outline', () => {
  const root = project(`specs.push({ outputs: ['out/all'], inputs: ['src/*.txt'], run: 'cat src/*.txt > out/all' });`);
  // Past the racy window of src/, which the stamp watches for the glob.
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  settle(root);
  assert.ok(readStamp(path.join(root, '.hubmake'))!.head.dirs.length > 0);
  assert.not.ok(fs.existsSync(path.join(root, '.hubmake/settled.outline')));
});

test.run();
