// The "training" of the reference toolchain: ePIE (Maiden & Rodenburg 2009) reconstruction
// of object and probe from the diffraction amplitudes. It stands in for PtychoPINN's network
// training: same inputs (DATA-001 NPZ), a loss that falls over epochs, and trained
// "weights" (object + probe) to persist. gridsize 1 updates one position at a time;
// gridsize 2 updates groups of C = 4 positions drawn from each seed's K nearest neighbours
// (K = neighbor_count, default 7), all four exit waves computed from the same state, like
// a mini-batch, which is what gridsize 2 means for PtychoPINN's grouped inputs.
import { ValueError, RuntimeError } from './cli.ts';
import { fft2, fftshift2 } from './fft.ts';
import { patchCorner } from './physics.ts';
import { Rng } from './rng.ts';

export interface TrainSettings {
  epochs: number;
  /** ePIE object step (alpha) */
  step_size: number;
  /** ePIE probe step (beta); 0 keeps the probe fixed */
  probe_step_size: number;
  seed: number;
  /** K for gridsize 2 grouping (>= C = 4, OVERSAMPLING-001) */
  neighbor_count: number;
  /** groups (gs2) or positions (gs1) visited per epoch; null = one per position */
  n_groups: number | null;
}

export const DEFAULT_SETTINGS: TrainSettings = {
  epochs: 20,
  step_size: 0.9,
  probe_step_size: 0.5,
  seed: 42,
  neighbor_count: 7,
  n_groups: null,
};

const KEYS = Object.keys(DEFAULT_SETTINGS);

/** Validate a parsed config object. Raises ValueError, which the training stage reports as
 *  "training failed: ValueError: ..." (an invalid setting fails the job, not the CLI).
 *  Keys starting with "_" are comments and ignored; other unknown keys are errors so a
 *  typo cannot silently fall back to a default. */
export function validateSettings(raw: unknown): TrainSettings {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new ValueError('config must be a JSON object');
  const cfg = raw as Record<string, unknown>;
  for (const k of Object.keys(cfg)) {
    if (!k.startsWith('_') && !KEYS.includes(k)) throw new ValueError(`unknown config key '${k}' (known: ${KEYS.join(', ')})`);
  }
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (!('epochs' in cfg)) throw new ValueError("config key 'epochs' is required");
  const s: TrainSettings = { ...DEFAULT_SETTINGS };
  if (!isInt(cfg['epochs']) || cfg['epochs'] < 1) throw new ValueError(`epochs must be an integer >= 1, got ${JSON.stringify(cfg['epochs'])}`);
  s.epochs = cfg['epochs'];
  if ('step_size' in cfg) {
    const v = cfg['step_size'];
    if (typeof v !== 'number' || !(v > 0) || v > 2) throw new ValueError(`step_size must be a number in (0, 2], got ${JSON.stringify(v)}`);
    s.step_size = v;
  }
  if ('probe_step_size' in cfg) {
    const v = cfg['probe_step_size'];
    if (typeof v !== 'number' || !(v >= 0) || v > 2) throw new ValueError(`probe_step_size must be a number in [0, 2], got ${JSON.stringify(v)}`);
    s.probe_step_size = v;
  }
  if ('seed' in cfg) {
    if (!isInt(cfg['seed'])) throw new ValueError(`seed must be an integer, got ${JSON.stringify(cfg['seed'])}`);
    s.seed = cfg['seed'];
  }
  if ('neighbor_count' in cfg) {
    const v = cfg['neighbor_count'];
    if (!isInt(v) || v < 4) throw new ValueError(`neighbor_count must be an integer >= 4 (K >= C = gridsize^2), got ${JSON.stringify(v)}`);
    s.neighbor_count = v;
  }
  if ('n_groups' in cfg && cfg['n_groups'] !== null) {
    const v = cfg['n_groups'];
    if (!isInt(v) || v < 1) throw new ValueError(`n_groups must be an integer >= 1 or null, got ${JSON.stringify(v)}`);
    s.n_groups = v;
  }
  return s;
}

export interface TrainInput {
  n: number;
  N: number;
  /** measured amplitudes, n x N x N, fftshifted as stored in the NPZ */
  diffraction: Float32Array;
  xcoords: Float64Array;
  ycoords: Float64Array;
  /** initial probe, complex interleaved N x N */
  probe: Float32Array;
  objectRows: number;
  objectCols: number;
}

export interface TrainOutput {
  object: Float64Array;
  probe: Float64Array;
  history: number[];
  nGroups: number;
  intensityScale: number;
}

/** Gridsize-2 groups: for each seed, itself plus C-1 positions drawn from its K-1 nearest. */
export function buildGroups(xs: Float64Array, ys: Float64Array, seeds: number[], kWanted: number, c: number, rng: Rng): number[][] {
  const n = xs.length;
  if (n < c) throw new ValueError(`gridsize 2 needs at least C=${c} positions, dataset has ${n}`);
  // Small datasets (a sparse-ish view of a tiny scan) have fewer than K positions: use them all.
  const k = Math.min(kWanted, n);
  return seeds.map((i) => {
    // K-1 nearest other positions (ties by index), kept in a small sorted list: O(n K).
    const near: number[] = [];
    const dist: number[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const d = (xs[j]! - xs[i]!) ** 2 + (ys[j]! - ys[i]!) ** 2;
      if (near.length === k - 1 && d >= dist[k - 2]!) continue;
      let at = near.length;
      while (at > 0 && dist[at - 1]! > d) at--;
      near.splice(at, 0, j);
      dist.splice(at, 0, d);
      if (near.length > k - 1) {
        near.pop();
        dist.pop();
      }
    }
    const pick = rng.permutation(near.length).slice(0, c - 1).map((p) => near[p]!);
    return [i, ...pick];
  });
}

export function reconstruct(
  data: TrainInput,
  gridsize: 1 | 2,
  s: TrainSettings,
  onEpoch: (epoch: number, loss: number) => void,
  fault?: 'train-error',
): TrainOutput {
  const { n, N } = data;
  const npix = N * N;
  const rng = new Rng(s.seed);
  // Undo the fftshift once so the modulus constraint works on raw FFT order.
  const amp = new Float64Array(n * npix);
  const tmp = new Float64Array(npix);
  let energy = 0;
  for (let j = 0; j < n; j++) {
    const src = Float64Array.from(data.diffraction.subarray(j * npix, (j + 1) * npix));
    fftshift2(src, N, tmp);
    amp.set(tmp, j * npix);
    for (let k = 0; k < npix; k++) energy += tmp[k]! * tmp[k]!;
  }
  // Scale the initial probe so |FFT(P * 1)|^2 carries the mean measured counts (Parseval:
  // sum|FFT(p)|^2 = N^2 sum|p|^2); the object then starts at 1 + 0i.
  const probe = Float64Array.from(data.probe);
  let pEnergy = 0;
  for (let k = 0; k < 2 * npix; k++) pEnergy += probe[k]! * probe[k]!;
  const intensityScale = energy / n / (npix * pEnergy || 1);
  const ps = Math.sqrt(intensityScale);
  for (let k = 0; k < 2 * npix; k++) probe[k] = probe[k]! * ps;
  const M = data.objectCols;
  const object = new Float64Array(2 * data.objectRows * M);
  for (let k = 0; k < object.length; k += 2) object[k] = 1;
  const corners = Array.from({ length: n }, (_, j) => patchCorner(data.xcoords[j]!, data.ycoords[j]!, N));
  for (const [j, [r0, c0]] of corners.entries()) {
    if (r0 < 0 || c0 < 0 || r0 + N > data.objectRows || c0 + N > M) {
      throw new ValueError(`position ${j} puts its patch outside the ${data.objectRows}x${M} object canvas`);
    }
  }
  const C = gridsize * gridsize;
  const count = s.n_groups ?? n;
  const seeds = Array.from({ length: count }, (_, g) => (s.n_groups === null ? g : rng.int(n)));
  const groups = gridsize === 1 ? seeds.map((i) => [i]) : buildGroups(data.xcoords, data.ycoords, seeds, s.neighbor_count, C, rng);

  const re = new Float64Array(npix);
  const im = new Float64Array(npix);
  const deltas = groups[0]!.map(() => new Float64Array(2 * npix));
  const history: number[] = [];
  for (let epoch = 1; epoch <= s.epochs; epoch++) {
    let err = 0;
    let norm = 0;
    for (const g of rng.permutation(groups.length)) {
      const group = groups[g]!;
      // 1. exit-wave corrections for every member, all from the same object/probe state
      group.forEach((j, m) => {
        const [r0, c0] = corners[j]!;
        for (let y = 0; y < N; y++) {
          for (let x = 0; x < N; x++) {
            const o = 2 * ((r0 + y) * M + c0 + x);
            const p = 2 * (y * N + x);
            const or = object[o]!;
            const oi = object[o + 1]!;
            const pr = probe[p]!;
            const pi = probe[p + 1]!;
            re[y * N + x] = pr * or - pi * oi;
            im[y * N + x] = pr * oi + pi * or;
          }
        }
        const d = deltas[m]!;
        for (let k = 0; k < npix; k++) {
          d[2 * k] = re[k]!;
          d[2 * k + 1] = im[k]!;
        }
        fft2(re, im, N);
        const base = j * npix;
        for (let k = 0; k < npix; k++) {
          const mod = Math.sqrt(re[k]! * re[k]! + im[k]! * im[k]!);
          const a = amp[base + k]!;
          err += (mod - a) * (mod - a);
          norm += a * a;
          // modulus projection: keep the phase, impose the measured amplitude
          const f = mod > 1e-12 ? a / mod : 0;
          re[k] = re[k]! * f;
          im[k] = im[k]! * f;
        }
        fft2(re, im, N, true);
        for (let k = 0; k < npix; k++) {
          d[2 * k] = re[k]! - d[2 * k]!;
          d[2 * k + 1] = im[k]! - d[2 * k + 1]!;
        }
      });
      // 2. apply the updates (object per member; probe averaged over the group). Members of
      // a group overlap, so their object updates add up: normalise by the peak of the summed
      // probe intensity sum_k |P(r - r_k)|^2 (for one position this is ePIE's max |P|^2).
      let pmax = 0;
      if (group.length === 1) {
        for (let k = 0; k < npix; k++) pmax = Math.max(pmax, probe[2 * k]! ** 2 + probe[2 * k + 1]! ** 2);
      } else {
        let rMin = Infinity;
        let cMin = Infinity;
        let rMax = -Infinity;
        let cMax = -Infinity;
        for (const j of group) {
          const [r0, c0] = corners[j]!;
          rMin = Math.min(rMin, r0);
          cMin = Math.min(cMin, c0);
          rMax = Math.max(rMax, r0);
          cMax = Math.max(cMax, c0);
        }
        const bw = cMax - cMin + N;
        const acc = new Float64Array((rMax - rMin + N) * bw);
        for (const j of group) {
          const [r0, c0] = corners[j]!;
          for (let y = 0; y < N; y++) {
            const row = (r0 - rMin + y) * bw + (c0 - cMin);
            for (let x = 0; x < N; x++) {
              const p = 2 * (y * N + x);
              acc[row + x] = acc[row + x]! + probe[p]! ** 2 + probe[p + 1]! ** 2;
            }
          }
        }
        for (const v of acc) pmax = Math.max(pmax, v);
      }
      const probeStep = new Float64Array(2 * npix);
      group.forEach((j, m) => {
        const [r0, c0] = corners[j]!;
        const d = deltas[m]!;
        let omax = 0;
        for (let y = 0; y < N; y++) {
          for (let x = 0; x < N; x++) {
            const o = 2 * ((r0 + y) * M + c0 + x);
            omax = Math.max(omax, object[o]! ** 2 + object[o + 1]! ** 2);
          }
        }
        const a = s.step_size / (pmax || 1);
        const b = s.probe_step_size / ((omax || 1) * group.length);
        for (let y = 0; y < N; y++) {
          for (let x = 0; x < N; x++) {
            const o = 2 * ((r0 + y) * M + c0 + x);
            const p = 2 * (y * N + x);
            const dr = d[p]!;
            const di = d[p + 1]!;
            const or = object[o]!;
            const oi = object[o + 1]!;
            const pr = probe[p]!;
            const pi = probe[p + 1]!;
            // O += a conj(P) d ; P += b conj(O) d
            object[o] = or + a * (pr * dr + pi * di);
            object[o + 1] = oi + a * (pr * di - pi * dr);
            probeStep[p] = probeStep[p]! + b * (or * dr + oi * di);
            probeStep[p + 1] = probeStep[p + 1]! + b * (or * di - oi * dr);
          }
        }
      });
      for (let k = 0; k < 2 * npix; k++) probe[k] = probe[k]! + probeStep[k]!;
    }
    const loss = norm > 0 ? err / norm : 0;
    if (!Number.isFinite(loss)) throw new RuntimeError(`loss became non-finite at epoch ${epoch}`);
    history.push(loss);
    onEpoch(epoch, loss);
    if (fault === 'train-error') throw new RuntimeError(`simulated training fault (--sim-fault train-error) after epoch ${epoch}`);
  }
  return { object, probe, history, nGroups: groups.length, intensityScale };
}
