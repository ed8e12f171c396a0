// The DATA-001 NPZ contract: write and read "ready for training" datasets with the keys
// and dtypes the study's validator checks (diffraction float32 amplitude (n,H,W), Y
// complex64 (n,H,W), objectGuess/probeGuess complex64, xcoords/ycoords float64,
// scan_index int64, `_metadata` JSON string). Key order is fixed so files are reproducible.
import { FileNotFoundError, ValueError } from './cli.ts';
import { existsSync } from 'node:fs';
import { asComplex128, asFloat64, c64, f32, f64, i64, readNpz, writeNpz, type NdArray, type NpyValue } from './npz.ts';

export interface Dataset {
  n: number;
  H: number;
  W: number;
  /** amplitude, n*H*W */
  diffraction: Float32Array;
  /** complex64 interleaved, n*H*W (optional on read: Y is only needed for supervision) */
  Y?: Float32Array;
  objectGuess: { rows: number; cols: number; data: Float32Array };
  probeGuess: { rows: number; cols: number; data: Float32Array };
  xcoords: Float64Array;
  ycoords: Float64Array;
  scanIndex: BigInt64Array;
  metadata: Metadata;
}

/** `_metadata` in the shape of ptycho/metadata.py's MetadataManager, minus the fields that
 *  would break reproducibility (creation timestamp, hostname). */
export interface Metadata {
  schema_version: string;
  creation_info: Record<string, unknown>;
  physics_parameters: Record<string, unknown>;
  additional_parameters: Record<string, unknown>;
  data_transformations: Array<{ tool: string; operation: string; parameters: Record<string, unknown> }>;
  [extra: string]: unknown;
}

export function writeDataset(path: string, ds: Dataset): void {
  const arrays: Array<[string, NpyValue]> = [['diffraction', f32([ds.n, ds.H, ds.W], ds.diffraction)]];
  if (ds.Y) arrays.push(['Y', c64([ds.n, ds.H, ds.W], ds.Y)]);
  arrays.push(
    ['objectGuess', c64([ds.objectGuess.rows, ds.objectGuess.cols], ds.objectGuess.data)],
    ['probeGuess', c64([ds.probeGuess.rows, ds.probeGuess.cols], ds.probeGuess.data)],
    ['xcoords', f64([ds.n], ds.xcoords)],
    ['ycoords', f64([ds.n], ds.ycoords)],
    ['scan_index', i64([ds.n], ds.scanIndex)],
    ['_metadata', JSON.stringify(ds.metadata)],
  );
  writeNpz(path, arrays);
}

function need(m: Map<string, NpyValue>, key: string, path: string): NdArray {
  const v = m.get(key);
  if (v === undefined) throw new ValueError(`${path}: missing required key '${key}' (DATA-001)`);
  if (typeof v === 'string') throw new ValueError(`${path}: key '${key}' is a string, expected an array`);
  return v;
}

function toComplex64(a: NdArray): Float32Array {
  return a.dtype === 'complex64' ? (a.data as Float32Array) : Float32Array.from(asComplex128(a));
}

/** Load an NPZ and validate it like validation.validate_dataset_contract (ValueError on
 *  a contract violation, FileNotFoundError when absent). */
export function readDataset(path: string): Dataset {
  if (!existsSync(path)) throw new FileNotFoundError(`No such file: '${path}'`);
  const m = readNpz(path);
  const diff = need(m, 'diffraction', path);
  if (diff.dtype !== 'float32' && diff.dtype !== 'float64') {
    throw new ValueError(`${path}: diffraction must be a float dtype, got ${diff.dtype}`);
  }
  if (diff.shape.length !== 3) throw new ValueError(`${path}: diffraction must be 3-D (n,H,W), got shape (${diff.shape})`);
  const [n, H, W] = diff.shape as [number, number, number];
  const obj = need(m, 'objectGuess', path);
  const probe = need(m, 'probeGuess', path);
  for (const [k, a] of [['objectGuess', obj], ['probeGuess', probe]] as const) {
    if (!a.dtype.startsWith('complex')) throw new ValueError(`${path}: ${k} must be complex, got ${a.dtype}`);
    if (a.shape.length !== 2) throw new ValueError(`${path}: ${k} must be 2-D, got shape (${a.shape})`);
  }
  const xa = need(m, 'xcoords', path);
  const ya = need(m, 'ycoords', path);
  for (const [k, a] of [['xcoords', xa], ['ycoords', ya]] as const) {
    if (a.dtype !== 'float64' && a.dtype !== 'float32') throw new ValueError(`${path}: ${k} must be float, got ${a.dtype}`);
  }
  if (xa.data.length !== n || ya.data.length !== n) {
    throw new ValueError(`${path}: len(xcoords)=${xa.data.length}, len(ycoords)=${ya.data.length}, diffraction.shape[0]=${n} must agree`);
  }
  const yv = m.get('Y');
  let Y: Float32Array | undefined;
  if (yv !== undefined && typeof yv !== 'string') {
    if (yv.shape.length === 3 && yv.shape[0] === n) Y = toComplex64(yv);
  }
  const si = m.get('scan_index');
  let scanIndex: BigInt64Array;
  if (si && typeof si !== 'string' && si.data.length === n) {
    scanIndex = si.data instanceof BigInt64Array ? si.data : BigInt64Array.from(asFloat64(si, 'scan_index'), (v) => BigInt(Math.round(v)));
  } else {
    scanIndex = BigInt64Array.from({ length: n }, (_, i) => BigInt(i));
  }
  const metaRaw = m.get('_metadata');
  let metadata: Metadata = { schema_version: '1.0', creation_info: {}, physics_parameters: {}, additional_parameters: {}, data_transformations: [] };
  if (typeof metaRaw === 'string') {
    try {
      metadata = { ...metadata, ...(JSON.parse(metaRaw) as Metadata) };
    } catch {
      throw new ValueError(`${path}: _metadata is not valid JSON`);
    }
  }
  return {
    n,
    H,
    W,
    diffraction: diff.data instanceof Float32Array ? diff.data : Float32Array.from(diff.data as Float64Array),
    ...(Y ? { Y } : {}),
    objectGuess: { rows: obj.shape[0]!, cols: obj.shape[1]!, data: toComplex64(obj) },
    probeGuess: { rows: probe.shape[0]!, cols: probe.shape[1]!, data: toComplex64(probe) },
    xcoords: asFloat64(xa, 'xcoords'),
    ycoords: asFloat64(ya, 'ycoords'),
    scanIndex,
    metadata,
  };
}

/** Rows `idx` of a dataset (object and probe shared), with a new metadata object. */
export function subset(ds: Dataset, idx: number[], metadata: Metadata): Dataset {
  const npix = ds.H * ds.W;
  const diffraction = new Float32Array(idx.length * npix);
  const Y = ds.Y ? new Float32Array(2 * idx.length * npix) : undefined;
  idx.forEach((j, k) => {
    diffraction.set(ds.diffraction.subarray(j * npix, (j + 1) * npix), k * npix);
    if (Y && ds.Y) Y.set(ds.Y.subarray(2 * j * npix, 2 * (j + 1) * npix), 2 * k * npix);
  });
  return {
    n: idx.length,
    H: ds.H,
    W: ds.W,
    diffraction,
    ...(Y ? { Y } : {}),
    objectGuess: ds.objectGuess,
    probeGuess: ds.probeGuess,
    xcoords: Float64Array.from(idx, (j) => ds.xcoords[j]!),
    ycoords: Float64Array.from(idx, (j) => ds.ycoords[j]!),
    scanIndex: BigInt64Array.from(idx, (j) => ds.scanIndex[j]!),
    metadata,
  };
}

/** Deep copy of metadata with one more transformation record appended. */
export function withTransformation(meta: Metadata, tool: string, operation: string, parameters: Record<string, unknown>): Metadata {
  const copy = JSON.parse(JSON.stringify(meta)) as Metadata;
  copy.data_transformations = [...(copy.data_transformations ?? []), { tool, operation, parameters }];
  return copy;
}
