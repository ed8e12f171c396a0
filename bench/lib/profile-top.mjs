// Summarises a .cpuprofile (from `node --cpu-prof`): the functions with the most self time and
// the most inclusive time.  node bench/lib/profile-top.mjs <file.cpuprofile> [count]
import fs from 'node:fs';

const p = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const count = Number(process.argv[3] ?? 25);
const byId = new Map(p.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const sampled = new Map();
for (let i = 0; i < p.samples.length; i++) sampled.set(p.samples[i], (sampled.get(p.samples[i]) ?? 0) + (p.timeDeltas[i] ?? 0));
const label = (n) => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.split('/').slice(-2).join('/')}:${n.callFrame.lineNumber + 1}`;
const self = new Map();
const incl = new Map();
for (const n of p.nodes) {
  const t = sampled.get(n.id) ?? 0;
  if (!t) continue;
  self.set(label(n), (self.get(label(n)) ?? 0) + t);
  const seen = new Set();
  for (let id = n.id; id !== undefined; id = parent.get(id)) {
    const k = label(byId.get(id));
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}
const top = (m) => [...m].sort((a, b) => b[1] - a[1]).slice(0, count).map(([k, v]) => `${(v / 1000).toFixed(0).padStart(7)} ms  ${k}`).join('\n');
console.log(`self time\n${top(self)}\n\ninclusive time\n${top(incl)}`);
