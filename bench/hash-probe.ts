// Child process of bench/hashing.ts: hashes with the engine's own code and prints one JSON line.
//   big <file>                          hashFileBytes of one file
//   small <dir> <stat-cache.json> empty|warm   every file under dir through a Hasher
import fs from 'node:fs';
import path from 'node:path';
import { Disk } from '../engine/disk.ts';
import { Hasher, hashFileBytes, type StatEntry } from '../engine/hash.ts';

const [mode, target, cacheFile, state] = process.argv.slice(2);
if (mode === 'big') {
  const size = fs.statSync(target!).size;
  const h0 = performance.now();
  const digest = hashFileBytes(target!, size);
  const msHash = performance.now() - h0;
  console.log(JSON.stringify({ digest, ms: msHash }));
} else {
  const root = target!;
  const names: string[] = [];
  for (const d of fs.readdirSync(root)) {
    if (d.startsWith('.')) continue;
    for (const f of fs.readdirSync(path.join(root, d))) names.push(`${d}/${f}`);
  }
  const h0 = performance.now();
  const c0 = process.cpuUsage();
  let cache = new Map<string, StatEntry>();
  if (state === 'warm') cache = new Map(Object.entries(JSON.parse(fs.readFileSync(cacheFile!, 'utf8')) as Record<string, StatEntry>));
  const hasher = new Hasher(new Disk(root), cache);
  for (const n of names) hasher.hashPath(n);
  const msHash = performance.now() - h0;
  const cpu = process.cpuUsage(c0);
  if (state === 'empty') fs.writeFileSync(cacheFile!, JSON.stringify(Object.fromEntries(hasher.entries())));
  console.log(JSON.stringify({ ms: msHash, cpuMs: (cpu.user + cpu.system) / 1000, hashedFiles: hasher.hashedFiles, files: names.length }));
}
