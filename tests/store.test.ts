// The content-addressed store on its own: round trips verified by sha256, copies that stay apart
// from the files they came from (no hard links), damaged blobs detected and removed, several
// writers at once, and bundles of directory outputs restored whole or not at all.
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BlobError, BlobStore, materialize, snapshot } from '../engine/store.ts';
import { REPO } from './lib/cli.ts';

const sha = (b: string | Buffer) => crypto.createHash('sha256').update(b).digest('hex');

function tmp(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-store-'));
}

test('put stores a file under its sha256, read-only; fetch copies it back verified', () => {
  const dir = tmp();
  const store = new BlobStore(path.join(dir, 'blobs'));
  fs.writeFileSync(path.join(dir, 'a.bin'), 'alpha bytes\n');
  fs.chmodSync(path.join(dir, 'a.bin'), 0o755);
  const ref = store.put(path.join(dir, 'a.bin'));
  assert.is(ref.h, sha('alpha bytes\n'));
  assert.is(ref.size, 12);
  assert.is(ref.x, 1);
  const blob = store.pathOf(ref.h);
  assert.is(fs.readFileSync(blob, 'utf8'), 'alpha bytes\n');
  assert.is(fs.statSync(blob).mode & 0o777, 0o444);
  store.fetch(ref, path.join(dir, 'back.bin'));
  assert.is(fs.readFileSync(path.join(dir, 'back.bin'), 'utf8'), 'alpha bytes\n');
  assert.is(fs.statSync(path.join(dir, 'back.bin')).mode & 0o777, 0o755, 'restored files are writable, executable bit kept');
  assert.equal(fs.readdirSync(path.join(dir, 'blobs', 'tmp')), [], 'no temp file left behind');
});

test('copies, never hard links: rewriting a file in place (O_TRUNC) changes neither side', () => {
  const dir = tmp();
  const store = new BlobStore(path.join(dir, 'blobs'));
  const src = path.join(dir, 'out.txt');
  fs.writeFileSync(src, 'good output\n');
  const ref = store.put(src);
  assert.is(fs.statSync(src).nlink, 1);
  assert.ok(fs.statSync(store.pathOf(ref.h)).ino !== fs.statSync(src).ino);
  fs.writeFileSync(src, 'x'); // opens with O_TRUNC, like `cmd > out.txt`
  assert.is(fs.readFileSync(store.pathOf(ref.h), 'utf8'), 'good output\n');
  // The other direction: a restored file rewritten in place must not touch the blob either.
  const back = path.join(dir, 'restored.txt');
  store.fetch(ref, back);
  assert.is(fs.statSync(back).nlink, 1);
  fs.writeFileSync(back, 'scribbled over');
  store.fetch(ref, path.join(dir, 'again.txt'));
  assert.is(fs.readFileSync(path.join(dir, 'again.txt'), 'utf8'), 'good output\n');
});

test('a known hash skips the copy only when that blob exists with the same size', () => {
  const dir = tmp();
  const store = new BlobStore(path.join(dir, 'blobs'));
  fs.writeFileSync(path.join(dir, 'a'), 'same');
  const ref = store.put(path.join(dir, 'a'));
  const before = fs.statSync(store.pathOf(ref.h)).ino;
  assert.equal(store.put(path.join(dir, 'a'), ref.h), ref);
  assert.is(fs.statSync(store.pathOf(ref.h)).ino, before, 'reused, not rewritten');
  // A stale hint (the file changed size since) is not trusted: the copy is hashed afresh.
  fs.writeFileSync(path.join(dir, 'a'), 'different now');
  const r2 = store.put(path.join(dir, 'a'), ref.h);
  assert.is(r2.h, sha('different now'));
});

test('a flipped byte in a blob is detected on fetch, the blob removed, the destination not written', () => {
  const dir = tmp();
  const store = new BlobStore(path.join(dir, 'blobs'));
  fs.writeFileSync(path.join(dir, 'a'), 'precious bytes');
  const ref = store.put(path.join(dir, 'a'));
  const blob = store.pathOf(ref.h);
  fs.chmodSync(blob, 0o644);
  const buf = fs.readFileSync(blob);
  buf[3] = buf[3]! ^ 0xff;
  fs.writeFileSync(blob, buf);
  assert.throws(() => store.fetch(ref, path.join(dir, 'out')), (e: unknown) => e instanceof BlobError && /corrupt/.test((e as Error).message));
  assert.not.ok(fs.existsSync(path.join(dir, 'out')));
  assert.not.ok(fs.existsSync(blob), 'the damaged blob is gone, so the next put stores good bytes');
  assert.not.ok(store.has(ref.h));
  store.put(path.join(dir, 'a'), ref.h);
  assert.is(fs.readFileSync(blob, 'utf8'), 'precious bytes');
});

test('directory outputs: snapshot keeps every file; materialize swaps the tree in whole, or changes nothing', () => {
  const root = tmp();
  const store = new BlobStore(path.join(root, '.hubmake/store/blobs'));
  const w = (rel: string, s: string) => {
    fs.mkdirSync(path.dirname(path.join(root, rel)), { recursive: true });
    fs.writeFileSync(path.join(root, rel), s);
  };
  w('bundle/model.bin', 'weights');
  w('bundle/sub/.meta', 'hidden');
  w('bundle/sub/deep/x.json', '{}');
  w('report.txt', 'report');
  const { outputSet: bundle, bytes } = snapshot(store, root, { 'bundle/': 'tree:whatever', 'report.txt': sha('report') });
  assert.equal(Object.keys(bundle.files).sort(), ['bundle/model.bin', 'bundle/sub/.meta', 'bundle/sub/deep/x.json', 'report.txt']);
  assert.is(bytes, 7 + 6 + 2 + 6);
  // A failed rerun wrecks the tree: truncates one file, adds a stray one, removes another.
  w('bundle/model.bin', '');
  w('bundle/stray.tmp', 'junk');
  fs.rmSync(path.join(root, 'bundle/sub/deep'), { recursive: true });
  w('report.txt', 'half');
  const r = materialize(store, root, bundle);
  assert.equal(r, { files: 4, bytes: 21 });
  assert.is(fs.readFileSync(path.join(root, 'bundle/model.bin'), 'utf8'), 'weights');
  assert.is(fs.readFileSync(path.join(root, 'bundle/sub/deep/x.json'), 'utf8'), '{}');
  assert.is(fs.readFileSync(path.join(root, 'bundle/sub/.meta'), 'utf8'), 'hidden');
  assert.not.ok(fs.existsSync(path.join(root, 'bundle/stray.tmp')));
  assert.is(fs.readFileSync(path.join(root, 'report.txt'), 'utf8'), 'report');
  assert.equal(fs.readdirSync(root).sort(), ['.hubmake', 'bundle', 'report.txt'], 'no temp or old directories left');
  // Damage one blob: the restore fails before renaming anything.
  w('report.txt', 'edited');
  const blob = store.pathOf(bundle.files['bundle/sub/deep/x.json']!.h);
  fs.chmodSync(blob, 0o644);
  fs.writeFileSync(blob, '[]');
  assert.throws(() => materialize(store, root, bundle), (e: unknown) => e instanceof BlobError);
  assert.is(fs.readFileSync(path.join(root, 'report.txt'), 'utf8'), 'edited', 'nothing was renamed into place');
  assert.equal(fs.readdirSync(root).sort(), ['.hubmake', 'bundle', 'report.txt']);
});

test('several processes writing the same and different blobs at once leave only whole, correct blobs', async () => {
  const dir = tmp();
  const blobs = path.join(dir, 'blobs');
  const script = path.join(dir, 'writer.mts');
  // Each writer stores the shared file and one of its own, 30 times over.
  fs.writeFileSync(script, `
import fs from 'node:fs';
import { BlobStore } from ${JSON.stringify(path.join(REPO, 'engine/store.ts'))};
const [dir, id] = process.argv.slice(2);
const store = new BlobStore(dir + '/blobs');
fs.writeFileSync(dir + '/own-' + id, 'own content of writer ' + id + '\\n'.repeat(1000));
for (let i = 0; i < 30; i++) { store.put(dir + '/shared'); store.put(dir + '/own-' + id); }
`);
  fs.writeFileSync(path.join(dir, 'shared'), crypto.randomBytes(300_000));
  const run = (id: number) => new Promise<number | null>((resolve) => {
    const c = spawn(process.execPath, ['--import', 'tsx', script, dir, String(id)], { cwd: REPO, stdio: 'inherit' });
    c.on('close', resolve);
  });
  const codes = await Promise.all([1, 2, 3].map(run));
  assert.equal(codes, [0, 0, 0]);
  const store = new BlobStore(blobs);
  const all = [...store.list()];
  assert.is(all.length, 4);
  for (const b of all) assert.is(sha(fs.readFileSync(store.pathOf(b.h))), b.h);
  assert.equal(fs.readdirSync(path.join(blobs, 'tmp')), []);
});

test.run();
