// Targets on a real Slurm (the single-node cluster of scripts/slurm/start.sh, which .ci/run starts):
// outputs and logs arrive, a failing job fails its target, Ctrl-C leaves no job in the queue, and a
// job left by a build killed hard is adopted by the next build, never submitted twice.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { logRecords } from '../engine/state.ts';
import { announceMissing, jobState, jobsNamed, probeSlurm, queued, runCli, startCli, tmpRoot, token, until, writeTargets } from './slurm-helpers.ts';

const probe = probeSlurm();
// Without a cluster the real tests are not even started (they would only time out); one test
// fails in their place when Slurm is required, else they are all skipped with a banner.
const it = probe.ok ? test : test.skip;
if (!probe.ok && !announceMissing('tests/slurm.test.ts', probe.why)) {
  test('Slurm is available (required: CI=true or HUBMAKE_REQUIRE_SLURM=1)', () => {
    assert.unreachable(`Slurm is not available: ${probe.why}`);
  });
}

const read = (root: string, rel: string) => fs.readFileSync(path.join(root, rel), 'utf8');
/** The state log's records in the order written (its lines number their strings: state-codec.ts). */
const stateLines = (root: string) => logRecords(root) as unknown as Array<Record<string, unknown>>;
const jobEvents = (events: Array<Record<string, unknown>>, target: string) => events.filter((e) => e.type === 'job' && e.target === target);
const finishOf = (events: Array<Record<string, unknown>>, target: string) => events.find((e) => e.type === 'finish' && e.target === target);

it('a target runs on Slurm beside a local one: outputs, stdout and stderr in its log, job id and node recorded', async () => {
  const root = tmpRoot('slurm-run');
  const tag = token();
  writeTargets(root, `export default [
    { name: 'remote-${tag}', outputs: ['out/r.txt'], log: 'logs/r.log', executor: 'slurm', slurm: { time: '5', cpus: 1 },
      run: 'mkdir -p out; echo "on $(hostname) in $PWD"; echo "to stderr" >&2; echo R > out/r.txt' },
    { name: 'local', outputs: ['out/l.txt'], inputs: ['out/r.txt'], run: 'cat out/r.txt > out/l.txt; echo L >> out/l.txt' },
  ];\n`);
  const r = await runCli(root, ['--json', '-j', '1', 'local']);
  assert.is(r.code, 0, r.stderr);
  assert.is(read(root, 'out/r.txt'), 'R\n');
  assert.is(read(root, 'out/l.txt'), 'R\nL\n');
  const log = read(root, 'logs/r.log');
  assert.match(log, `in ${root}\n`, 'the job runs in the root directory');
  assert.match(log, 'to stderr');
  const jobs = jobEvents(r.events, `remote-${tag}`);
  assert.is(jobs[0]?.state, 'SUBMITTED');
  const id = jobs[0]!.jobId as string;
  assert.match(id, /^\d+$/);
  const fin = finishOf(r.events, `remote-${tag}`)!;
  assert.is(fin.status, 'built');
  assert.is(fin.jobId, id);
  assert.type(fin.node, 'string');
  const start = r.events.find((e) => e.type === 'start' && e.target === `remote-${tag}`)!;
  assert.is(start.executor, 'slurm');
  const lines = stateLines(root);
  assert.ok(lines.some((l) => l.k === 'job' && l.id === id), 'the job id is in the state log right after submission');
  const ok = lines.find((l) => l.k === 'ok' && l.t === `remote-${tag}`)!;
  assert.is(ok.job, id);
  assert.is(ok.node, fin.node);
  assert.equal(fs.readdirSync(path.join(root, '.hubmake/slurm')), [], 'the job output file is folded into the log');
  // Nothing changed: no new job.
  const again = await runCli(root, ['--json', 'local']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(jobEvents(again.events, `remote-${tag}`), []);
  assert.equal(jobsNamed(`hubmake:remote-${tag}`), [id]);
});

it('--slurm-jobs caps jobs in the queue apart from -j: one job at a time, a local target beside it', async () => {
  const root = tmpRoot('slurm-cap');
  writeTargets(root, `export default [
    ...[1, 2, 3].map((i) => ({ name: 's' + i, outputs: ['out/s' + i], executor: 'slurm', run: 'sleep 1; mkdir -p out; touch out/s' + i })),
    { name: 'loc', outputs: ['out/loc'], run: 'sleep 1; mkdir -p out; touch out/loc' },
  ];\n`);
  const r = await runCli(root, ['--json', '-j', '1', '--slurm-jobs', '1']);
  assert.is(r.code, 0, r.stderr);
  let inQueue = 0;
  let most = 0;
  let localBesideSlurm = false;
  let localRunning = false;
  for (const e of r.events) {
    const slurm = typeof e.target === 'string' && e.target.startsWith('s');
    if (e.type === 'start' && slurm) most = Math.max(most, ++inQueue);
    if (e.type === 'finish' && slurm) inQueue--;
    if (e.type === 'start' && e.target === 'loc') localRunning = true;
    if (e.type === 'finish' && e.target === 'loc') localRunning = false;
    if (e.type === 'start' && (slurm ? localRunning : inQueue > 0)) localBesideSlurm = true;
  }
  assert.is(most, 1, 'never two Slurm jobs at once');
  assert.ok(localBesideSlurm, 'the local target ran while a Slurm job did, although -j 1');
});

it('a failing job fails its target: exit 1, log path and last lines shown, exit code kept', async () => {
  const root = tmpRoot('slurm-fail');
  writeTargets(root, `export default [
    { name: 'bad', outputs: ['out/bad.txt'], log: 'logs/bad.log', executor: 'slurm',
      run: 'echo starting; for i in 1 2 3; do echo "step $i"; done; exit 7' },
  ];\n`);
  const r = await runCli(root, ['bad']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /FAILED\s+bad: slurm job \d+ on \S+: command failed \(exit code 7\)/);
  assert.match(r.stderr, 'log: logs/bad.log');
  assert.match(r.stderr, '| step 3');
  assert.is(read(root, 'logs/bad.log'), 'starting\nstep 1\nstep 2\nstep 3\n');
  const fail = stateLines(root).find((l) => l.k === 'fail')!;
  assert.is(fail.code, 7);
  assert.match(String(fail.job), /^\d+$/);
});

it('set -eo pipefail holds on Slurm as locally: a failing stage of a pipeline fails the target', async () => {
  const root = tmpRoot('slurm-pipefail');
  writeTargets(root, `export default [
    { name: 'pipe', outputs: ['out/p.txt'], executor: 'slurm', run: 'mkdir -p out; false | cat; echo never > out/p.txt' },
  ];\n`);
  const r = await runCli(root, ['pipe']);
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.not.ok(fs.existsSync(path.join(root, 'out/p.txt')));
});

it('Ctrl-C cancels the submitted job: exit 130, nothing left in the queue, no output written', async () => {
  const root = tmpRoot('slurm-int');
  const tag = token();
  writeTargets(root, `export default [
    { name: 'long-${tag}', outputs: ['out/long.txt'], log: 'logs/long.log', executor: 'slurm', run: 'echo started; sleep 60; echo done > out/long.txt' },
  ];\n`);
  const b = startCli(root, ['--json', `long-${tag}`]);
  const running = await until('the job to run', () => b.events.find((e) => e.type === 'job' && e.state === 'RUNNING'), 30_000);
  const id = running.jobId as string;
  b.child.kill('SIGINT');
  const r = await b.done;
  assert.is(r.code, 130, r.stderr);
  assert.equal(queued([id]), [], 'no job of ours is pending or running');
  assert.is(jobState(id), 'CANCELLED');
  assert.not.ok(fs.existsSync(path.join(root, 'out/long.txt')));
  assert.match(read(root, 'logs/long.log'), 'started');
  const fin = finishOf(b.events, `long-${tag}`)!;
  assert.is(fin.status, 'interrupted');
});

it('a build killed hard leaves its job running; the next build adopts it instead of submitting again', async () => {
  const root = tmpRoot('slurm-adopt');
  const tag = token();
  writeTargets(root, `export default [
    { name: 'adopt-${tag}', outputs: ['out/a.txt'], log: 'logs/a.log', executor: 'slurm',
      run: 'echo run >> runs.txt; echo working; sleep 3; mkdir -p out; echo A > out/a.txt; echo finished' },
  ];\n`);
  const b = startCli(root, ['--json', `adopt-${tag}`]);
  const sub = await until('the job to be submitted', () => b.events.find((e) => e.type === 'job' && e.state === 'SUBMITTED'), 30_000);
  const id = sub.jobId as string;
  b.child.kill('SIGKILL');
  await b.done;
  assert.ok(stateLines(root).some((l) => l.k === 'job' && l.id === id), 'the job was recorded before the kill');
  const r = await runCli(root, ['--json', `adopt-${tag}`]);
  assert.is(r.code, 0, r.stderr);
  const jobs = jobEvents(r.events, `adopt-${tag}`);
  assert.is(jobs[0]?.adopted, true, JSON.stringify(jobs));
  assert.is(jobs[0]?.jobId, id);
  assert.not.ok(jobs.some((e) => e.state === 'SUBMITTED'), 'no second submission');
  assert.is(finishOf(r.events, `adopt-${tag}`)?.jobId, id);
  assert.is(read(root, 'runs.txt'), 'run\n', 'the command ran once');
  assert.is(read(root, 'out/a.txt'), 'A\n');
  assert.is(read(root, 'logs/a.log'), 'working\nfinished\n');
  assert.equal(jobsNamed(`hubmake:adopt-${tag}`), [id]);
  // Recorded as built by that job: the next build has nothing to do.
  const again = await runCli(root, [`adopt-${tag}`]);
  assert.is(again.code, 0);
  assert.match(again.stdout, 'nothing to do');
});

it('a job whose submission the killed build never recorded is found in the queue by name and comment and adopted', async () => {
  const root = tmpRoot('slurm-unrec');
  const tag = token();
  writeTargets(root, `export default [
    { name: 'unrec-${tag}', outputs: ['out/u.txt'], executor: 'slurm', run: 'echo run >> runs.txt; sleep 3; mkdir -p out; echo U > out/u.txt' },
  ];\n`);
  const b = startCli(root, ['--json', `unrec-${tag}`]);
  const sub = await until('the job to be submitted', () => b.events.find((e) => e.type === 'job' && e.state === 'SUBMITTED'), 30_000);
  b.child.kill('SIGKILL');
  await b.done;
  // As if the kill had come between sbatch's answer and the append to the state log.
  const logFile = path.join(root, '.hubmake/log.jsonl');
  const isJob = (l: string) => l.startsWith('["j",') || l.includes('"k":"job"');
  assert.ok(fs.readFileSync(logFile, 'utf8').split('\n').some(isJob), 'the job was recorded');
  fs.writeFileSync(logFile, fs.readFileSync(logFile, 'utf8').split('\n').filter((l) => !isJob(l)).join('\n'));
  const r = await runCli(root, ['--json', `unrec-${tag}`]);
  assert.is(r.code, 0, r.stderr);
  const jobs = jobEvents(r.events, `unrec-${tag}`);
  assert.is(jobs[0]?.adopted, true, JSON.stringify(jobs));
  assert.is(jobs[0]?.jobId, sub.jobId);
  assert.is(read(root, 'runs.txt'), 'run\n');
  assert.equal(jobsNamed(`hubmake:unrec-${tag}`), [sub.jobId as string]);
  // Its result taken in, the finished job (still in squeue's memory) is not adopted again when
  // the target is rerun on purpose.
  const rerun = await runCli(root, ['--json', '-B', `unrec-${tag}`]);
  assert.is(rerun.code, 0, rerun.stderr);
  assert.ok(jobEvents(rerun.events, `unrec-${tag}`).some((e) => e.state === 'SUBMITTED' && e.jobId !== sub.jobId));
  assert.is(read(root, 'runs.txt'), 'run\nrun\n');
});

it('a job that finished while no build ran is adopted with its result; one whose target changed is cancelled', async () => {
  const root = tmpRoot('slurm-adopt2');
  const tag = token();
  const spec = (cmd: string) => `export default [
    { name: 'done-${tag}', outputs: ['out/d.txt'], log: 'logs/d.log', executor: 'slurm',
      run: 'echo run >> runs.txt; mkdir -p out; echo D > out/d.txt; echo ok' },
    { name: 'chg-${tag}', outputs: ['out/c.txt'], executor: 'slurm', run: ${JSON.stringify(cmd)} },
  ];\n`;
  writeTargets(root, spec('echo old >> chg-runs.txt; sleep 60; mkdir -p out; echo old > out/c.txt'));
  const b = startCli(root, ['--json', '-k', `done-${tag}`, `chg-${tag}`]);
  const subs = await until('both jobs to be submitted', () => {
    const s = b.events.filter((e) => e.type === 'job' && e.state === 'SUBMITTED');
    return s.length === 2 ? s : undefined;
  }, 30_000);
  b.child.kill('SIGKILL');
  await b.done;
  const idDone = subs.find((e) => e.target === `done-${tag}`)!.jobId as string;
  const idChg = subs.find((e) => e.target === `chg-${tag}`)!.jobId as string;
  await until('the short job to finish', () => queued([idDone]).length === 0, 30_000);
  writeTargets(root, spec('echo new >> chg-runs.txt; mkdir -p out; echo new > out/c.txt'));
  const r = await runCli(root, ['--json', '-k', `done-${tag}`, `chg-${tag}`]);
  assert.is(r.code, 0, r.stderr);
  const done = jobEvents(r.events, `done-${tag}`);
  assert.is(done[0]?.adopted, true);
  assert.is(done[0]?.state, 'COMPLETED');
  assert.is(done.length, 1, 'no new job for the finished one');
  assert.is(read(root, 'runs.txt'), 'run\n');
  assert.is(read(root, 'logs/d.log'), 'ok\n');
  assert.ok(r.events.some((e) => e.type === 'info' && String(e.message).includes(`cancelling slurm job ${idChg}`)));
  assert.is(jobState(idChg), 'CANCELLED');
  const chg = jobEvents(r.events, `chg-${tag}`);
  assert.ok(chg.some((e) => e.state === 'SUBMITTED' && e.jobId !== idChg));
  assert.is(read(root, 'out/c.txt'), 'new\n');
});

test.run();
