// In-place radix-2 complex FFT on split re/im Float64Arrays, and a 2-D version for square
// power-of-two patches. Unnormalised forward transform, 1/n inverse (numpy's convention),
// so Parseval reads sum|F|^2 = N^2 * sum|f|^2 for an N x N patch.

const plans = new Map<number, { rev: Uint32Array; cos: Float64Array; sin: Float64Array }>();

export function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 2 && (n & (n - 1)) === 0;
}

function plan(n: number): { rev: Uint32Array; cos: Float64Array; sin: Float64Array } {
  let p = plans.get(n);
  if (p) return p;
  if (!isPowerOfTwo(n)) throw new Error(`FFT size must be a power of two, got ${n}`);
  const bits = Math.log2(n);
  const rev = new Uint32Array(n);
  for (let i = 0; i < n; i++) {
    let r = 0;
    for (let b = 0; b < bits; b++) r |= ((i >> b) & 1) << (bits - 1 - b);
    rev[i] = r;
  }
  const cos = new Float64Array(n / 2);
  const sin = new Float64Array(n / 2);
  for (let k = 0; k < n / 2; k++) {
    cos[k] = Math.cos((2 * Math.PI * k) / n);
    sin[k] = -Math.sin((2 * Math.PI * k) / n);
  }
  p = { rev, cos, sin };
  plans.set(n, p);
  return p;
}

/** 1-D FFT of n points stored at re[off + i*stride], im[off + i*stride]. */
function fft1(re: Float64Array, im: Float64Array, off: number, stride: number, n: number, inverse: boolean): void {
  const { rev, cos, sin } = plan(n);
  for (let i = 0; i < n; i++) {
    const j = rev[i]!;
    if (j > i) {
      const a = off + i * stride;
      const b = off + j * stride;
      let t = re[a]!;
      re[a] = re[b]!;
      re[b] = t;
      t = im[a]!;
      im[a] = im[b]!;
      im[b] = t;
    }
  }
  const sgn = inverse ? -1 : 1;
  for (let size = 2; size <= n; size <<= 1) {
    const half = size >> 1;
    const step = n / size;
    for (let start = 0; start < n; start += size) {
      for (let k = 0; k < half; k++) {
        const wr = cos[k * step]!;
        const wi = sgn * sin[k * step]!;
        const a = off + (start + k) * stride;
        const b = a + half * stride;
        const xr = re[b]! * wr - im[b]! * wi;
        const xi = re[b]! * wi + im[b]! * wr;
        re[b] = re[a]! - xr;
        im[b] = im[a]! - xi;
        re[a] = re[a]! + xr;
        im[a] = im[a]! + xi;
      }
    }
  }
}

/** 2-D FFT of an n x n row-major array, in place. */
export function fft2(re: Float64Array, im: Float64Array, n: number, inverse = false): void {
  for (let r = 0; r < n; r++) fft1(re, im, r * n, 1, n, inverse);
  for (let c = 0; c < n; c++) fft1(re, im, c, n, n, inverse);
  if (inverse) {
    const s = 1 / (n * n);
    for (let i = 0; i < n * n; i++) {
      re[i] = re[i]! * s;
      im[i] = im[i]! * s;
    }
  }
}

/** fftshift for an even n x n array (its own inverse): swap quadrants, DC to the centre. */
export function fftshift2<T extends Float32Array | Float64Array>(src: T, n: number, dst: T): T {
  const h = n / 2;
  for (let r = 0; r < n; r++) {
    const rr = (r + h) % n;
    for (let c = 0; c < n; c++) dst[rr * n + ((c + h) % n)] = src[r * n + c]!;
  }
  return dst;
}
