// Benchmark 2: hashing. A 1 GiB file through the engine's hashFileBytes against
// `openssl dgst -sha256` (page cache cold and warm), then 100,000 small files with an empty
// state, then again from a fresh process with the stat cache the first pass saved (nothing may be
// re-hashed). The engine side runs in a child process (bench/hash-probe.ts) so that every
// figure is a separate process, as openssl's is.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { INSTALL, REPO, benchDir, dropCaches, has, ms, mustSucceed, run, sleep, table } from './lib/measure.ts';

interface SmallPass { ms: number; cpuMs: number; filesPerSec: number; hashedFiles: number }

export interface HashingResult {
  bigFileBytes: number;
  coldCache: boolean | string;
  big: Array<{ who: string; cache: 'cold' | 'warm'; ms: number; mbps: number; digest: string }>;
  digestsAgree: boolean;
  small: { files: number; bytes: number; emptyState: SmallPass; emptyStateColdCache?: SmallPass; warmStat: SmallPass };
  skipped: Record<string, string>;
}

function makeBigFile(file: string, bytes: number): void {
  if (fs.existsSync(file) && fs.statSync(file).size === bytes) return;
  const fd = fs.openSync(file, 'w');
  const buf = Buffer.allocUnsafe(1 << 24);
  for (let done = 0; done < bytes; done += buf.length) {
    crypto.randomFillSync(buf);
    fs.writeSync(fd, buf, 0, Math.min(buf.length, bytes - done));
  }
  fs.closeSync(fd);
}

function makeSmallFiles(dir: string, count: number): number {
  const marker = path.join(dir, `.made-${count}`);
  let bytes = 0;
  if (fs.existsSync(marker)) return Number(fs.readFileSync(marker, 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
  let seed = 12345;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0), seed);
  for (let d = 0; d < 100; d++) fs.mkdirSync(path.join(dir, `d${d}`), { recursive: true });
  for (let i = 0; i < count; i++) {
    const size = 256 + (rnd() % 3840);
    const b = Buffer.allocUnsafe(size);
    crypto.randomFillSync(b);
    fs.writeFileSync(path.join(dir, `d${i % 100}`, `f${i}.bin`), b);
    bytes += size;
  }
  fs.writeFileSync(marker, String(bytes));
  return bytes;
}

function probe(args: string[]): Record<string, number | string> {
  const r = mustSucceed(run('node', ['--import', 'tsx', 'bench/hash-probe.ts', ...args], { cwd: REPO }), `hash-probe ${args[0]}`);
  const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, number | string>;
  // The whole process as the parent saw it (node and tsx start-up included), like openssl's figure.
  out.processMs = r.ms;
  return out;
}

export async function runHashing(opts: { bigBytes: number; smallFiles: number; runs: number }, log: (s: string) => void): Promise<HashingResult> {
  const dir = benchDir('hashing');
  const skipped: Record<string, string> = {};
  const big = path.join(dir, 'big.bin');
  log(`\n== hashing: ${(opts.bigBytes / 2 ** 30).toFixed(2)} GiB file; ${opts.smallFiles} small files ==`);
  makeBigFile(big, opts.bigBytes);
  const res: HashingResult = { bigFileBytes: opts.bigBytes, coldCache: false, big: [], digestsAgree: true, small: undefined as never, skipped };
  const hasOpenssl = has('openssl');
  if (!hasOpenssl) skipped.openssl = `not installed: ${INSTALL.openssl}`;
  const mbps = (t: number) => opts.bigBytes / 1e6 / (t / 1000);
  const one = (who: 'hubmake' | 'openssl', cache: 'cold' | 'warm') => {
    if (who === 'openssl') {
      const r = mustSucceed(run('openssl', ['dgst', '-sha256', '-r', big]), 'openssl');
      res.big.push({ who, cache, ms: r.ms, mbps: mbps(r.ms), digest: r.stdout.split(' ')[0]!.trim() });
    } else {
      const p = probe(['big', big]);
      // Whole process, like openssl's figure (node + tsx start-up included); the hash loop alone is in p.ms.
      res.big.push({ who: 'hubmake (hashFileBytes, whole process)', cache, ms: Number(p.processMs), mbps: mbps(Number(p.processMs)), digest: String(p.digest) });
      res.big.push({ who: 'hubmake (hashFileBytes, hash loop only)', cache, ms: Number(p.ms), mbps: mbps(Number(p.ms)), digest: String(p.digest) });
    }
  };
  const canDrop = dropCaches();
  res.coldCache = canDrop ? true : 'not permitted (echo 3 > /proc/sys/vm/drop_caches failed): cold figures omitted';
  const who: Array<'hubmake' | 'openssl'> = hasOpenssl ? ['hubmake', 'openssl'] : ['hubmake'];
  // Cold runs alternate which tool reads first, after one untimed cold read of the file: the
  // benchmarks before this one leave the VM's disk busy writing back, and the first cold reads
  // after them measured 2-3x slower (450 then 880 then 1,500 MB/s, whichever tool read).
  if (canDrop) {
    dropCaches();
    mustSucceed(run('cat', [big], { stdio: ['ignore', 'ignore', 'pipe'] }), 'cat big.bin');
  }
  if (canDrop) for (let i = 0; i < opts.runs; i++) for (const w of i % 2 ? [...who].reverse() : who) { dropCaches(); one(w, 'cold'); }
  for (let i = 0; i < opts.runs; i++) for (const w of who) one(w, 'warm');
  res.digestsAgree = new Set(res.big.map((b) => b.digest)).size === 1;

  const small = path.join(dir, `small-${opts.smallFiles}`);
  const bytes = makeSmallFiles(small, opts.smallFiles);
  await sleep(300); // past the racy-mtime window, so the first pass may trust what it hashed
  const cacheFile = path.join(dir, 'stat-cache.json');
  const pass = (mode: 'empty' | 'warm') => {
    const p = probe(['small', small, cacheFile, mode]);
    return { ms: Number(p.ms), cpuMs: Number(p.cpuMs), filesPerSec: opts.smallFiles / (Number(p.ms) / 1000), hashedFiles: Number(p.hashedFiles) };
  };
  pass('empty'); // warms the page cache
  const emptyState = pass('empty');
  let emptyStateColdCache;
  if (canDrop) { dropCaches(); emptyStateColdCache = pass('empty'); }
  const warmStat = pass('warm');
  res.small = { files: opts.smallFiles, bytes, emptyState, warmStat, ...(emptyStateColdCache ? { emptyStateColdCache } : {}) };
  log(renderHashing(res));
  return res;
}

export function renderHashing(r: HashingResult): string {
  const lines: string[] = [];
  const ossl = (cache: string) => Math.max(...r.big.filter((b) => b.who === 'openssl' && b.cache === cache).map((b) => b.mbps));
  const best = new Map<string, (typeof r.big)[number]>();
  for (const b of r.big) {
    const k = `${b.who}|${b.cache}`;
    if (!best.has(k) || best.get(k)!.ms > b.ms) best.set(k, b);
  }
  lines.push(`${(r.bigFileBytes / 2 ** 30).toFixed(2)} GiB file (best of the runs), digests agree: ${r.digestsAgree}; cold cache: ${r.coldCache}`);
  lines.push(table(['who', 'cache', 'time', 'MB/s', 'vs openssl'], [...best.values()].map((b) => [b.who, b.cache, ms(b.ms), b.mbps.toFixed(0), `${(b.mbps / ossl(b.cache)).toFixed(2)}x`])));
  const s = r.small;
  const rows = [['empty state (page cache warm)', s.emptyState] as const, ...(s.emptyStateColdCache ? [['empty state (page cache dropped)', s.emptyStateColdCache] as const] : []), ['warm stat cache (new process)', s.warmStat] as const];
  lines.push(`${s.files} small files, ${(s.bytes / 1e6).toFixed(1)} MB`);
  lines.push(table(['pass', 'time', 'cpu', 'files/s', 'files per cpu-s', 'hashedFiles'], rows.map(([k, v]) => [k, ms(v.ms), ms(v.cpuMs), v.filesPerSec.toFixed(0), (s.files / (v.cpuMs / 1000)).toFixed(0), String(v.hashedFiles)])));
  for (const [t, why] of Object.entries(r.skipped)) lines.push(`skipped ${t}: ${why}`);
  return lines.join('\n');
}
