// Artifact cache policies end to end through the CLI: gc evicts least recently used entries first,
// `cache: false` and --no-cache opt out, -B always runs, and a rebuild: 'missing' target is never
// overwritten from the cache while its outputs exist.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read } from './lib/cli.ts';
import { modelSha, module, ranCount, root, starts } from './lib/cacheFixture.ts';


test('gc with a size limit evicts the least recently used entries first', () => {
  const r = root(`
const v = process.env.V ?? '1';
export default [{ name: 'blob', outputs: ['out/blob.bin'], params: { v }, run: 'echo ' + v + ' >> ran.txt; head -c 1000 /dev/urandom > out/blob.bin' }];
`);
  fs.mkdirSync(path.join(r, 'out'));
  for (const v of ['1', '2', '3']) assert.is(cli(r, [], { V: v }).code, 0);
  // Use 1 again (a restore touches its entry): 2 is now the least recently used.
  const use1 = cli(r, ['--json'], { V: '1' });
  assert.equal(starts(use1), []);
  const gc = cli(r, ['--gc', '--cache-limit', '2500', '--json']);
  assert.is(gc.code, 0, gc.stderr);
  const ev = gc.events.find((e) => e.type === 'cache-gc')!;
  assert.is(ev.evicted, 1);
  assert.is(ev.entries, 2);
  assert.is(ev.bytes, 2000);
  assert.match(cli(r, ['--status']).stdout, /^cache\s+2 entries, 2\.0 KiB/m);
  // 3 and 1 still restore; 2 runs its command again.
  assert.equal(starts(cli(r, ['--json'], { V: '3' })), []);
  assert.equal(starts(cli(r, ['--json'], { V: '1' })), []);
  assert.equal(starts(cli(r, ['--json'], { V: '2' })), ['blob']);
  assert.equal(read(r, 'ran.txt').split('\n').filter(Boolean), ['1', '2', '3', '2']);
  // A build with --cache-limit collects by itself at the end.
  const auto = cli(r, ['--json', '--cache-limit', '1k'], { V: '4' });
  const ev2 = auto.events.find((e) => e.type === 'cache-gc')!;
  assert.is(ev2.entries, 1, 'only the most recent entry fits');
  assert.equal(starts(cli(r, ['--json'], { V: '4' })), []);
});

test('cache: false opts out: the revert runs the command and nothing is stored', () => {
  const r = root(module({ cache: false }));
  cli(r, [], { LR: '0.1' });
  cli(r, [], { LR: '0.5' });
  const back = cli(r, ['--json'], { LR: '0.1' });
  assert.ok(starts(back).includes('train'));
  assert.is(ranCount(r, 'train'), 3);
  const dir = path.join(r, '.hubmake/cache/entries');
  const targets = fs.readdirSync(dir).flatMap((s) => fs.readdirSync(path.join(dir, s)).map((f) => JSON.parse(fs.readFileSync(path.join(dir, s, f), 'utf8')).target));
  assert.equal([...new Set(targets)], ['eval'], 'only eval (cache on by default) has entries');
  // --no-cache turns it off for a whole build.
  cli(r, [], { LR: '0.5' });
  const off = cli(r, ['--json', '--no-cache'], { LR: '0.1' });
  assert.ok(starts(off).includes('eval') || starts(off).includes('train'));
  assert.not.ok(off.events.some((e) => e.type === 'finish' && e.restored));
});

test("rebuild: 'missing': never overwritten from the cache while its outputs exist; restored once they are gone", () => {
  const r = root(module({ rebuild: 'missing' }));
  assert.is(cli(r, [], { LR: '0.1' }).code, 0);
  const shaA = modelSha(r);
  fs.rmSync(path.join(r, 'out/model.bin'));
  assert.is(cli(r, [], { LR: '0.5' }).code, 0);
  const shaB = modelSha(r);
  assert.is(ranCount(r, 'train'), 2);
  // Back to A, whose outputs are in the cache: B's outputs exist, so they are kept.
  const kept = cli(r, ['--json'], { LR: '0.1' });
  assert.is(kept.code, 0, kept.stderr);
  assert.is(modelSha(r), shaB);
  assert.ok(kept.events.some((e) => e.type === 'decision' && e.target === 'train' && e.action === 'keep'));
  // Outputs gone: restored from the cache instead of retraining.
  fs.rmSync(path.join(r, 'out'), { recursive: true });
  const restored = cli(r, ['--json'], { LR: '0.1' });
  assert.is(restored.code, 0, restored.stderr);
  assert.ok(restored.events.some((e) => e.type === 'finish' && e.target === 'train' && e.restored));
  assert.is(modelSha(r), shaA);
  assert.is(ranCount(r, 'train'), 2);
});

test('-B runs the command even when the cache holds the result', () => {
  const r = root();
  cli(r, []);
  const forced = cli(r, ['--json', '-B', 'train']);
  assert.equal(starts(forced), ['train'].concat(starts(forced).includes('eval') ? ['eval'] : []).sort());
  assert.is(ranCount(r, 'train'), 2);
});

test('bad --cache-limit is a usage error naming the option', () => {
  const r = root();
  const bad = cli(r, ['--cache-limit', 'lots']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--cache-limit.*500M/);
});

test.run();
