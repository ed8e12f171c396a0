// The artifact cache end to end through the CLI: a fingerprint seen before restores its outputs
// instead of running the command (after a revert, and across roots sharing --cache-dir), and a
// damaged or unparsable entry is ignored. Policies (gc, opting out) are in cache-policy.test.ts.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliAsync, read } from './lib/cli.ts';
import { buildIdOf, modelSha, ranCount, root, starts } from './lib/cacheFixture.ts';


test('params A -> B -> A: the third build runs no command and restores A\'s exact bytes', () => {
  const r = root();
  const a = cli(r, ['--json'], { LR: '0.1' });
  assert.is(a.code, 0, a.stderr);
  const shaA = modelSha(r);
  const buildA = buildIdOf(a);
  const b = cli(r, ['--json'], { LR: '0.5' });
  assert.is(b.code, 0, b.stderr);
  assert.ok(modelSha(r) !== shaA);
  assert.is(ranCount(r, 'train'), 2);
  const back = cli(r, ['--json'], { LR: '0.1' });
  assert.is(back.code, 0, back.stderr);
  assert.equal(starts(back), [], 'no command ran');
  assert.is(ranCount(r, 'train'), 2);
  assert.is(ranCount(r, 'eval'), 2);
  assert.is(modelSha(r), shaA);
  assert.is(read(r, 'out/bundle/params.txt'), 'lr 0.1\n');
  const fin = back.events.find((e) => e.type === 'finish' && e.target === 'train')!;
  assert.is(fin.status, 'built');
  assert.is((fin.restored as { buildId: string }).buildId, buildA, 'names the build that produced the outputs');
  // Recorded as if it ran: the next build has nothing to do.
  const again = cli(r, ['--json'], { LR: '0.1' });
  assert.equal(starts(again), []);
  assert.not.ok(again.events.some((e) => e.type === 'finish'));
  // --explain says so, with the producing build, and that the log is not re-created.
  cli(r, [], { LR: '0.5' });
  const ex = cli(r, ['--explain'], { LR: '0.1' });
  assert.match(ex.stdout, new RegExp(`restored from the artifact cache \\(\\.hubmake/cache\\) instead of running: the outputs of build ${buildA.replace(/[.]/g, '\\.')}.*log is not re-created`));
  assert.match(ex.stdout, /restored train from the cache \(outputs of build /);
  // --status shows the cache use.
  const st = cli(r, ['--status'], { LR: '0.5' });
  assert.match(st.stdout, /stale\s+train .*\[restorable from the cache: build /);
  assert.match(st.stdout, /^cache\s+4 entries, \d+(\.\d)? KiB in \.hubmake\/cache$/m);
});

test('two roots sharing one --cache-dir: the second root runs no command', () => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-shared-cache-'));
  const r1 = root();
  const r2 = root();
  const one = cli(r1, ['--json', '--cache-dir', shared]);
  assert.is(one.code, 0, one.stderr);
  const two = cli(r2, ['--json'], { HUBMAKE_CACHE_DIR: shared });
  assert.is(two.code, 0, two.stderr);
  assert.equal(starts(two), []);
  assert.is(ranCount(r2, 'train') + ranCount(r2, 'eval'), 0);
  assert.is(modelSha(r2), modelSha(r1));
  assert.is(read(r2, 'out/eval.txt'), read(r1, 'out/eval.txt'));
  assert.ok(fs.existsSync(path.join(shared, 'entries')) && fs.existsSync(path.join(shared, 'blobs')));
  assert.not.ok(fs.existsSync(path.join(r2, '.hubmake/cache')), 'the shared directory is used instead of the local one');
});

test('two builds writing one shared cache at the same time: both succeed, every entry is whole', async () => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-shared-cache-'));
  const roots = [root(), root()];
  const codes = await Promise.all(roots.map((r) => new Promise<number | null>((resolve) => {
    const c = cliAsync(r, ['--cache-dir', shared]);
    c.on('close', resolve);
  })));
  assert.equal(codes, [0, 0]);
  // Whichever wrote last, a third root restores a consistent pair: eval's output is that of the same model.
  const r3 = root();
  const three = cli(r3, ['--json', '--cache-dir', shared]);
  assert.is(three.code, 0, three.stderr);
  assert.equal(starts(three).filter((t) => t === 'train'), []);
  const origin = roots.find((r) => modelSha(r) === modelSha(r3));
  assert.ok(origin, 'the restored model is one of the two written');
  assert.is(read(r3, 'out/eval.txt'), read(origin!, 'out/eval.txt'));
  assert.equal(fs.readdirSync(path.join(shared, 'blobs', 'tmp')), [], 'no temp files left');
});

test('a flipped byte in a cached blob: the entry is ignored, the command runs, the cache heals', () => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-shared-cache-'));
  const r1 = root();
  assert.is(cli(r1, ['--cache-dir', shared]).code, 0);
  const blob = path.join(shared, 'blobs', modelSha(r1).slice(0, 2), modelSha(r1));
  fs.chmodSync(blob, 0o644);
  const buf = fs.readFileSync(blob);
  buf[100] = buf[100]! ^ 0x01;
  fs.writeFileSync(blob, buf);
  const r2 = root();
  const two = cli(r2, ['--json', '--cache-dir', shared]);
  assert.is(two.code, 0, two.stderr);
  assert.ok(starts(two).includes('train'), 'the command ran');
  assert.ok(two.events.some((e) => e.type === 'warning' && /not usable.*corrupt/.test(String(e.message))));
  assert.ok(modelSha(r2) !== modelSha(r1), 'fresh random bytes, not the damaged ones');
  // The damaged blob was replaced by the new run's outputs: a third root restores those.
  const r3 = root();
  const three = cli(r3, ['--json', '--cache-dir', shared]);
  assert.equal(starts(three), []);
  assert.is(modelSha(r3), modelSha(r2));
});

test('an unparsable entry is ignored', () => {
  const shared = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-shared-cache-'));
  const r1 = root();
  assert.is(cli(r1, ['--cache-dir', shared]).code, 0);
  const shards = fs.readdirSync(path.join(shared, 'entries'));
  for (const s of shards) for (const f of fs.readdirSync(path.join(shared, 'entries', s))) fs.writeFileSync(path.join(shared, 'entries', s, f), '{"v":1,"key":');
  const r2 = root();
  const two = cli(r2, ['--json', '--cache-dir', shared]);
  assert.is(two.code, 0, two.stderr);
  assert.equal(starts(two).sort(), ['eval', 'train']);
});

test.run();
