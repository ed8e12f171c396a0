// Step E4: archive into the hub. Bundles are copied from the training artifact root, the
// per-job records are merged into the hub's manifest and skip summary, and the hub copies are
// checked against the manifest. Actions read everything they vary on from ctx (their source
// text is their fingerprint), never from closure variables; the helper modules they call are
// declared as inputs so that editing a helper reruns them.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  checksumsFile, hubBundle, hubManifest, hubSkipSummary, names, prettyManifest, recordPath,
  verificationFile, type Layout,
} from './layout.ts';
import { checkBundle, mergeRecords, renderChecksums, sortedJson, type BundleCheck, type JobRecord, type TrainingManifest } from './manifest.ts';
import type { ActionContext, HubSpec } from './spec.ts';
import { artifactDir, gridsizeOf, type View } from './study.ts';

/** Copy inputs[0] to outputs[0] atomically. */
export async function copyBundle(ctx: ActionContext): Promise<void> {
  await ctx.writeFile(ctx.outputs[0]!, await readFile(path.join(ctx.root, ctx.inputs[0]!)));
}

export function copy(l: Layout, dose: number, view: View, trainingName: string): HubSpec {
  const src = `${artifactDir(l.config.roots.phaseE, dose, view)}/wts.h5.zip`;
  const dst = hubBundle(l, dose, view);
  return {
    description: `E4 hub copy of the ${view} gs${gridsizeOf(view)} dose ${dose} bundle`,
    inputs: [src],
    deps: [trainingName],
    outputs: [dst],
    run: copyBundle,
  };
}

interface MergeParams {
  records: string[];
}

/** Merge per-job records into the hub's training_manifest.json and skip_summary.json. */
export async function mergeManifest(ctx: ActionContext): Promise<void> {
  const p = ctx.params as MergeParams;
  const records = await Promise.all(
    p.records.map(async (f) => JSON.parse(await readFile(path.join(ctx.root, f), 'utf8')) as JobRecord),
  );
  const { manifest, skipSummary } = mergeRecords(records);
  await ctx.writeFile(ctx.outputs[0]!, JSON.stringify(manifest, null, 2) + '\n');
  await ctx.writeFile(ctx.outputs[1]!, JSON.stringify(skipSummary, null, 2) + '\n');
  ctx.log(`merged ${records.length} job records: ${manifest.jobs?.length ?? 0} jobs, ${skipSummary.skipped_count} skip events`);
}

export function merge(l: Layout, jobs: Array<{ dose: number; view: View }>): HubSpec {
  const records = jobs.map((j) => recordPath(l, j.dose, j.view));
  return {
    name: names.merge,
    description: 'E4 data/training_manifest.json + data/skip_summary.json merged from every job record',
    inputs: [...records, 'rules/manifest.ts'],
    outputs: [hubManifest(l), hubSkipSummary(l)],
    params: { records } satisfies MergeParams,
    run: mergeManifest,
  };
}

/** analysis/training_manifest_pretty.json: the hub manifest with sorted keys. */
export async function prettyPrint(ctx: ActionContext): Promise<void> {
  const m = JSON.parse(await readFile(path.join(ctx.root, ctx.inputs[0]!), 'utf8'));
  await ctx.writeFile(ctx.outputs[0]!, sortedJson(m));
}

export function pretty(l: Layout): HubSpec {
  return {
    description: 'E4 analysis/training_manifest_pretty.json (sorted keys)',
    inputs: [hubManifest(l), 'rules/manifest.ts'],
    outputs: [prettyManifest(l)],
    run: prettyPrint,
  };
}

interface BundleParams {
  manifest: string;
  bundles: Array<{ path: string; dose: number; view: string; gridsize: number }>;
}

/** sha256 and size of each hub bundle, checked against the hub manifest. */
export async function checkHubBundles(ctx: ActionContext): Promise<BundleCheck[]> {
  const p = ctx.params as BundleParams;
  const manifest = JSON.parse(await readFile(path.join(ctx.root, p.manifest), 'utf8')) as TrainingManifest;
  return Promise.all(
    p.bundles.map(async (b) => {
      const bytes = await readFile(path.join(ctx.root, b.path));
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      return checkBundle(manifest, { file: path.basename(b.path), dose: b.dose, view: b.view, gridsize: b.gridsize, sha256, size: bytes.length });
    }),
  );
}

export async function writeChecksums(ctx: ActionContext): Promise<void> {
  const checks = await checkHubBundles(ctx);
  await ctx.writeFile(ctx.outputs[0]!, renderChecksums(checks, 'data/training_manifest.json'));
}

/** Fails (throws) on any mismatch, after writing the verification report. */
export async function verifyBundles(ctx: ActionContext): Promise<void> {
  const checks = await checkHubBundles(ctx);
  const bad = checks.filter((c) => c.verdict !== 'MATCH');
  await ctx.writeFile(
    ctx.outputs[0]!,
    JSON.stringify({ all_valid: bad.length === 0, n_checks: checks.length, n_invalid: bad.length, checks }, null, 2) + '\n',
  );
  for (const c of checks) ctx.log(`${c.file}: ${c.verdict}`);
  if (bad.length) {
    throw new Error(
      bad
        .map((c) => `${c.verdict} for ${c.view} gs${c.gridsize} dose ${c.dose}: manifest sha256=${c.manifestSha256} size=${c.manifestSize}, computed sha256=${c.sha256} size=${c.size}`)
        .join('; '),
    );
  }
}

function bundleParams(l: Layout, jobs: Array<{ dose: number; view: View }>): BundleParams {
  return {
    manifest: hubManifest(l),
    bundles: jobs.map((j) => ({ path: hubBundle(l, j.dose, j.view), dose: j.dose, view: j.view, gridsize: gridsizeOf(j.view) })),
  };
}

export function checksums(l: Layout, jobs: Array<{ dose: number; view: View }>): HubSpec {
  const params = bundleParams(l, jobs);
  return {
    description: 'E4 analysis/bundle_checksums.txt: sha256, size and manifest verdict of each hub bundle',
    inputs: [params.manifest, ...params.bundles.map((b) => b.path), 'rules/manifest.ts', 'rules/archive.ts'],
    outputs: [checksumsFile(l)],
    params,
    run: writeChecksums,
  };
}

export function verify(l: Layout, jobs: Array<{ dose: number; view: View }>): HubSpec {
  const params = bundleParams(l, jobs);
  return {
    name: names.verify,
    description: 'fails on any bundle whose sha256/size differs from the training manifest',
    inputs: [params.manifest, ...params.bundles.map((b) => b.path), 'rules/manifest.ts', 'rules/archive.ts'],
    deps: [checksumsFile(l)],
    outputs: [verificationFile(l)],
    params,
    run: verifyBundles,
  };
}
