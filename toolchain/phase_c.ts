// Phase C (studies.fly64_dose_overlap.generation): simulate diffraction per dose, then
// write simulated_raw.npz, the y-split patched_{train,test}.npz and run_manifest.json.
// The study's intermediate canonical.npz/patched.npz are not written (the simulator
// already produces the canonical NHW float32 amplitude layout with Y patches); their
// steps are still recorded in `_metadata.data_transformations` so the Phase G metadata
// guard (a transpose_rename_convert entry) holds.
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs, UsageError, type FlagSpec } from './args.ts';
import { doseDir, FileNotFoundError, ValueError, writeJson, type Io } from './cli.ts';
import { subset, withTransformation, writeDataset, type Dataset, type Metadata } from './dataset.ts';
import { isPowerOfTwo } from './fft.ts';
import { asComplex128, asFloat64, readNpz } from './npz.ts';
import { rasterScan, simulateDiffraction, syntheticObject, syntheticProbe, type Complex2D } from './physics.ts';
import { Rng } from './rng.ts';

export const TOOL_VERSION = 'hubmake-reference-toolchain 0.1.0';
export const DESIGN_DOSES = [1e3, 1e4, 1e5];

export const generationSpecs: Record<string, FlagSpec> = {
  'output-root': { kind: 'string', required: true, metavar: 'DIR', help: 'Phase C root; writes dose_{d}/ and run_manifest.json' },
  dose: { kind: 'number', repeat: true, metavar: 'N', help: 'dose in photons per pattern (repeatable; default 1000 10000 100000)' },
  'base-npz': { kind: 'string', metavar: 'PATH', help: 'read objectGuess, probeGuess, xcoords, ycoords from this NPZ instead of synthesising them' },
  seed: { kind: 'int', metavar: 'N', help: 'seed for the synthetic object/scan and the Poisson noise (default 42)' },
  'patch-size': { kind: 'int', metavar: 'N', help: 'diffraction patch size N, a power of two (default 64)' },
  positions: { kind: 'int', metavar: 'P', help: 'number of scan positions (default 432, a 54 x 8 jittered raster)' },
  'object-size': { kind: 'int', metavar: 'M', help: 'object side in pixels (default: just large enough for the scan)' },
};

export const DEFAULT_POSITIONS = 432;

interface Source {
  object: Complex2D;
  probe: Complex2D;
  xs: Float64Array;
  ys: Float64Array;
  origin: Record<string, unknown>;
}

function loadBase(path: string, positions: number | undefined, patchSize: number | undefined): Source {
  if (!existsSync(path)) throw new FileNotFoundError(`--base-npz: no such file: '${path}'`);
  let m;
  try {
    m = readNpz(path);
  } catch (e) {
    throw new ValueError(`--base-npz: cannot read '${path}' as NPZ: ${(e as Error).message}`);
  }
  const get = (k: string) => {
    const v = m.get(k);
    if (v === undefined || typeof v === 'string') throw new ValueError(`--base-npz: '${path}' has no array '${k}'`);
    return v;
  };
  const obj = get('objectGuess');
  const probe = get('probeGuess');
  if (obj.shape.length !== 2 || probe.shape.length !== 2) throw new ValueError(`--base-npz: objectGuess and probeGuess must be 2-D`);
  if (probe.shape[0] !== probe.shape[1] || !isPowerOfTwo(probe.shape[0]!)) {
    throw new ValueError(`--base-npz: probeGuess must be square with a power-of-two side, got (${probe.shape})`);
  }
  if (patchSize !== undefined && patchSize !== probe.shape[0]) {
    throw new UsageError(`argument --patch-size: ${patchSize} disagrees with the base probe size ${probe.shape[0]}`);
  }
  let xs = asFloat64(get('xcoords'), 'xcoords');
  let ys = asFloat64(get('ycoords'), 'ycoords');
  if (xs.length !== ys.length) throw new ValueError(`--base-npz: xcoords and ycoords differ in length`);
  if (positions !== undefined) {
    if (positions > xs.length) throw new UsageError(`argument --positions: ${positions} exceeds the ${xs.length} positions in --base-npz`);
    xs = xs.slice(0, positions);
    ys = ys.slice(0, positions);
  }
  return {
    object: { rows: obj.shape[0]!, cols: obj.shape[1]!, data: asComplex128(obj) },
    probe: { rows: probe.shape[0]!, cols: probe.shape[1]!, data: asComplex128(probe) },
    xs: Float64Array.from(xs),
    ys: Float64Array.from(ys),
    origin: { base_npz: path },
  };
}

function synthesise(seed: number, positions: number, n: number, objectSize: number | undefined): Source {
  // Geometry and object come from the seed only, so every dose sees the same sample.
  const rng = new Rng(seed);
  let scan;
  try {
    scan = rasterScan(positions, n, rng, objectSize);
  } catch (e) {
    throw new UsageError(`argument --object-size: ${(e as Error).message}`);
  }
  const object = syntheticObject(scan.objectRows, scan.objectCols, rng);
  return { object, probe: syntheticProbe(n), xs: scan.xcoords, ys: scan.ycoords, origin: { synthetic: true, seed } };
}

function toF32(c: Complex2D): { rows: number; cols: number; data: Float32Array } {
  return { rows: c.rows, cols: c.cols, data: Float32Array.from(c.data) };
}

export async function runGeneration(argv: string[], io: Io): Promise<number> {
  const a = parseArgs(argv, generationSpecs);
  const root = a['output-root'] as string;
  const doses = (a['dose'] as number[] | undefined) ?? DESIGN_DOSES;
  for (const d of doses) if (!(d > 0)) throw new UsageError(`argument --dose: dose must be > 0, got ${d}`);
  const seed = (a['seed'] as number | undefined) ?? 42;
  const patch = a['patch-size'] as number | undefined;
  if (patch !== undefined && (!isPowerOfTwo(patch) || patch < 8 || patch > 1024)) {
    throw new UsageError(`argument --patch-size: must be a power of two between 8 and 1024, got ${patch}`);
  }
  const positions = a['positions'] as number | undefined;
  if (positions !== undefined && positions < 2) throw new UsageError(`argument --positions: need at least 2 positions, got ${positions}`);
  const objectSize = a['object-size'] as number | undefined;
  if (objectSize !== undefined && objectSize < 8) throw new UsageError(`argument --object-size: too small (${objectSize})`);
  const base = a['base-npz'] as string | undefined;
  if (base !== undefined && objectSize !== undefined) {
    throw new UsageError(`argument --object-size: not allowed with --base-npz (the base NPZ fixes the object)`);
  }

  const src = base !== undefined ? loadBase(base, positions, patch) : synthesise(seed, positions ?? DEFAULT_POSITIONS, patch ?? 64, objectSize);
  const n = src.probe.rows;
  io.out(`Phase C dataset generation (reference toolchain)`);
  io.out(`  source: ${base ?? `synthetic (seed=${seed})`}; positions=${src.xs.length}; N=${n}; object=${src.object.rows}x${src.object.cols}`);

  const manifest: Record<string, unknown> = {};
  for (const dose of doses) {
    const dir = join(root, doseDir(dose));
    mkdirSync(dir, { recursive: true });
    io.out(`[${doseDir(dose)}] simulating ${src.xs.length} patterns at ${dose} photons/pattern`);
    // Noise seed depends on the dose so doses are independent draws, yet reproducible.
    const sim = simulateDiffraction(src.object, src.probe, src.xs, src.ys, dose, new Rng(seed * 7919 + Math.round(dose)));
    const baseMeta: Metadata = {
      schema_version: '1.0',
      creation_info: { script: 'toolchain/generation.ts', toolchain_version: TOOL_VERSION },
      physics_parameters: { nphotons: dose, gridsize: 1, N: n, probe_trainable: false, intensity_scale_trainable: false, model_type: 'simulation' },
      additional_parameters: {
        ...src.origin,
        n_images: src.xs.length,
        object_shape: [src.object.rows, src.object.cols],
        intensity_scale: sim.intensityScale,
        mean_total_counts: sim.meanTotalCounts,
        diffraction_units: 'sqrt(photon counts), fftshifted',
      },
      data_transformations: [],
    };
    const rawMeta = withTransformation(baseMeta, 'simulate_and_save', 'simulate', { nphotons: dose, seed, N: n, n_images: src.xs.length, noise: 'poisson' });
    const all: Dataset = {
      n: src.xs.length,
      H: n,
      W: n,
      diffraction: sim.diffraction,
      Y: sim.Y,
      objectGuess: toF32(src.object),
      probeGuess: toF32(src.probe),
      xcoords: src.xs,
      ycoords: src.ys,
      scanIndex: BigInt64Array.from(src.xs, (_, i) => BigInt(i)),
      metadata: rawMeta,
    };
    writeDataset(join(dir, 'simulated_raw.npz'), all);

    // Split at half of the y coordinate range; train is y < split (split_dataset_tool).
    let lo = Infinity;
    let hi = -Infinity;
    for (const y of src.ys) {
      lo = Math.min(lo, y);
      hi = Math.max(hi, y);
    }
    const split = lo + (hi - lo) * 0.5;
    const trainIdx: number[] = [];
    const testIdx: number[] = [];
    src.ys.forEach((y, i) => (y < split ? trainIdx : testIdx).push(i));
    if (trainIdx.length === 0 || testIdx.length === 0) {
      throw new ValueError(`y split at ${split} leaves an empty split (train=${trainIdx.length}, test=${testIdx.length}); need positions spread in y`);
    }
    let meta = withTransformation(rawMeta, 'transpose_rename_convert', 'canonicalize', {
      layout: 'NHW',
      rename: { diff3d: 'diffraction' },
      dtype: 'float32',
      note: 'simulator output is already canonical; recorded for the PHASEC-METADATA-001 guard',
    });
    meta = withTransformation(meta, 'generate_patches', 'generate_patches', { patch_size: n, k_neighbors: 7, nsamples: 1 });
    const splitParams = { split_fraction: 0.5, split_axis: 'y', split_value: split, train_count: trainIdx.length, test_count: testIdx.length };
    const trainMeta = withTransformation(meta, 'split_dataset', 'train_test_split', { ...splitParams, split: 'train' });
    const testMeta = withTransformation(meta, 'split_dataset', 'train_test_split', { ...splitParams, split: 'test' });
    const trainPath = join(dir, 'patched_train.npz');
    const testPath = join(dir, 'patched_test.npz');
    writeDataset(trainPath, subset(all, trainIdx, trainMeta));
    writeDataset(testPath, subset(all, testIdx, testMeta));
    io.out(`  train=${trainIdx.length} (y < ${split.toFixed(2)}), test=${testIdx.length}; mean counts/pattern=${sim.meanTotalCounts.toFixed(1)}`);
    manifest[doseDir(dose)] = { dose, train: trainPath, test: testPath, intermediate_dir: dir };
  }
  // Written only once every dose succeeded, as in the study.
  writeJson(join(root, 'run_manifest.json'), manifest);
  io.out(`✓ run manifest: ${join(root, 'run_manifest.json')}`);
  return 0;
}
