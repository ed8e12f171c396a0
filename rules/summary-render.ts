// analysis/summary.md as a pure function of what the build knows: the static hub description
// (params), the targets' outcomes, the job records, the bundle checks and the skip events.
// Nothing here reads the clock: a build with nothing to do must leave the summary byte-identical.
import type { BundleCheck, JobRecord, SkipEvent } from './manifest.ts';
import type { TargetOutcome } from './spec.ts';

export interface SummaryParams {
  title: string;
  initiative: string;
  timestamp: string;
  hub: string;
  toolchain: string;
  toolchainName: 'sim' | 'ptychopinn';
  attempt: number | null;
  doses: number[];
  views: string[];
  pending: Array<{ view: string; reason: string }>;
  evidence: Array<{ target: string; title: string; log: string }>;
  datasets: Array<{ target: string; phase: 'C' | 'D'; dose: number; log: string }>;
  jobs: Array<{ target: string; dose: number; view: string; gridsize: number; record: string; bundle: string; log: string }>;
  verify: string;
  /** Targets whose outputs are listed as artifacts (hub files and datasets). */
  artifacts: Array<{ path: string; target: string }>;
  mermaid: string;
}

export interface SummaryFacts {
  outcomes: Map<string, TargetOutcome>;
  records: Map<string, JobRecord | null>;
  /** null when the hub bundles or manifest are not there (their targets did not succeed). */
  checks: BundleCheck[] | null;
  skips: SkipEvent[];
}

const OK = new Set(['built', 'fresh', 'kept']);
const ok = (o?: TargetOutcome) => !!o && OK.has(o.status);
const rel = (p: string, hub: string) => (p.startsWith(`${hub}/`) ? p.slice(hub.length + 1) : p);
const cell = (s: unknown) => String(s ?? '').replace(/\|/g, '\\|').replace(/\n/g, ' ');
const secs = (ms?: number) => (typeof ms === 'number' ? `${(ms / 1000).toFixed(1)} s` : '—');
const firstLine = (s?: string) => (s ?? '').split('\n').find((x) => x.trim()) ?? '';

function stateOf(o?: TargetOutcome): string {
  if (!o) return 'not in graph';
  switch (o.status) {
    case 'built':
      return o.restoredFrom ? `restored from the artifact cache (build ${o.restoredFrom})` : 'ran';
    case 'fresh':
      return 'up to date';
    case 'kept':
      return 'kept (inputs changed, outputs preserved)';
    case 'failed':
      return `FAILED${o.exitCode != null ? ` (exit ${o.exitCode})` : ''}`;
    case 'blocked':
      return `blocked by ${(o.blockedBy ?? []).join(', ') || 'a failed dependency'}`;
    default:
      return o.status;
  }
}

/** Where the engine kept the last good outputs of a failed target, if it did. */
function restoreHint(o: TargetOutcome): string {
  return o.preserved
    ? `; its last good outputs (build ${o.preserved.buildId}) are kept: \`npx tsx build.ts --restore ${o.name}\` brings them back`
    : '';
}

/** Status and the reasons for it, most upstream first. */
export function verdict(p: SummaryParams, f: SummaryFacts): { status: 'COMPLETE' | 'BLOCKED'; reasons: string[] } {
  const reasons: string[] = [];
  const o = (t: string) => f.outcomes.get(t);
  for (const e of p.evidence) {
    const x = o(e.target);
    if (!ok(x)) reasons.push(`test evidence not green: ${rel(e.log, p.hub)} (${stateOf(x)}); training does not run until it is`);
  }
  for (const d of p.datasets) {
    const x = o(d.target);
    if (x?.status === 'failed') reasons.push(`Phase ${d.phase} regeneration failed for dose ${d.dose} (${stateOf(x)}): stderr in ${rel(d.log, p.hub)}`);
  }
  for (const j of p.jobs) {
    const x = o(j.target);
    const r = f.records.get(j.record);
    if (x?.status === 'failed') {
      const why = r && r.status !== 'success' ? `${r.status}: ${firstLine(r.error)}` : firstLine(x.error) || stateOf(x);
      reasons.push(`training ${j.view} gs${j.gridsize} dose ${j.dose} failed (${why}); traceback in ${rel(j.log, p.hub)}${restoreHint(x)}`);
    }
  }
  for (const c of f.checks ?? []) {
    if (c.verdict !== 'MATCH')
      reasons.push(
        `${c.verdict} for ${c.file} (${c.view} gs${c.gridsize} dose ${c.dose}): manifest sha256 ${c.manifestSha256 ?? 'none'} size ${c.manifestSize ?? 'none'}, ` +
          `hub copy sha256 ${c.sha256} size ${c.size}; Phase G stays blocked`,
      );
  }
  const covered = new Set([...p.evidence, ...p.datasets, ...p.jobs].map((x) => x.target));
  for (const [name, x] of f.outcomes) {
    if (x.status === 'failed' && !covered.has(name) && name !== p.verify && !(f.checks ?? []).some((c) => c.verdict !== 'MATCH'))
      reasons.push(`${name} failed: ${firstLine(x.error) || stateOf(x)}`);
  }
  if (!reasons.length && !ok(o(p.verify))) reasons.push(`bundle verification did not pass (${stateOf(o(p.verify))})`);
  return reasons.length ? { status: 'BLOCKED', reasons } : { status: 'COMPLETE', reasons: [] };
}

export function renderSummary(p: SummaryParams, f: SummaryFacts): string {
  const o = (t: string) => f.outcomes.get(t);
  const { status, reasons } = verdict(p, f);
  const nJobs = p.jobs.length;
  const reason =
    status === 'COMPLETE'
      ? `E1 evidence green (${p.evidence.length}/${p.evidence.length}); ${nJobs} bundle${nJobs === 1 ? '' : 's'} trained, archived and verified against the training manifest (sha256 + size). Phase G may proceed.`
      : reasons[0]!;
  const L: string[] = [];
  L.push(`# ${p.title} — ${p.timestamp}`, '');
  L.push(`Status: ${status}`, `Reason: ${reason}`, '');
  for (const r of reasons.slice(1)) L.push(`- also: ${r}`);
  if (reasons.length > 1) L.push('');
  L.push(`- Initiative: ${p.initiative}`);
  L.push(`- Hub: \`${p.hub}/\``);
  L.push(`- Toolchain: ${p.toolchain}`);
  if (p.toolchainName === 'sim')
    L.push('  - These artifacts come from the reference simulator: they exercise the hub, they are not PtychoPINN results.');
  L.push(`- Doses: ${p.doses.join(', ')}; views: ${p.views.join(', ')}`, '');

  L.push('## Commands', '');
  L.push('| target | command | state | exit | duration | log | build |', '| --- | --- | --- | --- | --- | --- | --- |');
  const withCommand = [...f.outcomes.values()].filter((x) => x.command && !x.command.startsWith('action '));
  for (const x of withCommand)
    L.push(
      `| ${cell(rel(x.name, p.hub))} | \`${cell(x.command)}\` | ${cell(stateOf(x))} | ${x.exitCode ?? '—'} | ${secs(x.durationMs)} | ${cell(x.log ? rel(x.log, p.hub) : '—')} | ${x.buildId ?? '—'} |`,
    );
  L.push('');

  L.push('## Test evidence (E1)', '');
  L.push('| selector | result | log |', '| --- | --- | --- |');
  for (const e of p.evidence) {
    const x = o(e.target);
    const result = ok(x) ? 'PASS' : x?.status === 'failed' ? `FAIL (exit ${x.exitCode ?? '?'})` : stateOf(x);
    L.push(`| ${cell(e.title)} | ${result} | ${rel(e.log, p.hub)} |`);
  }
  L.push('');

  L.push('## Datasets (E2)', '');
  for (const d of p.datasets) {
    const x = o(d.target);
    const what =
      x?.status === 'built'
        ? `regenerated (log ${rel(d.log, p.hub)})`
        : x?.status === 'fresh'
          ? 'present, reused'
          : x?.status === 'kept'
            ? `present, reused although its settings changed (kept; regenerate on purpose with \`-B ${d.target}\`)`
            : stateOf(x);
    L.push(`- Phase ${d.phase} dose ${d.dose} (\`${d.target}\`): ${what}`);
  }
  L.push('');

  L.push('## Training (E3)', '');
  L.push('| view | gridsize | dose | status | final loss | epochs | transcript | error |', '| --- | --- | --- | --- | --- | --- | --- | --- |');
  for (const j of p.jobs) {
    const r = f.records.get(j.record);
    const res = r?.job?.result;
    const st = r ? r.status : stateOf(o(j.target));
    L.push(
      `| ${j.view} | ${j.gridsize} | ${j.dose} | ${cell(st)} | ${res?.final_loss ?? '—'} | ${res?.epochs_completed ?? '—'} | ${rel(j.log, p.hub)} | ${cell(firstLine(r?.error)) || '—'} |`,
    );
  }
  L.push('');

  L.push('## Bundles (E4)', '');
  if (f.checks) {
    L.push('| view | gridsize | dose | path | sha256 | size (bytes) | manifest match |', '| --- | --- | --- | --- | --- | --- | --- |');
    for (const c of f.checks) {
      const match =
        c.verdict === 'MATCH'
          ? 'MATCH'
          : `${c.verdict}: manifest sha256 ${c.manifestSha256 ?? 'none'}, size ${c.manifestSize ?? 'none'}`;
      L.push(`| ${c.view} | ${c.gridsize} | ${c.dose} | data/${c.file} | ${c.sha256} | ${c.size} | ${cell(match)} |`);
    }
    L.push('', 'Checksums: `analysis/bundle_checksums.txt`; manifest: `data/training_manifest.json` (pretty: `analysis/training_manifest_pretty.json`).');
  } else {
    L.push('Not archived in this hub: the training or archive steps did not succeed (see Status).');
  }
  L.push('');

  L.push('## Skip events', '');
  if (f.skips.length) for (const s of f.skips) L.push(`- ${s.view} dose ${s.dose}: ${s.reason}`);
  else L.push('- none');
  L.push('');

  L.push('## Artifacts and the build that produced them', '');
  L.push('| artifact | target | build |', '| --- | --- | --- |');
  for (const a of p.artifacts) {
    const x = o(a.target);
    const produced = x && (ok(x) || x.status === 'failed') && x.buildId ? x.buildId : `not produced (${stateOf(x)})`;
    L.push(`| ${rel(a.path, p.hub)} | ${cell(rel(a.target, p.hub))} | ${produced} |`);
  }
  L.push('');

  L.push('## Pending work', '');
  for (const v of p.pending) L.push(`- ${v.view} view: ${v.reason}.`);
  if (status === 'BLOCKED') L.push('- Resolve the blocker above, then rebuild: `npx tsx build.ts hub` reruns only what it affects.');
  if (p.toolchainName === 'sim') L.push('- Real evidence: configure `ptychopinn.root` in hub.config.json and rebuild against the PtychoPINN checkout.');
  L.push('- Record this attempt in `docs/fix_plan.md` (ledger line below).', '');

  L.push('## Graph', '', '```mermaid', p.mermaid, '```', '');

  L.push('## Ledger line for docs/fix_plan.md', '', '```');
  const attempt = p.attempt != null ? `Attempt #${p.attempt}: ` : '';
  L.push(
    `- ${attempt}${p.initiative} Phase E6 bundle evidence (${p.timestamp}) — hub \`${p.hub}/\` — Status: ${status}` +
      ` — ${status === 'COMPLETE' ? `${nJobs} bundles SHA256-verified` : reason} — toolchain: ${p.toolchainName}`,
  );
  L.push('```', '');
  return L.join('\n');
}
