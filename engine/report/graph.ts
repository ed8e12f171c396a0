// --graph: the goals' graph as Mermaid or Graphviz dot.
import type { Graph } from '../graph.ts';

export function renderGraph(g: Graph, closure: Set<string>, format: 'mermaid' | 'dot'): string {
  const names = g.order.filter((n) => closure.has(n));
  const id = new Map(names.map((n, i) => [n, `t${i}`]));
  const lines: string[] = [];
  if (format === 'mermaid') {
    lines.push('graph LR');
    for (const n of names) lines.push(`  ${id.get(n)}["${n.replace(/"/g, '#quot;')}"]`);
    for (const n of names) for (const d of g.depsOf.get(n)!) if (closure.has(d)) lines.push(`  ${id.get(d)} --> ${id.get(n)}`);
  } else {
    lines.push('digraph hubmake {', '  rankdir=LR;');
    for (const n of names) lines.push(`  ${id.get(n)} [label=${JSON.stringify(n)}];`);
    for (const n of names) for (const d of g.depsOf.get(n)!) if (closure.has(d)) lines.push(`  ${id.get(d)} -> ${id.get(n)};`);
    lines.push('}');
  }
  return lines.join('\n');
}
