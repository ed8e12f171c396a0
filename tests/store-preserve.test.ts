// Never lose an artifact, end to end through the CLI: a rerun that fails after truncating its
// output, or that is killed mid-command, leaves the last good outputs in the store, the failure
// says where, and `--restore <target>` brings the exact bytes back and makes the target fresh.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliAsync, read, tempRoot, write } from './lib/cli.ts';

const sha = (b: string | Buffer) => crypto.createHash('sha256').update(b).digest('hex');

// MODE picks the params; 'fail' truncates the outputs and exits 3, 'hang' truncates and sleeps.
// cache: false, so that only the preserved copy can bring the outputs back.
const MODULE = `
const mode = process.env.MODE ?? 'good';
const wreck = ': > out/model.bin; : > out/bundle/sub/params.txt; touch out/bundle/partial; echo truncated';
const tail = mode === 'fail' ? wreck + '; exit 3' : mode === 'hang' ? wreck + '; sleep 30' : 'true';
export default [
  {
    name: 'train',
    outputs: ['out/model.bin', 'out/bundle/'],
    params: { mode },
    log: 'logs/train.log',
    cache: false,
    run: \`echo "run \${mode}" >> ran.txt; mkdir -p out/bundle/sub; head -c 5000 /dev/urandom > out/model.bin; echo "\${mode}" > out/bundle/sub/params.txt; \${tail}\`,
  },
  { name: 'report', outputs: ['out/report.txt'], inputs: ['out/model.bin'], run: 'wc -c < out/model.bin > out/report.txt' },
];
`;

function files(root: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const rel of ['out/model.bin', 'out/bundle/sub/params.txt']) out.set(rel, sha(fs.readFileSync(path.join(root, rel))));
  return out;
}

function goodRoot(): { root: string; good: Map<string, string>; buildId: string } {
  const root = tempRoot('hubmake-preserve-');
  write(root, 'targets/index.ts', MODULE);
  const r = cli(root, ['--json'], { MODE: 'good' });
  assert.is(r.code, 0, r.stderr);
  const buildId = String(r.events.find((e) => e.type === 'build-start')!.buildId);
  return { root, good: files(root), buildId };
}

test('a rerun that fails after truncating its outputs: the failure names the preserved copy, --restore brings the bytes back', () => {
  const { root, good, buildId } = goodRoot();
  assert.is(read(root, 'ran.txt'), 'run good\n');
  const r = cli(root, ['--json'], { MODE: 'fail' });
  assert.is(r.code, 1);
  assert.is(fs.statSync(path.join(root, 'out/model.bin')).size, 0, 'the failed run did truncate the output');
  const fin = r.events.find((e) => e.type === 'finish' && e.target === 'train')!;
  assert.is(fin.status, 'failed');
  const preserved = fin.preserved as { buildId: string; path: string };
  assert.is(preserved.buildId, buildId);
  assert.ok(fs.existsSync(path.join(root, preserved.path)), preserved.path);
  // The plain failure message says how to get them back.
  const again = cli(root, [], { MODE: 'fail' });
  assert.is(again.code, 1);
  assert.match(again.stderr, /the last good outputs \(build [^)]+\) are kept in .*--restore 'train'/);

  const rr = cli(root, ['--restore', 'train', '--json'], { MODE: 'good' });
  assert.is(rr.code, 0, rr.stderr);
  const ev = rr.events.find((e) => e.type === 'restored')!;
  assert.is(ev.buildId, buildId);
  assert.is(ev.source, 'preserved');
  assert.is(ev.fresh, true);
  assert.equal(files(root), good);
  assert.not.ok(fs.existsSync(path.join(root, 'out/bundle/partial')), 'the stray file of the failed run is gone from the directory output');
  // Re-recorded: with the old settings the target is fresh again, nothing runs.
  const after = cli(root, ['--json'], { MODE: 'good' });
  assert.is(after.code, 0, after.stderr);
  assert.equal(after.events.filter((e) => e.type === 'start').map((e) => e.target), [], 'train fresh, and report sees the very input it was built from');
  assert.is(read(root, 'ran.txt'), 'run good\nrun fail\nrun fail\n');
});

test('--restore with new settings in force says the next build reruns it', () => {
  const { root, good } = goodRoot();
  cli(root, [], { MODE: 'fail' });
  const rr = cli(root, ['--restore', 'out/model.bin'], { MODE: 'fail' });
  assert.is(rr.code, 0, rr.stderr);
  assert.match(rr.stdout, /restored train: the outputs of build .* verified by sha256/);
  assert.match(rr.stdout, /the next build reruns it/);
  assert.equal(files(root), good);
});

test('a rerun killed mid-command (SIGKILL of the whole build) leaves the last good outputs restorable', async () => {
  const { root, good, buildId } = goodRoot();
  const child = cliAsync(root, [], { MODE: 'hang' });
  const deadline = Date.now() + 20_000;
  while (!(fs.existsSync(path.join(root, 'out/bundle/partial')) && fs.statSync(path.join(root, 'out/model.bin')).size === 0)) {
    if (Date.now() > deadline) throw new Error('the hanging rerun never truncated its outputs');
    await new Promise((r) => setTimeout(r, 50));
  }
  process.kill(-child.pid!, 'SIGKILL');
  await new Promise((r) => child.on('close', r));
  assert.is(fs.statSync(path.join(root, 'out/model.bin')).size, 0);
  const rr = cli(root, ['--restore', 'train', '--json'], { MODE: 'good' });
  assert.is(rr.code, 0, rr.stderr);
  assert.is(rr.events.find((e) => e.type === 'restored')!.buildId, buildId);
  assert.equal(files(root), good);
  const after = cli(root, ['--json'], { MODE: 'good' });
  assert.equal(after.events.filter((e) => e.type === 'start').map((e) => e.target), [], 'fresh after the restore');
});

test('a second failed rerun does not replace the good copy with the wreck of the first', () => {
  const { root, good } = goodRoot();
  assert.is(cli(root, [], { MODE: 'fail' }).code, 1);
  assert.is(cli(root, [], { MODE: 'fail' }).code, 1);
  assert.is(cli(root, ['--restore', 'train'], { MODE: 'good' }).code, 0);
  assert.equal(files(root), good);
});

test('a successful rerun releases the preserved copy: the store does not keep the old outputs', () => {
  const { root, good } = goodRoot();
  const blob = (h: string) => path.join(root, '.hubmake/store/blobs', h.slice(0, 2), h);
  assert.is(cli(root, [], { MODE: 'fail' }).code, 1);
  assert.ok(fs.existsSync(blob(good.get('out/model.bin')!)), 'preserved while the rerun failed');
  assert.is(cli(root, [], { MODE: 'other' }).code, 0);
  assert.not.ok(fs.existsSync(blob(good.get('out/model.bin')!)), 'released once a rerun succeeded');
  const n = cli(root, ['--restore', 'train'], { MODE: 'other' });
  assert.is(n.code, 0, 'the outputs on disk are the last good ones now');
  assert.match(n.stdout, /already the recorded ones/);
});

test('--restore: unknown target exits 2; a target never built successfully exits 1', () => {
  const root = tempRoot('hubmake-preserve-');
  write(root, 'targets/index.ts', MODULE);
  const u = cli(root, ['--restore', 'nope']);
  assert.is(u.code, 2);
  assert.match(u.stderr, /--restore.*'nope' is not a target/);
  const n = cli(root, ['--restore', 'train']);
  assert.is(n.code, 1);
  assert.match(n.stderr, /nothing to restore/);
});

test.run();
