// `npm test`: every tests/*.test.ts under uvu, split into shards that run side by side (the CI
// machine has two cores and most tests wait on subprocesses), then one plain closing line
// `N passed, N failed` that CI reads (uvu's own summary is spread over several lines).
// TEST_SHARDS=1 runs everything in one process; `npm test -- <regex>` picks files.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';

const filter = new RegExp(process.argv[2] ?? '.', 'i');
const shards = Math.max(1, Number(process.env.TEST_SHARDS ?? Math.min(2, os.availableParallelism?.() ?? 2)));

// Rough cost of the slow files (seconds on 2 cores), to balance the shards; others count by size.
const KNOWN: Record<string, number> = {};
const files = fs.readdirSync('tests').filter((f) => f.endsWith('.test.ts') && filter.test(f));
const weight = (f: string) => KNOWN[f] ?? fs.statSync(`tests/${f}`).size / 1000;
const buckets: Array<{ files: string[]; w: number }> = Array.from({ length: shards }, () => ({ files: [], w: 0 }));
for (const f of [...files].sort((a, b) => weight(b) - weight(a))) {
  const b = buckets.reduce((m, x) => (x.w < m.w ? x : m));
  b.files.push(f);
  b.w += weight(f);
}

interface ShardResult { code: number | null; out: string }

function runShard(list: string[]): Promise<ShardResult> {
  const esc = list.map((f) => f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'node_modules/uvu/bin.js', 'tests', `^(${esc})$`], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.on('close', (code) => resolve({ code, out }));
  });
}

const started = Date.now();
const results = await Promise.all(buckets.filter((b) => b.files.length).map(async (b) => {
  const r = await runShard(b.files);
  process.stdout.write(`\n=== shard: ${b.files.join(', ')}\n${r.out}`);
  return r;
}));

let passed = 0;
let failed = 0;
let skipped = 0;
for (const r of results) {
  const plain = r.out.replace(/\x1b\[[0-9;]*m/g, '');
  const total = Number(/Total:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const ok = Number(/Passed:\s+(\d+)/.exec(plain)?.[1] ?? NaN);
  const sk = Number(/Skipped:\s+(\d+)/.exec(plain)?.[1] ?? 0);
  if (Number.isNaN(total) || Number.isNaN(ok)) {
    failed += 1; // the shard crashed before uvu could summarise
    continue;
  }
  // uvu's Total counts the tests that ran; a test.skip is counted in Skipped only.
  passed += ok;
  skipped += sk;
  failed += total - ok;
  if (r.code !== 0 && total === ok) failed += 1;
}
console.log(`\n(${files.length} files in ${results.length} shards, ${((Date.now() - started) / 1000).toFixed(1)}s)`);
if (skipped) console.log(`(${skipped} skipped: their banner above says why)`);
// The last line, exactly `N passed, N failed`: CI and the README read it.
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 && results.every((r) => r.code === 0) ? 0 : 1);
