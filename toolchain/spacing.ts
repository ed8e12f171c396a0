// Era-1 Phase D selection: keep scan positions at least S = (1 - f) * N apart.
// (1) direct: keep points whose nearest-neighbour spacing is already >= S;
// (2) geometry-aware floor (ACCEPTANCE-001): a bounding box of area A can hold at most
//     about A / (pi (S/2)^2) such points, so the bound is min(0.10, that / n) and the
//     minimum acceptance is max(0.0005, 0.8 * bound);
// (3) if the direct rate is below it, greedy downsampling in (y, x) order;
// (4) if still below, the view is rejected with the study's ValueError.
import { ValueError } from './cli.ts';

export const OVERLAP_FRACTIONS = { dense: 0.7, sparse: 0.2 } as const;
export type View = keyof typeof OVERLAP_FRACTIONS;

export function spacingThreshold(view: View, patchSize: number): number {
  return (1 - OVERLAP_FRACTIONS[view]) * patchSize;
}

/** Nearest-neighbour distance of every point (O(n^2); n is hundreds to a few thousand). */
export function nearestNeighbourSpacing(xs: Float64Array, ys: Float64Array): Float64Array {
  const n = xs.length;
  const out = new Float64Array(n).fill(Infinity);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const dx = xs[i]! - xs[j]!;
      const dy = ys[i]! - ys[j]!;
      const d = Math.sqrt(dx * dx + dy * dy);
      if (d < out[i]!) out[i] = d;
      if (d < out[j]!) out[j] = d;
    }
  }
  return out;
}

export function geometryBound(xs: Float64Array, ys: Float64Array, threshold: number): { bound: number; minAcceptance: number } {
  const n = xs.length;
  let x0 = Infinity;
  let x1 = -Infinity;
  let y0 = Infinity;
  let y1 = -Infinity;
  for (let i = 0; i < n; i++) {
    x0 = Math.min(x0, xs[i]!);
    x1 = Math.max(x1, xs[i]!);
    y0 = Math.min(y0, ys[i]!);
    y1 = Math.max(y1, ys[i]!);
  }
  const area = n > 0 ? (x1 - x0) * (y1 - y0) : 0;
  const capacity = area / (Math.PI * (threshold / 2) ** 2);
  const bound = n > 0 ? Math.min(0.1, capacity / n) : 0;
  return { bound, minAcceptance: Math.max(0.0005, 0.8 * bound) };
}

/** Deterministic greedy selection: visit points ordered by (y, x), keep a point if it is at
 *  least `threshold` from every point kept so far. */
export function greedyMinSpacingSelection(xs: Float64Array, ys: Float64Array, threshold: number): number[] {
  const order = Array.from(xs, (_, i) => i).sort((a, b) => ys[a]! - ys[b]! || xs[a]! - xs[b]! || a - b);
  const kept: number[] = [];
  for (const i of order) {
    let ok = true;
    for (const k of kept) {
      const dx = xs[i]! - xs[k]!;
      const dy = ys[i]! - ys[k]!;
      if (dx * dx + dy * dy < threshold * threshold) {
        ok = false;
        break;
      }
    }
    if (ok) kept.push(i);
  }
  return kept.sort((a, b) => a - b);
}

export interface SpacingMetrics {
  min_spacing: number;
  max_spacing: number;
  mean_spacing: number;
  median_spacing: number;
  threshold: number;
  n_positions: number;
  n_accepted: number;
  n_rejected: number;
  acceptance_rate: number;
  geometry_acceptance_bound: number;
  effective_min_acceptance: number;
}

export interface Selection {
  indices: number[];
  strategy: 'direct' | 'greedy';
  metrics: SpacingMetrics;
}

export function selectView(xs: Float64Array, ys: Float64Array, view: View, split: string, patchSize: number): Selection {
  const n = xs.length;
  const threshold = spacingThreshold(view, patchSize);
  const nn = nearestNeighbourSpacing(xs, ys);
  const finite = Array.from(nn).filter(Number.isFinite).sort((a, b) => a - b);
  const { bound, minAcceptance } = geometryBound(xs, ys, threshold);
  let indices = Array.from(nn, (d, i) => (d >= threshold ? i : -1)).filter((i) => i >= 0);
  let strategy: Selection['strategy'] = 'direct';
  const rate = (k: number): number => (n > 0 ? k / n : 0);
  if (rate(indices.length) < minAcceptance) {
    indices = greedyMinSpacingSelection(xs, ys, threshold);
    strategy = 'greedy';
  }
  if (rate(indices.length) < minAcceptance) {
    throw new ValueError(
      `Insufficient positions meet spacing threshold for ${view} view in ${split} split even after greedy downsampling ` +
        `(accepted ${indices.length}/${n} = ${(100 * rate(indices.length)).toFixed(2)}%, minimum ${(100 * minAcceptance).toFixed(2)}%; ` +
        `threshold ${threshold.toFixed(1)} px, geometry acceptance bound ${(100 * bound).toFixed(2)}%)`,
    );
  }
  const median = finite.length === 0 ? 0 : finite.length % 2 ? finite[(finite.length - 1) / 2]! : (finite[finite.length / 2 - 1]! + finite[finite.length / 2]!) / 2;
  return {
    indices,
    strategy,
    metrics: {
      min_spacing: finite[0] ?? 0,
      max_spacing: finite[finite.length - 1] ?? 0,
      mean_spacing: finite.length ? finite.reduce((s, v) => s + v, 0) / finite.length : 0,
      median_spacing: median,
      threshold,
      n_positions: n,
      n_accepted: indices.length,
      n_rejected: n - indices.length,
      acceptance_rate: rate(indices.length),
      geometry_acceptance_bound: bound,
      effective_min_acceptance: minAcceptance,
    },
  };
}
