// The hub's graph as a Mermaid flowchart, computed from the specs (pure). Edges are the
// engine's two kinds: `deps`, and an input that is another target's output.
import type { HubSpec } from './spec.ts';

export interface GraphNode {
  name: string;
  label: string;
}

export function specName(s: HubSpec): string {
  return s.name ?? s.outputs?.[0] ?? '(unnamed)';
}

/** Edges [from, to] meaning `to` needs `from`. */
export function edges(specs: HubSpec[]): Array<[string, string]> {
  const producer = new Map<string, string>();
  for (const s of specs) for (const o of s.outputs ?? []) producer.set(o, specName(s));
  const out = new Set<string>();
  for (const s of specs) {
    const to = specName(s);
    for (const d of s.deps ?? []) out.add(JSON.stringify([d, to]));
    for (const i of s.inputs ?? []) {
      const from = producer.get(i);
      if (from && from !== to) out.add(JSON.stringify([from, to]));
    }
  }
  return [...out].map((e) => JSON.parse(e) as [string, string]);
}

/** A label a person can read: hub paths shown relative to the hub. */
export function label(name: string, hub: string): string {
  return name.startsWith(`${hub}/`) ? name.slice(hub.length + 1) : name;
}

/** `flowchart LR` text; node ids are n0, n1... in spec order, so the text is stable. */
export function mermaid(specs: HubSpec[], hub: string): string {
  const ids = new Map(specs.map((s, i) => [specName(s), `n${i}`]));
  const lines = ['flowchart LR'];
  for (const s of specs) {
    const name = specName(s);
    const text = label(name, hub).replace(/"/g, "'");
    const isAlias = !s.run && !s.outputs?.length;
    lines.push(`  ${ids.get(name)}${isAlias ? `(["${text}"])` : `["${text}"]`}`);
  }
  for (const [from, to] of edges(specs)) {
    if (ids.has(from) && ids.has(to)) lines.push(`  ${ids.get(from)} --> ${ids.get(to)}`);
  }
  return lines.join('\n');
}
