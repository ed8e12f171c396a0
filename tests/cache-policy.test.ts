// Artifact cache policies end to end through the CLI: by default only runs of 100 ms or more are
// stored, gc evicts least recently used entries first, `cache: false` and --no-cache opt out, -B always runs, and a rebuild: 'missing' target is never
// overwritten from the cache while its outputs exist.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read } from './lib/cli.ts';
import { modelSha, module, ranCount, root, starts } from './lib/cacheFixture.ts';

const entryTargets = (r: string): string[] => {
  const dir = path.join(r, '.hubmake/cache/entries');
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).flatMap((s) => fs.readdirSync(path.join(dir, s)).map((f) => JSON.parse(fs.readFileSync(path.join(dir, s, f), 'utf8')).target as string)).sort();
};

test('by default a run is stored only when it took 100 ms or more; cache: true stores every run; --cache-min-ms / HUBMAKE_CACHE_MIN_MS move the bar', () => {
  const r = root(`
const v = process.env.V ?? '1';
export default [
  { name: 'quick', outputs: ['out/quick.txt'], params: { v }, run: 'echo ' + v + ' >> ran.txt; echo quick ' + v + ' > out/quick.txt' },
  { name: 'slow', outputs: ['out/slow.txt'], params: { v }, run: 'echo ' + v + ' >> ran-slow.txt; sleep 0.3; echo slow ' + v + ' > out/slow.txt' },
  { name: 'forced', outputs: ['out/forced.txt'], params: { v }, cache: true, run: 'echo forced ' + v + ' > out/forced.txt' },
];
`);
  fs.mkdirSync(path.join(r, 'out'));
  for (const v of ['1', '2']) assert.is(cli(r, [], { V: v }).code, 0);
  assert.equal(entryTargets(r), ['forced', 'forced', 'slow', 'slow'], 'the quick run is not stored');
  // Back to 1: the slow and the forced target come from the cache, the quick one runs again.
  const back = cli(r, ['--json'], { V: '1' });
  assert.equal(starts(back), ['quick']);
  assert.is(read(r, 'out/quick.txt'), 'quick 1\n');
  assert.is(read(r, 'out/slow.txt'), 'slow 1\n');
  // --cache-min-ms 0 stores every run (HUBMAKE_CACHE_MIN_MS likewise); the flag wins over the variable.
  assert.is(cli(r, ['--cache-min-ms', '0'], { V: '3', HUBMAKE_CACHE_MIN_MS: '100000' }).code, 0);
  assert.is(cli(r, [], { V: '4', HUBMAKE_CACHE_MIN_MS: '0' }).code, 0);
  assert.equal(starts(cli(r, ['--json'], { V: '3' })), []);
  assert.equal(starts(cli(r, ['--json'], { V: '4' })), []);
  // A bar above the slow run's time keeps it out too.
  assert.is(cli(r, ['--cache-min-ms', '100000'], { V: '5' }).code, 0);
  assert.is(entryTargets(r).filter((t) => t === 'slow').length, 4, 'runs 1-4 of slow are stored, run 5 is not');
  // A bad value is a usage error that names where it came from.
  const bad = cli(r, ['--cache-min-ms', 'soon']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--cache-min-ms.*whole number of milliseconds/);
  const badEnv = cli(r, [], { HUBMAKE_CACHE_MIN_MS: '1.5s' });
  assert.is(badEnv.code, 2);
  assert.match(badEnv.stderr, /HUBMAKE_CACHE_MIN_MS/);
});

test('gc with a size limit evicts the least recently used entries first', () => {
  const r = root(`
const v = process.env.V ?? '1';
export default [{ name: 'blob', outputs: ['out/blob.bin'], params: { v }, cache: true, run: 'echo ' + v + ' >> ran.txt; head -c 1000 /dev/urandom > out/blob.bin' }];
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
  assert.equal([...new Set(targets)], ['eval'], 'only eval (cache: true) has entries');
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
