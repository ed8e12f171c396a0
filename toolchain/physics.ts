// Small-scale ptychography physics: a synthetic complex object and probe, a jittered raster
// scan, and the far-field forward model |FFT(probe * object patch)|^2 with Poisson noise.
// This is a deliberately small stand-in for the study's simulate_and_save (N = 64 instead
// of 128, hundreds of positions instead of ~10^4), not PtychoPINN's simulator.
import { fft2, fftshift2 } from './fft.ts';
import { Rng } from './rng.ts';

/** A complex 2-D array, interleaved (re, im), row-major. */
export interface Complex2D {
  rows: number;
  cols: number;
  data: Float64Array;
}

/** Scan geometry, as fractions of N (3 px along x, 100 px between rows at N = 64): a
 *  fly-scan-like raster, dense along the fast axis and stepped along y, like the fly001
 *  scans of the study. The pitches are chosen against the study's era-1 spacing filter
 *  (dense S = 0.3 N = 19.2 px, sparse S = 0.8 N = 51.2 px; rows are farther apart than
 *  either S, so greedy selection keeps every row and thins each row on its own):
 *  - positions cover > 206 px^2 each, so the geometry bound is capped at 10% and the
 *    minimum acceptance is 8% for both views;
 *  - dense keeps every 7th point of a row (21 px): ~14% > 8%, passes via the greedy fallback;
 *  - sparse keeps every 18th (54 px): ~5.6% < 8%, rejected, as in the real study.
 *  Checked over 30 seeds: on the default 54 x 8 raster the sparse greedy rate stays below
 *  0.76 of the minimum and the dense rate above 1.3 of it. Small rasters (a handful of
 *  columns) gain from edge effects and may pass sparse. The jitter (+-0.5 px) cannot move
 *  a distance across a threshold. Rows 100 px apart leave unscanned bands between the
 *  64 px patches; that is acceptable for a toy reconstruction. */
export const PITCH_X = 3 / 64;
export const PITCH_Y = 100 / 64;
export const JITTER = 0.5 / 64;
/** Raster aspect (columns : rows): the default 432 positions make a 54 x 8 raster
 *  (4 rows per split; 54 = 3 x 18 columns keeps the sparse edge gain small). */
export const ASPECT = 54 / 8;

/** Smooth random field in [0, 1]: a sum of Gaussian blobs, normalised by min/max. */
function blobField(rows: number, cols: number, rng: Rng, scale: number): Float64Array {
  const f = new Float64Array(rows * cols);
  const count = Math.max(8, Math.round((rows * cols) / (scale * scale * 2)));
  for (let b = 0; b < count; b++) {
    const cy = rng.range(0, rows);
    const cx = rng.range(0, cols);
    const sigma = rng.range(0.4 * scale, 1.2 * scale);
    const w = rng.range(-1, 1);
    const r = Math.ceil(3 * sigma);
    const inv = 1 / (2 * sigma * sigma);
    for (let y = Math.max(0, Math.floor(cy - r)); y < Math.min(rows, Math.ceil(cy + r)); y++) {
      for (let x = Math.max(0, Math.floor(cx - r)); x < Math.min(cols, Math.ceil(cx + r)); x++) {
        const d2 = (y - cy) * (y - cy) + (x - cx) * (x - cx);
        f[y * cols + x] = f[y * cols + x]! + w * Math.exp(-d2 * inv);
      }
    }
  }
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of f) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi - lo || 1;
  for (let i = 0; i < f.length; i++) f[i] = (f[i]! - lo) / span;
  return f;
}

/** Synthetic M x M object: amplitude in [0.5, 1], phase in [-1, 1] rad, independent
 *  textures so amplitude and phase are not trivially related. */
export function syntheticObject(rows: number, cols: number, rng: Rng): Complex2D {
  const amp = blobField(rows, cols, rng, 6);
  const phase = blobField(rows, cols, rng, 9);
  const data = new Float64Array(2 * rows * cols);
  for (let i = 0; i < rows * cols; i++) {
    const a = 0.5 + 0.5 * amp[i]!;
    const p = 2 * phase[i]! - 1;
    data[2 * i] = a * Math.cos(p);
    data[2 * i + 1] = a * Math.sin(p);
  }
  return { rows, cols, data };
}

/** Synthetic N x N probe: a soft-edged disc of diameter 0.6 N (the study's 38.4 px at
 *  N = 64) with a quadratic (defocus) phase, so the diffraction is not a single bright spot. */
export function syntheticProbe(n: number): Complex2D {
  const data = new Float64Array(2 * n * n);
  const radius = 0.3 * n;
  const c = (n - 1) / 2;
  for (let y = 0; y < n; y++) {
    for (let x = 0; x < n; x++) {
      const r = Math.hypot(y - c, x - c);
      const a = 0.5 * (1 - Math.tanh((r - radius) / 1.5));
      const p = 1.5 * (r / radius) ** 2;
      data[2 * (y * n + x)] = a * Math.cos(p);
      data[2 * (y * n + x) + 1] = a * Math.sin(p);
    }
  }
  return { rows: n, cols: n, data };
}

export interface Scan {
  xcoords: Float64Array;
  ycoords: Float64Array;
  objectRows: number;
  objectCols: number;
}

/** Jittered raster of `positions` points (row-major, the last row may be partial), with
 *  columns : rows about ASPECT and an even number of rows. Coordinates are patch centres in object pixels. The object is
 *  sized to hold the scan plus one patch, or is M x M when `objectSize` is given (the scan
 *  must then fit in it). */
export function rasterScan(positions: number, n: number, rng: Rng, objectSize?: number): Scan {
  const sx = PITCH_X * n;
  const sy = PITCH_Y * n;
  // An even number of rows (>= 2) so the y split at half the range halves the raster.
  const rows = Math.max(2, 2 * Math.round(Math.sqrt(positions / ASPECT) / 2));
  const cols = Math.ceil(positions / rows);
  const jitter = JITTER * n;
  const width = (cols - 1) * sx;
  const height = (rows - 1) * sy;
  const margin = Math.ceil(jitter) + 2;
  const needRows = Math.ceil(height) + n + 2 * margin;
  const needCols = Math.ceil(width) + n + 2 * margin;
  const objectRows = objectSize ?? needRows;
  const objectCols = objectSize ?? needCols;
  if (objectRows < needRows || objectCols < needCols) {
    throw new RangeError(
      `object size ${objectSize} too small for ${positions} positions (${cols}x${rows} raster) at patch size ${n}; needs >= ${Math.max(needRows, needCols)}`,
    );
  }
  const x0 = (objectCols - width) / 2;
  const y0 = (objectRows - height) / 2;
  const xs = new Float64Array(positions);
  const ys = new Float64Array(positions);
  for (let i = 0; i < positions; i++) {
    const r = Math.floor(i / cols);
    const c = i % cols;
    xs[i] = x0 + c * sx + rng.range(-jitter, jitter);
    ys[i] = y0 + r * sy + rng.range(-jitter, jitter);
  }
  return { xcoords: xs, ycoords: ys, objectRows, objectCols };
}

/** Top-left corner of the N x N patch centred on (x, y). Shared by simulation and
 *  reconstruction so both use the same pixel grid. */
export function patchCorner(x: number, y: number, n: number): [number, number] {
  return [Math.round(y - n / 2), Math.round(x - n / 2)];
}

/** Check every patch lies inside the object; throws naming the first offending position. */
export function checkPatchesInside(obj: Complex2D, xs: Float64Array, ys: Float64Array, n: number): void {
  for (let i = 0; i < xs.length; i++) {
    const [r0, c0] = patchCorner(xs[i]!, ys[i]!, n);
    if (r0 < 0 || c0 < 0 || r0 + n > obj.rows || c0 + n > obj.cols) {
      throw new RangeError(
        `scan position ${i} (x=${xs[i]}, y=${ys[i]}) puts its ${n}x${n} patch outside the ${obj.rows}x${obj.cols} object`,
      );
    }
  }
}

export interface Simulation {
  /** amplitude sqrt(counts), n x N x N, fftshifted (zero frequency at the centre) */
  diffraction: Float32Array;
  /** ground-truth object patches, complex64 interleaved, n x N x N */
  Y: Float32Array;
  /** factor applied to |FFT|^2 so the mean total counts per pattern equal the dose */
  intensityScale: number;
  meanTotalCounts: number;
}

/** Far-field diffraction: I_j = s |FFT(P . O_j)|^2 with s = dose / mean_j sum I_j, then
 *  counts ~ Poisson(I_j) and amplitude = sqrt(counts). */
export function simulateDiffraction(
  obj: Complex2D,
  probe: Complex2D,
  xs: Float64Array,
  ys: Float64Array,
  dose: number,
  rng: Rng,
): Simulation {
  const n = probe.rows;
  const npix = n * n;
  const count = xs.length;
  checkPatchesInside(obj, xs, ys, n);
  const intensity = new Float32Array(count * npix);
  const Y = new Float32Array(2 * count * npix);
  const re = new Float64Array(npix);
  const im = new Float64Array(npix);
  const raw = new Float64Array(npix);
  const shifted = new Float64Array(npix);
  let total = 0;
  for (let j = 0; j < count; j++) {
    const [r0, c0] = patchCorner(xs[j]!, ys[j]!, n);
    for (let y = 0; y < n; y++) {
      for (let x = 0; x < n; x++) {
        const o = 2 * ((r0 + y) * obj.cols + c0 + x);
        const p = 2 * (y * n + x);
        const or = obj.data[o]!;
        const oi = obj.data[o + 1]!;
        const pr = probe.data[p]!;
        const pi = probe.data[p + 1]!;
        re[y * n + x] = pr * or - pi * oi;
        im[y * n + x] = pr * oi + pi * or;
        Y[2 * (j * npix) + p] = or;
        Y[2 * (j * npix) + p + 1] = oi;
      }
    }
    fft2(re, im, n);
    for (let k = 0; k < npix; k++) {
      raw[k] = re[k]! * re[k]! + im[k]! * im[k]!;
      total += raw[k]!;
    }
    fftshift2(raw, n, shifted);
    intensity.set(shifted, j * npix);
  }
  const scale = dose / (total / count);
  const diffraction = new Float32Array(count * npix);
  let counts = 0;
  for (let k = 0; k < intensity.length; k++) {
    const c = rng.poisson(scale * intensity[k]!);
    counts += c;
    diffraction[k] = Math.sqrt(c);
  }
  return { diffraction, Y, intensityScale: scale, meanTotalCounts: counts / count };
}
