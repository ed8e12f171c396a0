// NPY/NPZ encoding, enough of numpy's format (v1.0 headers) for the DATA-001 arrays:
// float32/float64, complex64/complex128, int64/int32/uint8/bool, and 0-d unicode strings
// (numpy stores a Python str such as `_metadata` as a '<U{n}' array of UTF-32 code units,
// which np.load reads without allow_pickle). Little-endian, C order only.
import { readZip, writeZip, type ZipEntry } from './zip.ts';

export type DType = 'float32' | 'float64' | 'complex64' | 'complex128' | 'int64' | 'int32' | 'uint8' | 'bool';

/** An n-d array. Complex data are interleaved (re, im) in the float array. */
export interface NdArray {
  dtype: DType;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
}

/** A value stored in an NPZ: an array, or a string (0-d '<U' array). */
export type NpyValue = NdArray | string;

const DESCR: Record<DType, string> = {
  float32: '<f4',
  float64: '<f8',
  complex64: '<c8',
  complex128: '<c16',
  int64: '<i8',
  int32: '<i4',
  uint8: '|u1',
  bool: '|b1',
};

export function f32(shape: number[], data?: Float32Array): NdArray {
  return { dtype: 'float32', shape, data: data ?? new Float32Array(prod(shape)) };
}
export function f64(shape: number[], data?: Float64Array): NdArray {
  return { dtype: 'float64', shape, data: data ?? new Float64Array(prod(shape)) };
}
export function c64(shape: number[], data?: Float32Array): NdArray {
  return { dtype: 'complex64', shape, data: data ?? new Float32Array(2 * prod(shape)) };
}
export function i64(shape: number[], data?: BigInt64Array): NdArray {
  return { dtype: 'int64', shape, data: data ?? new BigInt64Array(prod(shape)) };
}

export function prod(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function header(descr: string, shape: number[]): Buffer {
  const shp = shape.length === 0 ? '()' : shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let h = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shp}, }`;
  // numpy pads the header with spaces so the data start is 64-byte aligned, newline last.
  const total = 10 + h.length + 1;
  h += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = Buffer.alloc(10 + h.length);
  out.write('\x93NUMPY', 0, 'latin1');
  out[6] = 1;
  out[7] = 0;
  out.writeUInt16LE(h.length, 8);
  out.write(h, 10, 'latin1');
  return out;
}

/** Encode one value as .npy bytes (header and data as separate chunks, no copy of data). */
export function encodeNpy(v: NpyValue): Buffer[] {
  if (typeof v === 'string') {
    const cps = Array.from(v, (ch) => ch.codePointAt(0)!);
    const data = Buffer.alloc(4 * Math.max(1, cps.length));
    cps.forEach((cp, i) => data.writeUInt32LE(cp, 4 * i));
    return [header(`<U${Math.max(1, cps.length)}`, []), data];
  }
  const expected = prod(v.shape) * (v.dtype.startsWith('complex') ? 2 : 1);
  if (v.data.length !== expected) throw new Error(`array data length ${v.data.length} does not match shape ${v.shape}`);
  const bytes = Buffer.from(v.data.buffer, v.data.byteOffset, v.data.byteLength);
  return [header(DESCR[v.dtype], v.shape), bytes];
}

export function decodeNpy(buf: Buffer, label: string): NpyValue {
  if (buf.length < 10 || buf.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${label}: not an .npy array`);
  const major = buf[6]!;
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = major === 1 ? 10 : 12;
  const h = buf.toString('latin1', start, start + hlen);
  const descr = /'descr':\s*'([^']+)'/.exec(h)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(h)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(h)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${label}: unreadable .npy header ${h.trim()}`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  const body = buf.subarray(start + hlen);
  const n = prod(shape);
  const u = /^[<|=]U(\d+)$/.exec(descr);
  if (u) {
    if (n !== 1) throw new Error(`${label}: only 0-d unicode arrays are supported`);
    const width = Number(u[1]);
    let s = '';
    for (let i = 0; i < width; i++) {
      const cp = body.readUInt32LE(4 * i);
      if (cp === 0) break;
      s += String.fromCodePoint(cp);
    }
    return s;
  }
  if (fortran === 'True' && shape.length > 1) throw new Error(`${label}: Fortran-ordered arrays are not supported`);
  if (descr.startsWith('>')) throw new Error(`${label}: big-endian arrays are not supported`);
  // Copy into an aligned buffer: zip entries start at arbitrary offsets.
  const copy = (bytes: number): ArrayBuffer => {
    if (body.length < bytes) throw new Error(`${label}: truncated array data`);
    const ab = new ArrayBuffer(bytes);
    new Uint8Array(ab).set(body.subarray(0, bytes));
    return ab;
  };
  switch (descr.replace('=', '<')) {
    case '<f4':
      return { dtype: 'float32', shape, data: new Float32Array(copy(4 * n)) };
    case '<f8':
      return { dtype: 'float64', shape, data: new Float64Array(copy(8 * n)) };
    case '<c8':
      return { dtype: 'complex64', shape, data: new Float32Array(copy(8 * n)) };
    case '<c16':
      return { dtype: 'complex128', shape, data: new Float64Array(copy(16 * n)) };
    case '<i8':
      return { dtype: 'int64', shape, data: new BigInt64Array(copy(8 * n)) };
    case '<i4':
      return { dtype: 'int32', shape, data: new Int32Array(copy(4 * n)) };
    case '|u1':
    case '<u1':
      return { dtype: 'uint8', shape, data: new Uint8Array(copy(n)) };
    case '|b1':
      return { dtype: 'bool', shape, data: new Uint8Array(copy(n)) };
    case '<u2': {
      // legacy uint16 intensity (raw diff3d): widen to float64 so callers have one path
      const src = new Uint16Array(copy(2 * n));
      return { dtype: 'float64', shape, data: Float64Array.from(src) };
    }
    default:
      throw new Error(`${label}: unsupported dtype ${descr}`);
  }
}

/** Write an NPZ (zip of `<key>.npy`), keys in the given order. */
export function writeNpz(path: string, arrays: Array<[string, NpyValue]>): void {
  const entries: ZipEntry[] = arrays.map(([k, v]) => ({ name: `${k}.npy`, data: encodeNpy(v) }));
  writeZip(path, entries);
}

export function readNpz(path: string): Map<string, NpyValue> {
  const out = new Map<string, NpyValue>();
  for (const [name, buf] of readZip(path)) {
    const key = name.endsWith('.npy') ? name.slice(0, -4) : name;
    out.set(key, decodeNpy(buf, `${path}:${name}`));
  }
  return out;
}

/** Real values of any numeric array as float64 (complex arrays are rejected). */
export function asFloat64(a: NdArray, label: string): Float64Array {
  if (a.dtype.startsWith('complex')) throw new Error(`${label}: expected a real array, got ${a.dtype}`);
  if (a.data instanceof BigInt64Array) return Float64Array.from(a.data, (x) => Number(x));
  return a.data instanceof Float64Array ? a.data : Float64Array.from(a.data as ArrayLike<number>);
}

/** Interleaved complex values of any numeric array as float64 (real arrays get im = 0). */
export function asComplex128(a: NdArray): Float64Array {
  if (a.dtype.startsWith('complex')) return Float64Array.from(a.data as Float32Array | Float64Array);
  const re = asFloat64(a, 'array');
  const out = new Float64Array(2 * re.length);
  for (let i = 0; i < re.length; i++) out[2 * i] = re[i]!;
  return out;
}
