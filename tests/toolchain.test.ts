// Unit tests of the reference toolchain's building blocks: NPY/NPZ (and numpy's view of
// them), the seeded RNG and its Poisson statistics, the FFT, the spacing filter, settings
// validation and the ePIE loss.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { c64, f32, f64, i64, readNpz, writeNpz, type NdArray } from '../toolchain/npz.ts';
import { Rng } from '../toolchain/rng.ts';
import { fft2 } from '../toolchain/fft.ts';
import { geometryBound, greedyMinSpacingSelection, selectView, spacingThreshold } from '../toolchain/spacing.ts';
import { reconstruct, validateSettings, DEFAULT_SETTINGS } from '../toolchain/epie.ts';
import { rasterScan, simulateDiffraction, syntheticObject, syntheticProbe } from '../toolchain/physics.ts';

const dir = mkdtempSync(join(tmpdir(), 'toolchain-unit-'));
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

function sample(): Array<[string, NdArray | string]> {
  return [
    ['diffraction', f32([2, 2, 2], Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7.5]))],
    ['Y', c64([1, 2], Float32Array.from([1, -1, 0.5, 2]))],
    ['xcoords', f64([3], Float64Array.from([1.25, 2.5, -3]))],
    ['scan_index', i64([3], BigInt64Array.from([0n, 1n, 9n]))],
    ['_metadata', JSON.stringify({ data_transformations: [{ tool: 'x', operation: 'y', parameters: {} }], note: 'ünïcode' })],
  ];
}

test('NPZ round trip keeps dtypes, shapes, values and string metadata', () => {
  const p = join(dir, 'rt.npz');
  writeNpz(p, sample());
  const m = readNpz(p);
  assert.equal([...m.keys()], ['diffraction', 'Y', 'xcoords', 'scan_index', '_metadata']);
  const d = m.get('diffraction') as NdArray;
  assert.is(d.dtype, 'float32');
  assert.equal(d.shape, [2, 2, 2]);
  assert.is(d.data[7], 7.5);
  assert.is((m.get('Y') as NdArray).dtype, 'complex64');
  assert.equal(Array.from((m.get('scan_index') as NdArray).data as BigInt64Array), [0n, 1n, 9n]);
  assert.match(m.get('_metadata') as string, /ünïcode/);
});

test('NPZ writing is byte-identical for equal content (fixed zip timestamps)', () => {
  writeNpz(join(dir, 'a.npz'), sample());
  writeNpz(join(dir, 'b.npz'), sample());
  assert.ok(readFileSync(join(dir, 'a.npz')).equals(readFileSync(join(dir, 'b.npz'))));
});

test('numpy loads the NPZ with the right dtypes and values', () => {
  if (!hasNumpy) {
    console.log('  (skipped: python3 with numpy not available)');
    return;
  }
  const p = join(dir, 'np.npz');
  writeNpz(p, sample());
  const py = `
import numpy as np, json, sys
d = np.load(sys.argv[1])
assert d['diffraction'].dtype == np.float32 and d['diffraction'].shape == (2,2,2)
assert d['diffraction'][1,1,1] == 7.5
assert d['Y'].dtype == np.complex64 and d['Y'][0,1] == 0.5+2j
assert d['xcoords'].dtype == np.float64 and list(d['xcoords']) == [1.25, 2.5, -3.0]
assert d['scan_index'].dtype == np.int64 and list(d['scan_index']) == [0, 1, 9]
m = json.loads(str(d['_metadata']))
assert m['note'] == 'ünïcode' and m['data_transformations'][0]['tool'] == 'x'
print('ok')
`;
  const r = spawnSync('python3', ['-c', py, p], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
});

test('RNG: same seed, same stream; different seed, different stream', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const sa = Array.from({ length: 5 }, () => a.nextU32());
  assert.equal(sa, Array.from({ length: 5 }, () => b.nextU32()));
  assert.not.equal(sa, Array.from({ length: 5 }, () => c.nextU32()));
  const u = new Rng(1);
  for (let i = 0; i < 1000; i++) {
    const x = u.uniform();
    assert.ok(x >= 0 && x < 1);
  }
});

test('Poisson deviates have mean and variance lambda (small and large means)', () => {
  const rng = new Rng(7);
  for (const lam of [0.3, 4, 25, 1000]) {
    const n = 20000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const k = rng.poisson(lam);
      assert.ok(Number.isInteger(k) && k >= 0);
      s += k;
      s2 += k * k;
    }
    const mean = s / n;
    const variance = s2 / n - mean * mean;
    // 5 standard errors for the mean; 10% for the variance
    assert.ok(Math.abs(mean - lam) < 5 * Math.sqrt(lam / n), `lambda=${lam}: mean ${mean}`);
    assert.ok(Math.abs(variance / lam - 1) < 0.1, `lambda=${lam}: variance ${variance}`);
  }
});

test('FFT matches a direct DFT and the inverse restores the input', () => {
  const n = 8;
  const rng = new Rng(3);
  const re = Float64Array.from({ length: n * n }, () => rng.normal());
  const im = Float64Array.from({ length: n * n }, () => rng.normal());
  const r0 = Float64Array.from(re);
  const i0 = Float64Array.from(im);
  fft2(re, im, n);
  for (const [u, v] of [[0, 0], [1, 2], [5, 7]] as const) {
    let sr = 0;
    let si = 0;
    for (let y = 0; y < n; y++)
      for (let x = 0; x < n; x++) {
        const ang = (-2 * Math.PI * (u * y + v * x)) / n;
        sr += r0[y * n + x]! * Math.cos(ang) - i0[y * n + x]! * Math.sin(ang);
        si += r0[y * n + x]! * Math.sin(ang) + i0[y * n + x]! * Math.cos(ang);
      }
    assert.ok(Math.abs(sr - re[u * n + v]!) < 1e-9 && Math.abs(si - im[u * n + v]!) < 1e-9);
  }
  fft2(re, im, n, true);
  for (let k = 0; k < n * n; k++) assert.ok(Math.abs(re[k]! - r0[k]!) < 1e-12 && Math.abs(im[k]! - i0[k]!) < 1e-12);
});

test('simulated counts follow Poisson statistics at the dose', () => {
  // A flat object makes every pattern the same, so the total counts per pattern are
  // Poisson(dose): mean and variance both equal the dose.
  const n = 16;
  const positions = 300;
  const obj = { rows: 40, cols: 40, data: new Float64Array(2 * 40 * 40).map((_, i) => (i % 2 === 0 ? 1 : 0)) };
  const xs = new Float64Array(positions).fill(20);
  const ys = new Float64Array(positions).fill(20);
  for (const dose of [1000, 1e5]) {
    const sim = simulateDiffraction(obj, syntheticProbe(n), xs, ys, dose, new Rng(11));
    const totals = Array.from({ length: positions }, (_, j) => {
      let t = 0;
      for (let k = 0; k < n * n; k++) t += sim.diffraction[j * n * n + k]! ** 2;
      return Math.round(t);
    });
    const mean = totals.reduce((s, v) => s + v, 0) / positions;
    const variance = totals.reduce((s, v) => s + (v - mean) ** 2, 0) / (positions - 1);
    assert.ok(Math.abs(mean - dose) < 5 * Math.sqrt(dose / positions), `dose ${dose}: mean ${mean}`);
    assert.ok(Math.abs(variance / dose - 1) < 0.3, `dose ${dose}: variance ${variance}`);
    assert.ok(sim.diffraction.every((a) => Math.abs(a * a - Math.round(a * a)) < 1e-4 * Math.max(1, a * a)), 'amplitude must be sqrt(integer counts)');
  }
});

test('spacing thresholds, geometry bound and greedy selection follow the study', () => {
  assert.ok(Math.abs(spacingThreshold('dense', 64) - 19.2) < 1e-9);
  assert.ok(Math.abs(spacingThreshold('sparse', 64) - 51.2) < 1e-9);
  assert.ok(Math.abs(spacingThreshold('dense', 128) - 38.4) < 1e-9);
  // 10 x 10 grid, pitch 10: bbox 90 x 90
  const xs = Float64Array.from({ length: 100 }, (_, i) => (i % 10) * 10);
  const ys = Float64Array.from({ length: 100 }, (_, i) => Math.floor(i / 10) * 10);
  const g = geometryBound(xs, ys, 51.2);
  assert.ok(Math.abs(g.bound - 8100 / (Math.PI * 25.6 ** 2) / 100) < 1e-12);
  assert.ok(Math.abs(g.minAcceptance - 0.8 * g.bound) < 1e-12);
  const kept = greedyMinSpacingSelection(xs, ys, 25);
  for (const a of kept) for (const b of kept) if (a !== b) assert.ok(Math.hypot(xs[a]! - xs[b]!, ys[a]! - ys[b]!) >= 25);
  assert.equal(kept, [0, 3, 6, 9, 30, 33, 36, 39, 60, 63, 66, 69, 90, 93, 96, 99]);
  const sel = selectView(xs, ys, 'dense', 'train', 64);
  assert.is(sel.strategy, 'greedy');
  assert.is(sel.metrics.n_accepted + sel.metrics.n_rejected, 100);
  // a view nobody can satisfy: two clusters of points
  const cx = Float64Array.from({ length: 40 }, (_, i) => (i < 20 ? 0 : 500) + (i % 5));
  const cy = Float64Array.from({ length: 40 }, (_, i) => Math.floor((i % 20) / 5) + (i < 20 ? 0 : 500));
  assert.throws(() => selectView(cx, cy, 'sparse', 'test', 64), /Insufficient positions meet spacing threshold for sparse view in test split/);
});

test('training settings: epochs required, integer >= 1; bad values are ValueErrors', () => {
  assert.is(validateSettings({ epochs: 3 }).epochs, 3);
  assert.is(validateSettings({ epochs: 3, _comment: 'ignored' }).step_size, DEFAULT_SETTINGS.step_size);
  for (const bad of [{ epochs: 0 }, { epochs: '10' }, { epochs: 2.5 }, {}, { epochs: 3, step_size: -1 }, { epochs: 3, neighbor_count: 3 }, { epochs: 3, typo: 1 }, [1]]) {
    try {
      validateSettings(bad);
      assert.unreachable(`accepted ${JSON.stringify(bad)}`);
    } catch (e) {
      assert.is((e as Error).name, 'ValueError', JSON.stringify(bad));
    }
  }
});

test('ePIE training loss falls for gridsize 1 and 2', () => {
  const n = 16;
  const rng = new Rng(5);
  const scan = rasterScan(96, n, rng);
  const obj = syntheticObject(scan.objectRows, scan.objectCols, rng);
  const probe = syntheticProbe(n);
  const sim = simulateDiffraction(obj, probe, scan.xcoords, scan.ycoords, 1e4, new Rng(6));
  for (const gs of [1, 2] as const) {
    const out = reconstruct(
      {
        n: scan.xcoords.length,
        N: n,
        diffraction: sim.diffraction,
        xcoords: scan.xcoords,
        ycoords: scan.ycoords,
        probe: Float32Array.from(probe.data),
        objectRows: obj.rows,
        objectCols: obj.cols,
      },
      gs,
      { ...DEFAULT_SETTINGS, epochs: 8 },
      () => {},
    );
    const h = out.history;
    assert.is(h.length, 8);
    assert.ok(h[h.length - 1]! < 0.7 * h[0]!, `gs${gs}: loss ${h[0]} -> ${h[h.length - 1]}`);
  }
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
