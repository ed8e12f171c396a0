// Runs right after one training call, in the same target (`train ... && capture-job ...`):
// the training tool rewrites <A>/training_manifest.json with only its own call's jobs, so this
// job's entry must be saved before any other training call runs (training targets share a pool).
// Only files written since --since-ns count. Writes the per-job record, then exits 1 unless the
// job succeeded: the tool exits 0 even when training failed (status "failed"), and the hub must
// not archive such a run.
//
// usage: capture-job.ts --artifact-root A --dose 1000 --view dense --gridsize 2 --out record.json
//        [--train-log A/dose_1000/dense/gs2/train.log] [--since-ns <start of the call, ns>]
import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { makeRecord, type JobRecord, type TrainingManifest } from '../manifest.ts';

const { values } = parseArgs({
  options: {
    'artifact-root': { type: 'string' },
    dose: { type: 'string' },
    view: { type: 'string' },
    gridsize: { type: 'string' },
    out: { type: 'string' },
    'train-log': { type: 'string' },
    'since-ns': { type: 'string' },
  },
});
const A = values['artifact-root'];
const out = values.out;
if (!A || !values.dose || !values.view || !values.gridsize || !out) {
  console.error('capture-job: --artifact-root, --dose, --view, --gridsize and --out are required');
  process.exit(2);
}

// Files older than the call were not written by it (compared in whole seconds: some file
// systems keep coarse modification times).
const sinceMs = values['since-ns'] ? Math.floor(Number(values['since-ns']) / 1e9) * 1000 : -Infinity;
const readJson = <T>(file: string): T | null =>
  existsSync(file) && statSync(file).mtimeMs >= sinceMs ? (JSON.parse(readFileSync(file, 'utf8')) as T) : null;
const manifest = readJson<TrainingManifest>(path.join(A, 'training_manifest.json'));
const skipSummary = readJson<JobRecord['skip_summary']>(path.join(A, 'skip_summary.json'));
const record = makeRecord(manifest, skipSummary, Number(values.dose), values.view, Number(values.gridsize));

mkdirSync(path.dirname(out), { recursive: true });
writeFileSync(`${out}.tmp`, JSON.stringify(record, null, 2) + '\n');
renameSync(`${out}.tmp`, out);

const label = `${values.view} gs${values.gridsize} dose ${values.dose}`;
if (record.status === 'success') {
  const r = record.job?.result;
  console.log(`capture-job: ${label}: success, bundle ${r?.bundle_path} sha256 ${r?.bundle_sha256} size ${r?.bundle_size_bytes}`);
  console.log(`capture-job: record ${out}`);
  process.exit(0);
}
console.error(`capture-job: ${label}: ${record.status}: ${record.error ?? ''}`);
// Put the tool's traceback next to the CLI transcript (this output goes to the hub's cli/ log).
const trainLog = [values['train-log'], record.job?.log_path].find((f): f is string => !!f && existsSync(f));
if (trainLog) {
  console.error(`capture-job: ${trainLog}:`);
  console.error(readFileSync(trainLog, 'utf8').trimEnd());
}
process.exit(1);
