// Pure functions over the training tool's JSON: picking one job out of a manifest, merging
// per-job records into the hub's manifest and skip summary, and checking bundles against it.
// Schemas: /work/shared/reference/ptychopinn-study.md §1.4 and §2.

export interface SkipEvent {
  dose: number;
  view: string;
  reason: string;
}

export interface JobResult {
  status: string;
  error?: string;
  final_loss?: number;
  epochs_completed?: number;
  bundle_path?: string | null;
  bundle_sha256?: string | null;
  bundle_size_bytes?: number | null;
  [key: string]: unknown;
}

export interface ManifestJob {
  dose: number;
  view: string;
  gridsize: number;
  artifact_dir?: string;
  log_path?: string;
  result?: JobResult;
  [key: string]: unknown;
}

export interface TrainingManifest {
  timestamp?: string;
  phase_c_root?: string;
  phase_d_root?: string;
  artifact_root?: string;
  filters?: unknown;
  dry_run?: boolean;
  jobs?: ManifestJob[];
  skipped_views?: SkipEvent[];
  skipped_count?: number;
  skip_summary_path?: string;
  merged_from?: unknown;
}

/** What rules/bin/capture-job.ts writes after one training call. */
export interface JobRecord {
  dose: number;
  view: string;
  gridsize: number;
  /** success | failed | skipped | missing (the tool wrote no entry for the job). */
  status: string;
  error?: string;
  job: ManifestJob | null;
  /** The call's manifest without its jobs (timestamp, roots, filters...). */
  call: Omit<TrainingManifest, 'jobs'> | null;
  skip_summary: { timestamp?: string; skipped_views?: SkipEvent[] } | null;
}

const VIEW_ORDER = ['baseline', 'dense', 'sparse'];
const byJob = (a: { dose: number; view: string; gridsize: number }, b: typeof a) =>
  a.dose - b.dose || VIEW_ORDER.indexOf(a.view) - VIEW_ORDER.indexOf(b.view) || a.gridsize - b.gridsize;

/** The manifest entry of one (dose, view, gridsize); doses compare as floats (1000 == 1000.0). */
export function selectJob(m: TrainingManifest, dose: number, view: string, gridsize: number): ManifestJob | undefined {
  return (m.jobs ?? []).find((j) => Number(j.dose) === dose && j.view === view && Number(j.gridsize) === gridsize);
}

/** Build one job's record from the call's manifest and skip summary as read from disk. */
export function makeRecord(
  manifest: TrainingManifest | null,
  skipSummary: JobRecord['skip_summary'],
  dose: number,
  view: string,
  gridsize: number,
): JobRecord {
  const job = manifest ? selectJob(manifest, dose, view, gridsize) ?? null : null;
  let call: JobRecord['call'] = null;
  if (manifest) {
    const { jobs: _jobs, ...rest } = manifest;
    call = rest;
  }
  const skipped = [...(manifest?.skipped_views ?? []), ...(skipSummary?.skipped_views ?? [])].find(
    (s) => Number(s.dose) === dose && s.view === view,
  );
  let status: string;
  let error: string | undefined;
  if (job) {
    status = job.result?.status ?? 'missing';
    error = job.result?.error;
    if (status !== 'success' && !error) error = `training result status ${JSON.stringify(status)}`;
  } else if (skipped) {
    status = 'skipped';
    error = `the training CLI skipped the job: ${skipped.reason}`;
  } else {
    status = 'missing';
    error = manifest
      ? 'the training manifest has no entry for this job'
      : 'the training CLI wrote no training_manifest.json (no job matched the filters?)';
  }
  return { dose, view, gridsize, status, ...(error ? { error } : {}), job, call, skip_summary: skipSummary };
}

/** Union of skip events, one per (dose, view), first reason kept, in job order. */
export function uniteSkips(events: SkipEvent[]): SkipEvent[] {
  const seen = new Map<string, SkipEvent>();
  for (const e of events) {
    const key = `${Number(e.dose)}|${e.view}`;
    if (!seen.has(key)) seen.set(key, { dose: Number(e.dose), view: e.view, reason: e.reason });
  }
  return [...seen.values()].sort((a, b) => a.dose - b.dose || VIEW_ORDER.indexOf(a.view) - VIEW_ORDER.indexOf(b.view));
}

const latest = (xs: Array<string | undefined>) => xs.filter((x): x is string => !!x).sort().at(-1) ?? null;

/**
 * The hub's training_manifest.json and skip_summary.json: the tool's schema, holding every job
 * of every call (the tool's own file keeps only the last call's jobs) and the union of skips.
 * Deterministic in its input: no clock, records sorted by job.
 */
export function mergeRecords(records: JobRecord[]): { manifest: TrainingManifest; skipSummary: Record<string, unknown> } {
  const sorted = [...records].sort(byJob);
  const calls = sorted.map((r) => r.call).filter((c): c is NonNullable<JobRecord['call']> => !!c);
  // A call skips every view whose Phase D data is missing at that moment, including views another
  // call trains later (baseline may run before Phase D is made). A view with a job of its own is
  // not skipped in the hub's account, whatever an earlier call saw.
  const attempted = new Set(sorted.filter((r) => r.job).map((r) => `${Number(r.dose)}|${r.view}`));
  const skips = uniteSkips(
    sorted.flatMap((r) => [...(r.call?.skipped_views ?? []), ...(r.skip_summary?.skipped_views ?? [])]),
  ).filter((e) => !attempted.has(`${Number(e.dose)}|${e.view}`));
  const first = calls[0] ?? {};
  const manifest: TrainingManifest = {
    timestamp: latest(calls.map((c) => c.timestamp)) ?? undefined,
    phase_c_root: first.phase_c_root,
    phase_d_root: first.phase_d_root,
    artifact_root: first.artifact_root,
    filters: { dose: null, view: null, gridsize: null },
    dry_run: false,
    jobs: sorted.map((r) => r.job).filter((j): j is ManifestJob => !!j),
    skipped_views: skips,
    skipped_count: skips.length,
    skip_summary_path: 'skip_summary.json',
    merged_from: sorted.map((r) => ({
      dose: r.dose,
      view: r.view,
      gridsize: r.gridsize,
      timestamp: r.call?.timestamp ?? null,
      filters: r.call?.filters ?? null,
    })),
  };
  const skipSummary = {
    timestamp: latest(sorted.map((r) => r.skip_summary?.timestamp ?? r.call?.timestamp)),
    skipped_views: skips,
    skipped_count: skips.length,
  };
  return { manifest, skipSummary };
}

/** JSON with keys sorted at every level (the archive script's pretty print). */
export function sortedJson(value: unknown): string {
  const sort = (v: unknown): unknown =>
    Array.isArray(v)
      ? v.map(sort)
      : v && typeof v === 'object'
        ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, sort((v as Record<string, unknown>)[k])]))
        : v;
  return JSON.stringify(sort(value), null, 2) + '\n';
}

export interface BundleCheck {
  /** File name in the hub's data/ directory. */
  file: string;
  dose: number;
  view: string;
  gridsize: number;
  sha256: string;
  size: number;
  manifestSha256: string | null;
  manifestSize: number | null;
  /** MATCH, or what differs. */
  verdict: 'MATCH' | 'SHA MISMATCH' | 'SIZE MISMATCH' | 'SHA AND SIZE MISMATCH' | 'NO MANIFEST ENTRY';
}

export function checkBundle(
  m: TrainingManifest,
  b: { file: string; dose: number; view: string; gridsize: number; sha256: string; size: number },
): BundleCheck {
  const r = selectJob(m, b.dose, b.view, b.gridsize)?.result;
  const manifestSha256 = typeof r?.bundle_sha256 === 'string' ? r.bundle_sha256 : null;
  const manifestSize = typeof r?.bundle_size_bytes === 'number' ? r.bundle_size_bytes : null;
  const shaOk = manifestSha256 === b.sha256;
  const sizeOk = manifestSize === b.size;
  const verdict =
    manifestSha256 === null || manifestSize === null
      ? 'NO MANIFEST ENTRY'
      : shaOk && sizeOk
        ? 'MATCH'
        : !shaOk && !sizeOk
          ? 'SHA AND SIZE MISMATCH'
          : !shaOk
            ? 'SHA MISMATCH'
            : 'SIZE MISMATCH';
  return { ...b, manifestSha256, manifestSize, verdict };
}

/** `<sha256>  <file>  <size_bytes>` per bundle, then one `#` verdict line per bundle. */
export function renderChecksums(checks: BundleCheck[], manifestName: string): string {
  const lines = checks.map((c) => `${c.sha256}  ${c.file}  ${c.size}`);
  lines.push('', `# Verdicts against ${manifestName} (bundle_sha256, bundle_size_bytes):`);
  for (const c of checks) {
    const detail =
      c.verdict === 'MATCH'
        ? ''
        : `  manifest_sha256=${c.manifestSha256 ?? 'none'} computed_sha256=${c.sha256}` +
          `  manifest_size=${c.manifestSize ?? 'none'} computed_size=${c.size}`;
    lines.push(`# ${c.file}  ${c.view} gs${c.gridsize} dose ${c.dose}  ${c.verdict}${detail}`);
  }
  return lines.join('\n') + '\n';
}
