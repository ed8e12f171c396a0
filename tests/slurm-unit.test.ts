// The Slurm executor's pure parts and its seams, without a cluster: sbatch options from spec and
// environment, parsing of squeue/scontrol/sacct, the separate queue limit, the fall-back chain for
// jobs that left the queue, and the user-facing errors (exit 2 for declarations, exit 1 when
// sbatch is missing).
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { batchScript, parseExit, parseSacct, parseScontrol, parseSqueue, sbatchArgs, SlurmExecutor, type Exec, type ExecResult } from '../engine/executors/slurm.ts';
import { Scheduler } from '../engine/schedule.ts';
import { validateSpecs, type Target } from '../engine/spec.ts';
import { StateStore } from '../engine/state.ts';
import type { BuildEvent } from '../engine/events.ts';
import { runCli, tmpRoot, writeTargets } from './slurm-helpers.ts';

function target(spec: Record<string, unknown>): Target {
  return validateSpecs([spec], '/tmp/root')[0]!;
}

test('sbatch options: spec fields win over HUBMAKE_SLURM_* defaults; extra args come last', () => {
  const t = target({ name: 'train', outputs: ['m.h5'], run: 'python train.py', executor: 'slurm', slurm: { partition: 'gpu', gres: 'gpu:1', cpus: 8, args: ['--qos=high'] } });
  const env = { HUBMAKE_SLURM_PARTITION: 'cpu', HUBMAKE_SLURM_ACCOUNT: 'lab', HUBMAKE_SLURM_TIME: '01:00:00', HUBMAKE_SLURM_ARGS: '--exclusive  --nice=5' };
  const a = sbatchArgs(t, env, '/r', '/r/.hubmake/slurm/train-%j.out', 'c');
  assert.equal(a, [
    '--parsable', '--job-name=hubmake:train', '--chdir=/r', '--output=/r/.hubmake/slurm/train-%j.out', '--error=/r/.hubmake/slurm/train-%j.out', '--comment=c',
    '--partition=gpu', '--account=lab', '--time=01:00:00', '--cpus-per-task=8', '--gres=gpu:1',
    '--exclusive', '--nice=5', '--qos=high',
  ]);
  const bare = sbatchArgs(target({ name: 'x', outputs: ['x'], run: 'true', executor: 'slurm' }), {}, '/r', '/o');
  assert.equal(bare.filter((s) => /^--(partition|account|time|mem|gres|cpus)/.test(s)), [], 'no defaults invented');
});

test('the batch script runs the command text under bash with set -eo pipefail, like a local target', () => {
  assert.is(batchScript('a | b\nc'), '#!/bin/bash\nset -eo pipefail\na | b\nc\n');
});

test('exit codes: scontrol/sacct "N:S" and squeue raw wait status', () => {
  assert.equal(parseExit('3:0'), { exitCode: 3 });
  assert.equal(parseExit('0:15'), { exitCode: 0, signal: 15 });
  assert.equal(parseExit('768'), { exitCode: 3 });
  assert.equal(parseExit('9'), { exitCode: 0, signal: 9 });
  assert.equal(parseExit(''), {});
});

test('squeue, scontrol and sacct lines parse to the same job view', () => {
  const q = parseSqueue('12|RUNNING|node07|0|None|\n13|PENDING||0|Resources|\n14|FAILED|node01|256|NonZeroExitCode|\n');
  assert.equal(q.get('12'), { id: '12', state: 'RUNNING', exitCode: 0, node: 'node07' });
  assert.equal(q.get('13'), { id: '13', state: 'PENDING', exitCode: 0, reason: 'Resources' });
  assert.is(q.get('14')?.exitCode, 1);
  const s = parseScontrol('5', 'JobId=5 JobName=x JobState=CANCELLED Reason=None ExitCode=0:15 NodeList=vm BatchHost=vm');
  assert.equal(s, { id: '5', state: 'CANCELLED', exitCode: 0, signal: 15, node: 'vm' });
  assert.is(parseScontrol('5', 'slurm_load_jobs error: Invalid job id specified'), undefined);
  const a = parseSacct('7', '7|CANCELLED by 0|0:0|vm\n7.batch|CANCELLED|0:15|vm\n');
  assert.equal(a, { id: '7', state: 'CANCELLED', exitCode: 0, node: 'vm' });
});

test('the scheduler keeps separate limits: -j for local targets, --slurm-jobs for queued jobs', () => {
  const names = ['l1', 'l2', 's1', 's2', 's3'];
  const s = new Scheduler(names, () => [], () => [], () => true, 1, 2);
  assert.ok(s.canStart(undefined, false));
  assert.ok(s.anyFree(false));
  s.started(undefined, false);
  assert.not.ok(s.canStart(undefined, false), 'one local job at -j 1');
  assert.not.ok(s.anyFree(false), 'nothing local can start: the builder stops scanning its queue');
  assert.ok(s.anyFree(true), 'a waiting Slurm target still can');
  assert.ok(s.canStart(undefined, true), 'Slurm jobs do not take local slots');
  s.started(undefined, true);
  s.started(undefined, true);
  assert.not.ok(s.canStart(undefined, true), 'at most 2 queued');
  assert.not.ok(s.anyFree(true));
  assert.is(s.running, 3);
  s.finished(undefined, true);
  assert.ok(s.canStart(undefined, true));
  assert.not.ok(s.canStart(undefined, false));
  s.finished(undefined, false);
  assert.ok(s.canStart(undefined, false));
});

/** A fake cluster: records calls, answers from a script. */
function fakeExec(answer: (cmd: string, args: string[]) => Partial<ExecResult>): { exec: Exec; calls: string[] } {
  const calls: string[] = [];
  return {
    calls,
    exec: async (cmd, args) => {
      calls.push(`${cmd} ${args.join(' ')}`);
      return { code: 0, stdout: '', stderr: '', ...answer(cmd, args) };
    },
  };
}

test('a job that left the queue is looked up with scontrol, then sacct, then sacct -c (jobcomp)', async () => {
  const root = tmpRoot('slurm-fake');
  const state = new StateStore(root);
  const events: BuildEvent[] = [];
  const { exec, calls } = fakeExec((cmd, args) => {
    if (cmd === 'sbatch') return { stdout: '41;cluster\n' };
    if (cmd === 'squeue') return { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified\n' };
    if (cmd === 'scontrol') return { code: 1, stderr: 'slurm_load_jobs error: Invalid job id specified\n' };
    if (cmd === 'sacct' && args[0] !== '-c') return { code: 1, stderr: 'Slurm accounting storage is disabled\n' };
    if (cmd === 'sacct') {
      fs.writeFileSync(path.join(root, '.hubmake/slurm/t-41.out'), 'hello\n');
      return { stdout: '41|COMPLETED|0:0|n3\n' };
    }
    return {};
  });
  const ex = new SlurmExecutor({ root, env: {}, state, emit: (e) => events.push(e), buildId: 'b1', exec });
  let log = '';
  const res = await ex.run(target({ name: 't', outputs: ['o'], run: 'echo hello', executor: 'slurm' }), 'fp1', { write: (c) => (log += c.toString()) }, new AbortController().signal);
  assert.equal(res, { ok: true, exitCode: 0, jobId: '41', node: 'n3' });
  assert.is(log, 'hello\n');
  assert.ok(calls.some((c) => c.startsWith('sacct -c -j 41')), calls.join('\n'));
  assert.equal(state.history.get('t')?.job, { k: 'job', t: 't', b: 'b1', id: '41', fp: 'fp1', out: '.hubmake/slurm/t-41.out' });
  assert.ok(events.some((e) => e.type === 'job' && e.state === 'SUBMITTED' && e.jobId === '41'));
  state.close();
});

test('a controller that does not answer for a while is waited out with one warning, not a failure', async () => {
  const root = tmpRoot('slurm-fake2');
  const state = new StateStore(root);
  const events: BuildEvent[] = [];
  let polls = 0;
  const { exec } = fakeExec((cmd, args) => {
    if (cmd === 'sbatch') return { stdout: '7\n' };
    if (cmd === 'squeue' && args.includes('-j')) {
      polls++;
      if (polls <= 3) return { code: 1, stderr: 'squeue: error: Unable to contact slurm controller (connect failure)\n' };
      return { stdout: polls < 5 ? '7|RUNNING|n1|0|None|\n' : '7|FAILED|n1|512|NonZeroExitCode|\n' };
    }
    return { code: 1, stderr: 'Invalid job id specified' };
  });
  const ex = new SlurmExecutor({ root, env: { HUBMAKE_SLURM_POLL_MAX_MS: '50' }, state, emit: (e) => events.push(e), buildId: 'b1', exec });
  const res = await ex.run(target({ name: 't', outputs: ['o'], run: 'exit 2', executor: 'slurm' }), 'fp', { write: () => {} }, new AbortController().signal);
  assert.is(res.ok, false);
  assert.is(res.exitCode, 2);
  assert.is(res.error, 'slurm job 7 on n1: command failed');
  assert.is(events.filter((e) => e.type === 'warning').length, 1);
  assert.equal(events.filter((e) => e.type === 'job').map((e) => (e as { state: string }).state), ['SUBMITTED', 'RUNNING', 'FAILED']);
  state.close();
});

test('executor slurm with an in-process action is a declaration error (exit 2) naming target and field', async () => {
  const root = tmpRoot('slurm-decl');
  writeTargets(root, `export default [{ name: 'act', outputs: ['a'], executor: 'slurm', run: async () => {} }];\n`);
  const r = await runCli(root, ['act']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, 'act');
  assert.match(r.stderr, 'executor');
  assert.match(r.stderr, 'in-process action cannot run on Slurm');
  const bad = await runCli(root, ['--slurm-jobs', '0']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, '--slurm-jobs');
});

test('without sbatch on PATH a Slurm target fails (exit 1) and says how to fix it', async () => {
  const root = tmpRoot('slurm-nosbatch');
  writeTargets(root, `export default [{ name: 'remote', outputs: ['r'], log: 'r.log', executor: 'slurm', run: 'touch r' }];\n`);
  const r = await runCli(root, ['remote'], { PATH: path.join(root, 'no-bin') });
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, 'sbatch not found');
  assert.match(fs.readFileSync(path.join(root, 'r.log'), 'utf8'), 'install slurm-client');
});

test.run();
