// The cache index in process: keys, sizes, and gc's bookkeeping when entries share blobs.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ArtifactCache, cacheKey, parseSize } from '../engine/cache.ts';
import { BlobStore } from '../engine/store.ts';

test('the key covers the fingerprint and the declared outputs list', () => {
  const d = 'a'.repeat(64);
  assert.is.not(cacheKey(d, ['out/a']), cacheKey(d, ['out/a', 'out/b']));
  assert.is.not(cacheKey(d, ['out/a']), cacheKey('b'.repeat(64), ['out/a']));
  assert.is(cacheKey(d, ['out/a', 'out/b']), cacheKey(d, ['out/a', 'out/b']));
  assert.is.not(cacheKey(d, ['ab', 'c']), cacheKey(d, ['a', 'bc']));
});

test('sizes', () => {
  assert.is(parseSize('1024'), 1024);
  assert.is(parseSize('10k'), 10 * 1024);
  assert.is(parseSize('1.5G'), 1.5 * 1024 ** 3);
  assert.is(parseSize('500MB'), 500 * 1024 ** 2);
  assert.is(parseSize('2GiB'), 2 * 1024 ** 3);
  assert.is(parseSize('lots'), undefined);
  assert.is(parseSize('-1'), undefined);
});

test('gc: LRU by entry mtime; a blob shared with a kept entry stays; unreferenced blobs go', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-cache-unit-'));
  const store = new BlobStore(path.join(root, 'blobs'));
  const cache = new ArtifactCache(path.join(root, 'cache'), store);
  const w = (rel: string, bytes: number, fill: string) => fs.writeFileSync(path.join(root, rel), fill.repeat(bytes));
  w('shared.bin', 1000, 's');
  w('a.bin', 1000, 'a');
  w('b.bin', 1000, 'b');
  const ka = cacheKey('1'.repeat(64), ['a.bin', 'shared.bin']);
  const kb = cacheKey('2'.repeat(64), ['b.bin', 'shared.bin']);
  cache.store(ka, 'a', 'build-a', 1, root, { 'a.bin': 'x', 'shared.bin': 'y' });
  cache.store(kb, 'b', 'build-b', 1, root, { 'b.bin': 'x', 'shared.bin': 'y' });
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(cache.entryPath(ka), old, old); // a is older...
  assert.ok(cache.lookup(ka, true)); // ...until it is used
  fs.utimesSync(cache.entryPath(kb), old, old);
  assert.equal(cache.stats(), { entries: 2, bytes: 3000 }, 'the shared blob counts once');
  const r = cache.gc(2500);
  assert.is(r.evicted, 1);
  assert.equal({ entries: r.entries, bytes: r.bytes }, { entries: 1, bytes: 2000 });
  assert.ok(cache.lookup(ka, false), 'the recently used entry stays');
  assert.is(cache.lookup(kb, false), undefined);
  const left = [...store.list()].map((b) => b.size).sort();
  assert.equal(left, [1000, 1000], "b's own blob removed, the shared one kept");
  // No limit: nothing evicted, but a blob nothing refers to is removed.
  fs.writeFileSync(path.join(root, 'stray.bin'), 'stray');
  store.put(path.join(root, 'stray.bin'));
  const r2 = cache.gc(undefined);
  assert.is(r2.evicted, 0);
  assert.is(r2.removedBlobs, 1);
  assert.ok(cache.lookup(ka, false));
});

test('an entry whose blob is missing or has another size is a miss', () => {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-cache-unit-'));
  const store = new BlobStore(path.join(root, 'blobs'));
  const cache = new ArtifactCache(path.join(root, 'cache'), store);
  fs.writeFileSync(path.join(root, 'a.bin'), 'alpha');
  const k = cacheKey('3'.repeat(64), ['a.bin']);
  const e = cache.store(k, 'a', 'b1', 1, root, { 'a.bin': 'x' });
  assert.ok(cache.lookup(k, false));
  const blob = store.pathOf(e.outputSet.files['a.bin']!.h);
  fs.chmodSync(blob, 0o644);
  fs.appendFileSync(blob, '!');
  assert.is(cache.lookup(k, false), undefined);
  fs.rmSync(blob);
  assert.is(cache.lookup(k, false), undefined);
});

test.run();
