// Random build graphs for property tests, with a pure oracle: what every output must contain and
// which targets must run after an edit, given early cutoff. Shared by the property and crash tests.
import fs from 'node:fs';
import path from 'node:path';
import { prng } from './prng.ts';

export interface GNode {
  name: string;
  kind: 'cat' | 'count' | 'glob';
  inputs: string[];
  p: number;
}

export interface GraphSpec {
  sources: string[];
  nodes: GNode[];
}

export const GLOB = 'src/extra*.txt';

/** `glob: false`: no node reads the glob, so a whole-graph build can be answered by the settled stamp. */
export function randomGraph(seed: number, n: number, nSources = 8, opts: { glob?: boolean } = {}): GraphSpec {
  const r = prng(seed);
  const sources = Array.from({ length: nSources }, (_, i) => `src/s${i}.txt`);
  const nodes: GNode[] = [];
  for (let i = 0; i < n; i++) {
    const pool = [...sources, ...nodes.map((x) => x.name)];
    const k = 1 + r.int(3);
    const inputs = [...new Set(Array.from({ length: k }, () => (r.chance(0.6) && nodes.length ? r.pick(nodes).name : r.pick(pool))))].sort();
    const kind = i === 0 && opts.glob !== false ? 'glob' : r.chance(0.25) ? 'count' : 'cat';
    nodes.push({ name: `out/t${i}.txt`, kind, inputs: kind === 'glob' ? [] : inputs, p: r.int(5) });
  }
  return { sources, nodes };
}

/** The command a node runs; `.ran` collects what ran (appends are atomic for short lines). */
export function commandOf(n: GNode, delay = ''): string {
  const tag = `echo "#${n.name} p=${n.p}"`;
  const ran = `echo ${n.name} >> .ran`;
  const pre = `mkdir -p out${delay ? `; ${delay}` : ''}`;
  if (n.kind === 'glob') return `${pre}; shopt -s nullglob; export LC_ALL=C; { cat /dev/null ${GLOB}; ${tag}; } > ${n.name}; ${ran}`;
  if (n.kind === 'count') return `${pre}; { cat ${n.inputs.join(' ')} | wc -c | tr -d ' '; ${tag}; } > ${n.name}; ${ran}`;
  return `${pre}; { cat ${n.inputs.join(' ')}; ${tag}; } > ${n.name}; ${ran}`;
}

/** The bytes a node's output must hold, given the contents of its inputs. */
export function expectedOutput(n: GNode, files: Map<string, string>): string {
  const tag = `#${n.name} p=${n.p}\n`;
  if (n.kind === 'glob') {
    const ms = [...files.keys()].filter((f) => /^src\/extra[^/]*\.txt$/.test(f)).sort();
    return ms.map((m) => files.get(m)!).join('') + tag;
  }
  const cat = n.inputs.map((i) => files.get(i) ?? '').join('');
  if (n.kind === 'count') return `${Buffer.byteLength(cat)}\n${tag}`;
  return cat + tag;
}

/** Writes a targets module that reads graph.json at load time (so edits to params need no re-import). */
export function writeTargetsModule(root: string, delay = ''): void {
  fs.mkdirSync(path.join(root, 'targets'), { recursive: true });
  fs.writeFileSync(path.join(root, 'targets/index.ts'), `import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// Self-contained: a module the test process has loaded already would leave no module record.
const GLOB = ${JSON.stringify(GLOB)};
const commandOf = ${commandOf.toString()};
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
export default () => {
  const g = JSON.parse(fs.readFileSync(path.join(root, 'graph.json'), 'utf8'));
  return g.nodes.map((n) => ({ outputs: [n.name], inputs: n.kind === 'glob' ? [${JSON.stringify(GLOB)}] : n.inputs, params: { p: n.p }, run: commandOf(n, ${JSON.stringify(delay)}) }));
};
`);
}

/**
 * The oracle with early cutoff: a target runs iff it never ran, its params changed, the content of
 * one of its inputs differs from what it last ran with, or its output is missing or was edited.
 */
export class Oracle {
  /** Per target: the input contents and p it last ran with, and what it wrote. */
  private readonly last = new Map<string, { inputs: string; p: number; out: string }>();
  constructor(private readonly g: GraphSpec) {}

  step(files: Map<string, string>): string[] {
    const ran: string[] = [];
    for (const n of this.g.nodes) {
      const inputs = n.kind === 'glob'
        ? [...files.keys()].filter((f) => /^src\/extra[^/]*\.txt$/.test(f)).sort().map((f) => `${f}\0${files.get(f)}`).join('\n')
        : n.inputs.map((i) => `${i}\0${files.get(i)}`).join('\n');
      const prev = this.last.get(n.name);
      const out = files.get(n.name);
      if (!prev || prev.p !== n.p || prev.inputs !== inputs || out !== prev.out) {
        const now = expectedOutput(n, files);
        files.set(n.name, now);
        this.last.set(n.name, { inputs, p: n.p, out: now });
        ran.push(n.name);
      }
    }
    return ran.sort();
  }

  /** After an interrupted build: targets that completed are as if run; the rest stay unknown. */
  forget(name: string): void {
    this.last.delete(name);
  }
}
