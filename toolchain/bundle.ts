// wts.h5.zip, the model bundle, laid out like the study's ModelManager archives (root
// manifest + one folder per model: autoencoder/, diffraction_to_obj/), but with JSON and
// NPY instead of dill pickles and Keras payloads. Entries are STOREd in a fixed order with
// a fixed timestamp, so equal inputs give equal bytes (and equal SHA-256).
import { c64, encodeNpy } from './npz.ts';
import { readZip, writeZip, type ZipEntry } from './zip.ts';

export const BUNDLE_NAME = 'wts.h5.zip';
export const MODELS = ['autoencoder', 'diffraction_to_obj'] as const;

export interface BundleContent {
  object: { rows: number; cols: number; data: Float64Array };
  probe: { n: number; data: Float64Array };
  params: Record<string, unknown>;
}

function json(v: unknown): Buffer {
  return Buffer.from(JSON.stringify(v, null, 2) + '\n');
}

/** Write the bundle to `path`. */
export function writeBundle(path: string, b: BundleContent): void {
  const obj = encodeNpy(c64([b.object.rows, b.object.cols], Float32Array.from(b.object.data)));
  const probe = encodeNpy(c64([b.probe.n, b.probe.n], Float32Array.from(b.probe.data)));
  const entries: ZipEntry[] = [
    {
      name: 'manifest.json',
      data: json({ models: [...MODELS], version: '1.0', backend: 'reference', format: 'hubmake reference toolchain: JSON + NPY (no pickles)' }),
    },
  ];
  for (const model of MODELS) {
    // autoencoder = full forward model state; diffraction_to_obj = what inference needs.
    // In this toolchain both hold the reconstructed object and probe.
    entries.push(
      { name: `${model}/params.json`, data: json({ ...b.params, model_type: model, _version: '1.0' }) },
      { name: `${model}/weights/object.npy`, data: obj },
      { name: `${model}/weights/probe.npy`, data: probe },
    );
  }
  writeZip(path, entries); // atomic: temp name + rename
}

/** List the entries of a bundle and parse its manifest (used by tests and the selftest). */
export function readBundle(path: string): { names: string[]; manifest: { models: string[]; version: string } } {
  const z = readZip(path);
  const m = z.get('manifest.json');
  if (!m) throw new Error(`${path}: bundle has no manifest.json`);
  return { names: [...z.keys()], manifest: JSON.parse(m.toString('utf8')) as { models: string[]; version: string } };
}
