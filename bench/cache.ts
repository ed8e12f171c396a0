// The store and the artifact cache, measured (not a test). Prints one line per figure.
//
//   node --import tsx bench/cache.ts [--mib 256] [--files 2000] [--train-s 3]
//
// 1. In process: storing one large file (copy + sha256; a reflink where the file system can),
//    storing it again when the stat cache already knows its hash (nothing copied), restoring it
//    (copy + verify + rename); the same for a directory of many small files; a cache lookup.
// 2. Through the CLI: a "training" target (sleep --train-s, then --mib of output) switched
//    A -> B -> A: the third build restores A instead of training; also the cost the store adds to
//    a rerun (the B build) against the same build with --no-cache.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ArtifactCache, cacheKey } from '../engine/cache.ts';
import { BlobStore, materialize, snapshot } from '../engine/store.ts';

const { values: v } = parseArgs({ options: { mib: { type: 'string', default: '256' }, files: { type: 'string', default: '2000' }, 'train-s': { type: 'string', default: '3' } } });
const MIB = Number(v.mib);
const FILES = Number(v.files);
const TRAIN_S = Number(v['train-s']);
const REPO = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');

const ms = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e6;
function time<T>(label: string, fn: () => T, note = ''): T {
  const t0 = process.hrtime.bigint();
  const r = fn();
  console.log(`${label.padEnd(58)} ${ms(t0).toFixed(1).padStart(9)} ms${note ? `  ${note}` : ''}`);
  return r;
}

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'hubmake-bench-cache-'));
try {
  const store = new BlobStore(path.join(root, '.hubmake/store/blobs'));
  fs.mkdirSync(path.join(root, 'out/many'), { recursive: true });
  const big = path.join(root, 'out/model.bin');
  const fd = fs.openSync(big, 'w');
  const chunk = crypto.randomBytes(1 << 20);
  for (let i = 0; i < MIB; i++) fs.writeSync(fd, chunk.map((b) => b ^ i));
  fs.closeSync(fd);
  for (let i = 0; i < FILES; i++) fs.writeFileSync(path.join(root, `out/many/f${i}.json`), crypto.randomBytes(4096));
  console.log(`store benchmark in ${root} (${os.cpus().length} cores, ${MIB} MiB file, ${FILES} x 4 KiB files)`);

  const { outputSet: bundle } = time(`put ${MIB} MiB file (copy + sha256)`, () => snapshot(store, root, { 'out/model.bin': 'x' }));
  const h = bundle.files['out/model.bin']!.h;
  time(`put ${MIB} MiB file again, hash known (dedupe: no copy)`, () => snapshot(store, root, { 'out/model.bin': 'x' }, () => h));
  time(`restore ${MIB} MiB file (copy + verify + rename)`, () => materialize(store, root, bundle));
  const many = time(`put ${FILES} small files`, () => snapshot(store, root, { 'out/many/': 'x' }));
  time(`restore ${FILES} small files (tree swapped in whole)`, () => materialize(store, root, many.outputSet));
  const cache = new ArtifactCache(path.join(root, '.hubmake/cache'), store);
  const key = cacheKey('f'.repeat(64), ['out/many/']);
  const hashes = new Map(Object.entries(many.outputSet.files).map(([f, r]) => [f, r.h]));
  time(`cache store entry of ${FILES} files (blobs there, hashes known)`, () => cache.store(key, 't', 'b', 1, root, { 'out/many/': 'x' }, (f) => hashes.get(f)));
  time(`cache lookup of that entry (parse + stat every blob)`, () => cache.lookup(key, true));

  // Through the CLI.
  fs.rmSync(path.join(root, 'out'), { recursive: true });
  fs.rmSync(path.join(root, '.hubmake'), { recursive: true });
  fs.mkdirSync(path.join(root, 'targets'));
  fs.writeFileSync(path.join(root, 'targets/index.ts'), `
const lr = process.env.LR ?? 'a';
export default [{ name: 'train', outputs: ['out/model.bin'], params: { lr }, log: 'train.log',
  run: 'sleep ${TRAIN_S}; mkdir -p out; head -c ${MIB}M /dev/urandom > out/model.bin' }];
`);
  const build = (label: string, lr: string, extra: string[] = []) => {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(REPO, 'build.ts'), '-C', root, ...extra], { cwd: REPO, env: { ...process.env, LR: lr }, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`${label}: exit ${r.status}\n${r.stderr}`);
    const restored = /restored train/.test(r.stdout);
    console.log(`${label.padEnd(58)} ${ms(t0).toFixed(1).padStart(9)} ms  ${restored ? '(restored from cache)' : '(ran the command)'}`);
  };
  build(`CLI: build A (train ${TRAIN_S}s, ${MIB} MiB; stored in cache)`, 'a');
  build('CLI: build B (preserve A + run + store B)', 'b');
  build('CLI: build A again (restore from cache)', 'a');
  build('CLI: build B again, --no-cache (preserve A + run)', 'b', ['--no-cache']);
  build('CLI: build C, --no-cache (preserve B + run)', 'c', ['--no-cache']);
  build('CLI: build D, cache on (preserve C + run + store D)', 'd');
} finally {
  fs.rmSync(root, { recursive: true, force: true });
}
