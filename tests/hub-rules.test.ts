// Unit tests of the hub's rules (pure parts): configuration, quoting, manifest merging,
// checksum verdicts and the shape of the hub's graph for configuration changes.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import { overridesFromDefines, overridesFromEnv, parseConfig } from '../rules/config.ts';
import { specName } from '../rules/graph.ts';
import { hubTargets } from '../rules/hub.ts';
import { makeLayout } from '../rules/layout.ts';
import { checkBundle, makeRecord, mergeRecords, renderChecksums, type TrainingManifest } from '../rules/manifest.ts';
import { argv, quote } from '../rules/shell.ts';
import { renderSummary, type SummaryParams } from '../rules/summary-render.ts';
import type { TargetOutcome } from '../engine/types.ts';
import { doseLabel } from '../rules/study.ts';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CONFIG_TEXT = readFileSync(path.join(REPO, 'hub.config.json'), 'utf8');
const base = () => JSON.parse(CONFIG_TEXT) as Record<string, any>;
const parse = (o: unknown, env: NodeJS.ProcessEnv = {}) =>
  parseConfig(JSON.stringify(o), 'hub.config.json', overridesFromEnv(env));
const specsOf = (o: unknown, env: NodeJS.ProcessEnv = {}) => hubTargets(makeLayout(parse(o, env), REPO));

test('the checked-in hub.config.json is valid and selects the simulator', () => {
  const l = makeLayout(parse(base()), REPO);
  assert.equal(l.tool.name, 'sim');
  assert.equal(l.hub, 'plans/active/STUDY-SYNTH-FLY64-DOSE-OVERLAP-001/reports/2025-11-06T090500Z/phase_e_training_bundle_real_runs_exec');
  assert.deepEqual(l.trained, ['baseline', 'dense']);
});

test('bad JSON and unknown keys name the file and the key', () => {
  assert.throws(() => parseConfig('{ nope', 'hub.config.json'), /hub\.config\.json: invalid JSON/);
  const c = base();
  c.sim.fautls = {};
  assert.throws(() => parse(c), /hub\.config\.json: key sim\.fautls: unknown key/);
  const d = base();
  d.training.dense.epoch = 3;
  assert.throws(() => parse(d), /key training\.dense\.epoch: unknown key/);
  const e = base();
  e.views = ['dense', 'wide'];
  assert.throws(() => parse(e), /key views\[1\]: expected one of baseline, dense, sparse/);
  const f = base();
  f.sim.faults = { dense: 'melt' };
  assert.throws(() => parse(f), /key sim\.faults\.dense/);
  const g = base();
  g.hub.timestamp = 'yesterday';
  assert.throws(() => parse(g), /key hub\.timestamp/);
});

test('environment overrides change values without editing the file, and are validated too', () => {
  const c = parse(base(), { HUB_TIMESTAMP: '2025-11-07T000000Z' });
  assert.equal(c.hub.timestamp, '2025-11-07T000000Z');
  const d = parse(base(), { HUBMAKE_SET: 'sim.faults={"dense":"sha-mismatch"}; training.dense.epochs=5' });
  assert.deepEqual(d.sim.faults, { dense: 'sha-mismatch' });
  assert.equal(d.training.dense!.epochs, 5);
  assert.throws(() => parse(base(), { HUBMAKE_SET: 'hub.stamp=x' }), /with HUBMAKE_SET: key hub\.stamp: unknown key/);
  // -D from the command line comes last and wins.
  const e = parseConfig(CONFIG_TEXT, 'hub.config.json', [
    ...overridesFromEnv({ HUB_TIMESTAMP: '2025-11-07T000000Z' }),
    ...overridesFromDefines({ 'hub.timestamp': '2025-11-08T000000Z', 'doses': '[1000,10000]' }),
  ]);
  assert.equal(e.hub.timestamp, '2025-11-08T000000Z');
  assert.deepEqual(e.doses, [1000, 10000]);
});

test('quote leaves safe words bare and single-quotes the rest', () => {
  assert.equal(quote('tmp/phase_c_f2_cli'), 'tmp/phase_c_f2_cli');
  assert.equal(quote('a b'), `'a b'`);
  assert.equal(quote("it's"), `'it'\\''s'`);
  assert.equal(quote(''), `''`);
  assert.equal(argv(['echo', '$HOME', 1000]), `echo '$HOME' 1000`);
  assert.equal(doseLabel(1000), '1e+03');
  assert.equal(doseLabel(10000), '1e+04');
});

const job = (view: string, gridsize: number, sha: string, size: number) => ({
  dose: 1000.0,
  view,
  gridsize,
  artifact_dir: `A/dose_1000/${view}/gs${gridsize}`,
  result: { status: 'success', bundle_path: 'wts.h5.zip', bundle_sha256: sha, bundle_size_bytes: size },
});
const sparseSkip = { dose: 1000.0, view: 'sparse', reason: 'NPZ files not found' };

test('each job record survives later calls: the merge holds every job and unites skip events', () => {
  // Two calls, each manifest holding only its own job (the tool rewrites the file every call).
  const m1: TrainingManifest = { timestamp: '2025-11-06T09:00:00Z', jobs: [job('dense', 2, 'a'.repeat(64), 10)], skipped_views: [sparseSkip], skipped_count: 1 };
  const m2: TrainingManifest = { timestamp: '2025-11-06T09:05:00Z', jobs: [job('baseline', 1, 'b'.repeat(64), 20)], skipped_views: [sparseSkip], skipped_count: 1 };
  const r1 = makeRecord(m1, { skipped_views: [sparseSkip] }, 1000, 'dense', 2);
  const r2 = makeRecord(m2, null, 1000, 'baseline', 1);
  assert.equal(r1.status, 'success');
  const { manifest, skipSummary } = mergeRecords([r1, r2]);
  assert.deepEqual(manifest.jobs!.map((j) => j.view), ['baseline', 'dense']);
  assert.equal(manifest.timestamp, '2025-11-06T09:05:00Z');
  assert.equal(manifest.skipped_count, 1);
  assert.equal(skipSummary.skipped_count, 1);
  // Same records in another order: byte-identical output.
  assert.equal(JSON.stringify(mergeRecords([r2, r1])), JSON.stringify(mergeRecords([r1, r2])));
  // A call made before Phase D existed saw dense as missing; dense trained in its own call, so the
  // hub does not report it as skipped.
  const denseSkip = { dose: 1000.0, view: 'dense', reason: 'NPZ files not found' };
  const early = makeRecord({ ...m2, skipped_views: [sparseSkip, denseSkip], skipped_count: 2 }, { skipped_views: [sparseSkip, denseSkip] }, 1000, 'baseline', 1);
  const merged = mergeRecords([early, r1]);
  assert.deepEqual((merged.manifest.skipped_views ?? []).map((e) => e.view), ['sparse']);
  assert.equal(merged.skipSummary.skipped_count, 1);
});

test('a failed or missing job is recorded with its reason', () => {
  const failed = { ...job('dense', 2, '', 0), result: { status: 'failed', error: 'Training failed: ValueError: epochs must be >= 1' } };
  const r = makeRecord({ jobs: [failed] }, null, 1000, 'dense', 2);
  assert.equal(r.status, 'failed');
  assert.match(r.error!, /epochs must be >= 1/);
  assert.equal(makeRecord(null, null, 1000, 'dense', 2).status, 'missing');
  assert.equal(makeRecord({ jobs: [], skipped_views: [sparseSkip] }, null, 1000, 'sparse', 2).status, 'skipped');
});

test('bundle verdicts compare sha256 and size with the manifest, and the checksum file shows both values', () => {
  const m: TrainingManifest = { jobs: [job('dense', 2, 'a'.repeat(64), 10)] };
  const good = checkBundle(m, { file: 'wts_dense_gs2.h5.zip', dose: 1000, view: 'dense', gridsize: 2, sha256: 'a'.repeat(64), size: 10 });
  assert.equal(good.verdict, 'MATCH');
  const bad = checkBundle(m, { file: 'wts_dense_gs2.h5.zip', dose: 1000, view: 'dense', gridsize: 2, sha256: 'c'.repeat(64), size: 10 });
  assert.equal(bad.verdict, 'SHA MISMATCH');
  const text = renderChecksums([good, bad], 'data/training_manifest.json');
  assert.equal(text.split('\n')[0], `${'a'.repeat(64)}  wts_dense_gs2.h5.zip  10`);
  assert.match(text, new RegExp(`SHA MISMATCH  manifest_sha256=${'a'.repeat(64)} computed_sha256=${'c'.repeat(64)}`));
  const none = checkBundle({ jobs: [] }, { file: 'x', dose: 1000, view: 'baseline', gridsize: 1, sha256: 'a', size: 1 });
  assert.equal(none.verdict, 'NO MANIFEST ENTRY');
});

test('adding the sparse view is configuration: it is pending, never requested from Phase D', () => {
  const c = base();
  c.views = ['baseline', 'dense', 'sparse'];
  const specs = specsOf(c);
  const names = specs.map(specName);
  assert.ok(!names.some((n) => n.includes('sparse-gs2')), 'no sparse training target');
  const d = specs.find((s) => s.name === 'phase-d-dose1000')!;
  assert.match(d.run as string, /--views dense\)/);
  const summary = specs.find((s) => s.name === 'summary')!;
  assert.deepEqual((summary.params as { pending: Array<{ view: string }> }).pending.map((p) => p.view), ['sparse']);
});

test('adding dose 10000 is configuration: new per-dose targets, plan names kept for the first dose', () => {
  const c = base();
  c.doses = [1000, 10000];
  const names = specsOf(c).map(specName);
  for (const n of ['phase-c-dose10000', 'phase-d-dose10000', 'train-dose10000-dense-gs2', 'train-dose10000-baseline-gs1'])
    assert.ok(names.includes(n), n);
  assert.ok(names.some((n) => n.endsWith('/data/wts_dense_gs2.h5.zip')));
  assert.ok(names.some((n) => n.endsWith('/data/wts_dense_gs2_dose10000.h5.zip')));
});

test('training targets depend only on their own view settings, share one pool, and wait for the evidence', () => {
  const specs = specsOf(base());
  const dense = specs.find((s) => s.name === 'train-dose1000-dense-gs2')!;
  const baseline = specs.find((s) => s.name === 'train-dose1000-baseline-gs1')!;
  assert.ok(dense.inputs!.includes('tmp/phase_e_training_gs2/settings/dense.json'));
  assert.ok(!dense.inputs!.some((i) => i.includes('settings/baseline')));
  assert.ok(!baseline.inputs!.some((i) => i.includes('settings/dense')));
  assert.equal(dense.pool, baseline.pool);
  assert.equal(dense.deps!.length, 3);
  for (const a of ['hub', 'bundles', 'dense', 'baseline', 'verify', 'summary', 'phase-g-ready'])
    assert.ok(specs.some((s) => specName(s) === a && s.description), `alias ${a} with a description`);
});

test('capture-job trusts only a manifest written by this call, records the job and fails unless it succeeded', () => {
  const A = mkdtempSync(path.join(os.tmpdir(), 'hubmake-capture-'));
  const m: TrainingManifest = { timestamp: 't', jobs: [job('dense', 2, 'a'.repeat(64), 10)], skipped_views: [] };
  writeFileSync(path.join(A, 'training_manifest.json'), JSON.stringify(m));
  const run = (sinceNs: bigint) =>
    spawnSync(process.execPath, ['--import', 'tsx', 'rules/bin/capture-job.ts', '--artifact-root', A, '--dose', '1000', '--view', 'dense',
      '--gridsize', '2', '--out', path.join(A, 'rec.json'), '--since-ns', String(sinceNs)], { cwd: REPO, encoding: 'utf8' });
  const ok = run(0n);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal(JSON.parse(readFileSync(path.join(A, 'rec.json'), 'utf8')).status, 'success');
  // A call that started after the file was written (e.g. "no jobs match": no manifest) must not reuse it.
  const stale = run(BigInt(Date.now() + 5000) * 1_000_000n);
  assert.equal(stale.status, 1);
  assert.equal(JSON.parse(readFileSync(path.join(A, 'rec.json'), 'utf8')).status, 'missing');
});

test('the summary is a pure function of what the build knows: same facts, same bytes; upstream blockers first', () => {
  const specs = specsOf(base());
  const p = specs.find((x) => x.name === 'summary')!.params as SummaryParams;
  const oc = (name: string, status: TargetOutcome['status'], extra: Partial<TargetOutcome> = {}): [string, TargetOutcome] =>
    [name, { name, status, outputs: [], deps: [], buildId: 'B1', durationMs: 1200, exitCode: 0, ...extra }];
  const outcomes = new Map(specs.filter((x) => x.run).map((x) => oc(specName(x), 'fresh', { command: typeof x.run === 'string' ? x.run : `action ${specName(x)}` })));
  const facts = { outcomes, records: new Map(), checks: null, skips: [] };
  const a = renderSummary(p, facts);
  assert.equal(renderSummary(p, facts), a);
  assert.match(a, /^Status: COMPLETE$/m);
  assert.doesNotMatch(a, new RegExp(String(new Date().getUTCFullYear()) + '-\\d\\d-\\d\\dT'), 'no wall-clock time');
  // A red selector and a failed training: the evidence comes first (it is upstream).
  const ev = p.evidence[0]!.target;
  outcomes.set(...oc(ev, 'failed', { exitCode: 1 }));
  outcomes.set(...oc(p.jobs[1]!.target, 'failed', { exitCode: 1, error: 'command failed' }));
  const b = renderSummary(p, facts);
  assert.match(b, /^Status: BLOCKED$/m);
  assert.match(b, /^Reason: test evidence not green: green\/pytest_bundle_sha_green\.log \(FAILED \(exit 1\)\)/m);
  assert.match(b, /^- also: training dense gs2 dose 1000 failed/m);
  assert.match(b, /Status: BLOCKED — test evidence not green/); // the ledger line
});

test.run();
