// Golden tests of the PtychoPINN toolchain's command lines, through `build.ts hub --dry-run`
// (a dry run prints each command that would run). Set UPDATE_GOLDEN=1 to rewrite the goldens.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import { build, hubCopy, REPO } from './fixtures/hub/lib.ts';

const GOLDEN = path.join(REPO, 'tests/fixtures/hub');

/** The files of a PtychoPINN checkout the evidence targets read. */
function fakeCheckout(dir: string): void {
  for (const f of ['tests/study/test_dose_overlap_training.py', 'studies/fly64_dose_overlap/training.py', 'ptycho_torch/model_manager.py']) {
    fs.mkdirSync(path.join(dir, path.dirname(f)), { recursive: true });
    fs.writeFileSync(path.join(dir, f), '# stand-in\n');
  }
}

/** The commands a dry run would run, one `target: command` per line. */
function commands(stdout: string): string {
  return stdout
    .split('\n')
    .filter((l) => /^(would run|may run)/.test(l))
    .join('\n') + '\n';
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN, name);
  if (process.env.UPDATE_GOLDEN) fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `golden ${name} (UPDATE_GOLDEN=1 to rewrite)`);
}

const ptychopinn = (root: string, extra: Record<string, unknown> = {}) => (c: Record<string, any>) => {
  c.ptychopinn = {
    root,
    python: 'python',
    baseNpz: 'tike_outputs/fly001_reconstructed_final_prepared/fly001_reconstructed_interp_smooth_both.npz',
    backend: 'pytorch',
    executionFlags: ['--accelerator', 'cpu', '--deterministic', '--num-workers', '0'],
    epochsFlag: null,
    ...extra,
  };
};

test('hub inside the PtychoPINN checkout (ptychopinn.root "."): exact command lines', () => {
  const root = hubCopy(ptychopinn('.'));
  fakeCheckout(root);
  const r = build(root, ['hub', '--dry-run', '-j', '1']);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, /toolchain: ptychopinn \(checkout \., python\)/);
  golden('ptychopinn-dry-run.txt', commands(r.stdout));
  // Nothing ran, nothing was written.
  assert.ok(!fs.existsSync(path.join(root, 'tmp')) && !fs.existsSync(path.join(root, 'plans')));
});

test('checkout beside the root, with an interpreter path with a space, epochs flag and extra args: quoted', () => {
  const parent = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-pp-'));
  const root = hubCopy(
    (c) => {
      ptychopinn('../PtychoPINN', { python: '/opt/my envs/bin/python', epochsFlag: '--max_epochs' })(c);
      c.training.dense.args = ['--n_images', '32', '--logger', 'csv'];
    },
    path.join(parent, 'hub'),
  );
  fakeCheckout(path.join(parent, 'PtychoPINN'));
  const r = build(root, ['hub', '--dry-run', '-j', '1']);
  assert.equal(r.code, 0, r.stderr);
  golden('ptychopinn-sibling-dry-run.txt', commands(r.stdout));
});

test.run();
