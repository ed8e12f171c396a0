// The evidence hub with its training targets on Slurm (the single-node cluster of
// scripts/slurm/start.sh) and everything else local: the hub completes, the training transcripts
// and bundles arrive through the shared file system, job ids and nodes are recorded, and a second
// build submits nothing.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { build, hub, hubCopy, read } from './fixtures/hub/lib.ts';
import { announceMissing, probeSlurm } from './slurm-helpers.ts';

const probe = probeSlurm();
// Without a cluster the real tests are not even started (they would only time out); one test
// fails in their place when Slurm is required, else they are all skipped with a banner.
const it = probe.ok ? test : test.skip;
if (!probe.ok && !announceMissing('tests/slurm-hub.test.ts', probe.why)) {
  test('Slurm is available (required: CI=true or HUBMAKE_REQUIRE_SLURM=1)', () => {
    assert.unreachable(`Slurm is not available: ${probe.why}`);
  });
}

const TRAIN = ['train-dose1000-baseline-gs1', 'train-dose1000-dense-gs2'];

it('the hub builds with its training targets on Slurm and the rest local; a second build submits nothing', () => {
  // As a user would: one configuration switch sends every training job to the cluster.
  const root = hubCopy((c) => {
    c.slurm = { enabled: true, time: '10', cpus: 1 };
  });
  const r = build(root, ['hub', '--json']);
  assert.is(r.code, 0, `exit ${r.code}\n${r.stderr.slice(-3000)}`);
  const finishes = r.events.filter((e) => e.type === 'finish');
  for (const name of TRAIN) {
    const f = finishes.find((e) => e.target === name);
    assert.ok(f, `${name} ran`);
    assert.is(f!.status, 'built');
    assert.match(String(f!.jobId), /^\d+$/, `${name} ran as a Slurm job`);
    assert.type(f!.node, 'string');
    assert.ok(r.events.some((e) => e.type === 'job' && e.target === name && e.state === 'SUBMITTED'));
  }
  const local = finishes.filter((e) => !TRAIN.includes(e.target as string));
  assert.ok(local.length > 0);
  assert.ok(local.every((e) => e.jobId === undefined), 'the other targets ran locally');
  // The training transcripts came back through the log, the bundles through the file system.
  assert.match(read(root, hub('cli/dose1000_dense_gs2.log')), /SHA256 \[dense\/dose=1e\+03\]: [0-9a-f]{64}/);
  assert.ok(fs.statSync(path.join(root, hub('data/wts_baseline_gs1.h5.zip'))).size > 0);
  assert.match(read(root, hub('analysis/summary.md')), /^Status: COMPLETE$/m);
  const again = build(root, ['hub', '--json']);
  assert.is(again.code, 0, again.stderr.slice(-2000));
  assert.equal(again.events.filter((e) => e.type === 'job'), []);
  assert.equal(again.started, []);
});

test.run();
