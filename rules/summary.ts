// Step E5: analysis/summary.md, written even when upstream targets fail (runOnFailure): it reads
// the outcomes of this build and whatever records and hub files exist, and renders them.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { checkHubBundles } from './archive.ts';
import { hubManifest, hubSkipSummary, summaryFile, type Layout } from './layout.ts';
import { uniteSkips, type BundleCheck, type JobRecord, type SkipEvent } from './manifest.ts';
import type { ActionContext, HubSpec } from './spec.ts';
import { renderSummary, type SummaryParams } from './summary-render.ts';

export interface SummaryActionParams extends SummaryParams {
  manifest: string;
  skipSummary: string;
  bundles: Array<{ path: string; dose: number; view: string; gridsize: number }>;
}

async function readJson<T>(root: string, file: string): Promise<T | null> {
  try {
    return JSON.parse(await readFile(path.join(root, file), 'utf8')) as T;
  } catch {
    return null;
  }
}

export async function writeSummary(ctx: ActionContext): Promise<void> {
  const p = ctx.params as SummaryActionParams;
  const outcomes = new Map(ctx.outcomes().map((o) => [o.name, o]));
  const records = new Map<string, JobRecord | null>();
  for (const j of p.jobs) records.set(j.record, await readJson<JobRecord>(ctx.root, j.record));
  // Bundle checks only when the archive steps succeeded this build: stale hub files from an
  // earlier run must not be reported as this hub's bundles.
  const archived = p.bundles.every((b) => ['built', 'fresh'].includes(outcomes.get(b.path)?.status ?? ''));
  let checks: BundleCheck[] | null = null;
  if (archived) {
    try {
      checks = await checkHubBundles({ ...ctx, params: { manifest: p.manifest, bundles: p.bundles } });
    } catch {
      checks = null;
    }
  }
  const skipFile = await readJson<{ skipped_views?: SkipEvent[] }>(ctx.root, p.skipSummary);
  const skips = uniteSkips([
    ...(skipFile?.skipped_views ?? []),
    ...[...records.values()].flatMap((r) => [...(r?.call?.skipped_views ?? []), ...(r?.skip_summary?.skipped_views ?? [])]),
  ]);
  const text = renderSummary(p, { outcomes, records, checks, skips });
  await ctx.writeFile(ctx.outputs[0]!, text);
  ctx.log(text.split('\n').find((l) => l.startsWith('Status:')) ?? '');
}

export function summary(
  l: Layout,
  p: Omit<SummaryParams, 'title' | 'initiative' | 'timestamp' | 'hub' | 'toolchain' | 'toolchainName' | 'attempt' | 'doses' | 'views'>,
  bundles: SummaryActionParams['bundles'],
  deps: string[],
  inputs: string[],
): HubSpec {
  const params: SummaryActionParams = {
    title: 'Phase E training bundle real runs (execution)',
    initiative: l.config.initiative,
    timestamp: l.config.hub.timestamp,
    hub: l.hub,
    toolchain: l.tool.banner,
    toolchainName: l.tool.name,
    attempt: l.config.hub.attempt ?? null,
    doses: l.config.doses,
    views: l.config.views,
    ...p,
    manifest: hubManifest(l),
    skipSummary: hubSkipSummary(l),
    bundles,
  };
  return {
    name: 'summary',
    description: 'E5 analysis/summary.md: status, commands, evidence, bundles, skips, pending work, ledger line',
    deps,
    inputs: [...inputs, 'rules/summary.ts', 'rules/summary-render.ts', 'rules/manifest.ts'],
    outputs: [summaryFile(l)],
    params,
    run: writeSummary,
    runOnFailure: true,
  };
}
