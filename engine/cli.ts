// The command line: options → load the targets module → build → exit code (0 ok, 1 a target
// failed, 2 usage or declaration error, 130 interrupted). Kept apart from build.ts so that tests
// and benchmarks can call main() in-process.
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { DeclarationError, formatDiagnostic } from './errors.ts';
import type { BuildEvent } from './events.ts';
import { resolveGoals } from './graph.ts';
import { importTargets, validateImported, type Loaded } from './load.ts';
import { addModuleRecords, checkStamp, readStamp, stampKey, type SettledAnswer, type StampCheck, type StampFile } from './stamp.ts';
import { Lock } from './lock.ts';
import { checkRecord, replayOutput, SETTLE_MS, standingRecord, withRecord, type ModuleRecord } from './module-record.ts';
import { startRecording } from './module-watch.ts';
import { probeStamp } from './stamp-probe.ts';
import { narrowedGraph, reach, storedAt, validatedAt, type Narrowed, type Reach } from './narrow.ts';
import type { SessionOptions } from './session.ts';
import { Disk } from './disk.ts';
import { plainReporter, stdio } from './report/plain.ts';
import { withMetrics } from './report/metrics.ts';
import { jsonReporter } from './report/json.ts';
import { renderGraph } from './report/graph.ts';
import { describeReason } from './decide.ts';
import { Artifacts, artifactSettings, gcCommand, restoreCommand, type ArtifactSettings } from './artifacts.ts';
import { formatBytes } from './cache.ts';
import { STATE_DIR } from './state.ts';

export const HELP = `Usage: npx tsx build.ts [goals...] [options]

A goal is a target name, an output path, or a glob over target names. Without goals the
alias 'default' is built if it exists, else every target.

Options:
  -f, --file <module>      targets module (default targets/index.ts)
  -C, --directory <dir>    root directory (default: current directory)
  -D, --define <key=value> a definition handed to the targets function (repeatable)
  -n, --dry-run            print what would run and why; change nothing
      --explain            print the exact reason for every target that runs (or is kept)
  -j, --jobs <n>           parallel jobs (default: CPU count)
      --slurm-jobs <n>     Slurm jobs in the queue at once, besides the -j local ones
                           (default: HUBMAKE_SLURM_JOBS or 100)
  -k, --keep-going         keep building what does not depend on a failed target
  -B, --always-make        rerun the goals' targets regardless of their state
      --json               newline-delimited JSON events on stdout
      --list               list targets with their descriptions
      --status             show fresh/stale per target without building
      --graph <format>     print the goals' graph: mermaid or dot
      --watch              build, then keep the goals current as files change (Ctrl-C stops)
      --debounce <ms>      watch: quiet period after a change before building (default 150)
      --watch-restart      watch: cancel running targets whose inputs change, and rerun them
      --watch-extra <p>    watch: a file or glob the targets module reads; a change reloads it
                           (repeatable; the module's local imports and ./*.config.json always count)
      --restore <target>   write back the target's last good outputs (kept in the store before
                           a rerun, or from the artifact cache), verified by sha256
      --cache-dir <dir>    artifact cache directory, e.g. on a shared file system
                           (default: HUBMAKE_CACHE_DIR, else .hubmake/cache)
      --cache-limit <size> after each build, evict least recently used cache entries beyond
                           this size (e.g. 20G; default: HUBMAKE_CACHE_LIMIT, else no limit)
      --cache-min-ms <ms>  store the outputs of targets without 'cache: true' only when their
                           run took at least this long (default: HUBMAKE_CACHE_MIN_MS, else 100;
                           0 stores every run)
      --no-cache           neither restore outputs from the cache nor store them in it
      --gc                 evict cache entries down to --cache-limit, remove unreferenced blobs
  -h, --help               this text

Exit codes: 0 success (including nothing to do), 1 a target failed, 2 usage or declaration error,
130 interrupted.`;

export const DEFAULT_DEBOUNCE_MS = 150;

export interface CliOptions {
  goals: string[];
  file: string;
  root: string;
  defines: Record<string, string>;
  dryRun: boolean;
  explain: boolean;
  jobs: number;
  slurmJobs: number;
  keepGoing: boolean;
  always: boolean;
  json: boolean;
  list: boolean;
  status: boolean;
  graph: 'mermaid' | 'dot' | undefined;
  help: boolean;
  watch: boolean;
  debounceMs: number;
  watchRestart: boolean;
  watchExtra: string[];
  /** --restore <target> */
  restore: string | undefined;
  cacheDir: string | undefined;
  cacheLimit: string | undefined;
  cacheMinMs: string | undefined;
  noCache: boolean;
  gc: boolean;
}

export function parseCli(argv: string[]): CliOptions {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        file: { type: 'string', short: 'f' },
        directory: { type: 'string', short: 'C' },
        define: { type: 'string', short: 'D', multiple: true },
        'dry-run': { type: 'boolean', short: 'n' },
        explain: { type: 'boolean' },
        jobs: { type: 'string', short: 'j' },
        'slurm-jobs': { type: 'string' },
        'keep-going': { type: 'boolean', short: 'k' },
        'always-make': { type: 'boolean', short: 'B' },
        json: { type: 'boolean' },
        list: { type: 'boolean' },
        status: { type: 'boolean' },
        graph: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        watch: { type: 'boolean' },
        debounce: { type: 'string' },
        'watch-restart': { type: 'boolean' },
        'watch-extra': { type: 'string', multiple: true },
        restore: { type: 'string' },
        'cache-dir': { type: 'string' },
        'cache-limit': { type: 'string' },
        'cache-min-ms': { type: 'string' },
        'no-cache': { type: 'boolean' },
        gc: { type: 'boolean' },
      },
    });
  } catch (e) {
    throw new DeclarationError({ field: 'command line', message: (e as Error).message, hint: 'see --help' });
  }
  const v = parsed.values;
  let jobs = os.availableParallelism?.() ?? os.cpus().length;
  if (v.jobs !== undefined) {
    jobs = Number(v.jobs);
    if (!Number.isInteger(jobs) || jobs < 1) throw new DeclarationError({ field: '--jobs', message: `must be a positive integer, got '${v.jobs}'` });
  }
  const slurmRaw = v['slurm-jobs'] ?? process.env.HUBMAKE_SLURM_JOBS;
  const slurmJobs = slurmRaw === undefined || slurmRaw === '' ? 100 : Number(slurmRaw);
  if (!Number.isInteger(slurmJobs) || slurmJobs < 1) {
    const field = v['slurm-jobs'] !== undefined ? '--slurm-jobs' : 'HUBMAKE_SLURM_JOBS';
    throw new DeclarationError({ field, message: `must be a positive integer, got '${slurmRaw}'` });
  }
  const defines: Record<string, string> = {};
  for (const d of v.define ?? []) {
    const eq = d.indexOf('=');
    if (eq <= 0) throw new DeclarationError({ field: '--define', message: `expected key=value, got '${d}'`, hint: 'e.g. -D hub.timestamp=2025-11-07T000000Z' });
    defines[d.slice(0, eq)] = d.slice(eq + 1);
  }
  // The quiet period of watch mode; kept here (not imported from watch-plan.ts) so that a plain
  // build never loads watch mode's modules.
  let debounceMs = DEFAULT_DEBOUNCE_MS;
  if (v.debounce !== undefined) {
    debounceMs = Number(v.debounce);
    if (!Number.isInteger(debounceMs) || debounceMs < 0) throw new DeclarationError({ field: '--debounce', message: `must be a whole number of milliseconds, got '${v.debounce}'`, hint: 'e.g. --debounce 300' });
  }
  if (v.watch && (v['dry-run'] || v.status || v.list || v.graph !== undefined)) {
    throw new DeclarationError({ field: '--watch', message: 'cannot be combined with --dry-run, --status, --list or --graph', hint: 'watch mode builds; drop one of the options' });
  }
  if (!v.watch && (v['watch-restart'] || v['watch-extra'] || v.debounce !== undefined)) {
    throw new DeclarationError({ field: '--watch', message: '--debounce, --watch-restart and --watch-extra only apply with --watch', hint: 'add --watch' });
  }
  if (v.graph !== undefined && v.graph !== 'mermaid' && v.graph !== 'dot') {
    throw new DeclarationError({ field: '--graph', message: `must be 'mermaid' or 'dot', got '${v.graph}'` });
  }
  return {
    goals: parsed.positionals,
    file: v.file ?? 'targets/index.ts',
    root: path.resolve(v.directory ?? '.'),
    defines,
    dryRun: !!v['dry-run'],
    explain: !!v.explain,
    jobs,
    slurmJobs,
    keepGoing: !!v['keep-going'],
    always: !!v['always-make'],
    json: !!v.json,
    list: !!v.list,
    status: !!v.status,
    graph: v.graph as CliOptions['graph'],
    help: !!v.help,
    watch: !!v.watch,
    debounceMs,
    watchRestart: !!v['watch-restart'],
    watchExtra: v['watch-extra'] ?? [],
    restore: v.restore,
    cacheDir: v['cache-dir'],
    cacheLimit: v['cache-limit'],
    cacheMinMs: v['cache-min-ms'],
    noCache: !!v['no-cache'],
    gc: !!v.gc,
  };
}

export function newBuildId(): string {
  return new Date().toISOString().replace(/[-:]/g, '').replace(/\.(\d+)Z$/, '.$1Z') + `-${process.pid}`;
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: string[], signal?: AbortSignal): Promise<number> {
  // Ctrl-C or SIGTERM while the targets module loads: nothing has been written yet, so note it and
  // end with 130 before the build starts (the session installs its own handlers for the build).
  let early: NodeJS.Signals | undefined;
  const onEarly = (s: NodeJS.Signals) => {
    early ??= s;
  };
  if (!signal) {
    process.on('SIGINT', onEarly);
    process.on('SIGTERM', onEarly);
  }
  try {
    return await mainWith(argv, signal, () => early);
  } finally {
    process.off('SIGINT', onEarly);
    process.off('SIGTERM', onEarly);
  }
}

async function mainWith(argv: string[], signal: AbortSignal | undefined, interrupted: () => NodeJS.Signals | undefined): Promise<number> {
  let opts: CliOptions;
  try {
    opts = parseCli(argv);
  } catch (e) {
    return declarationExit(e);
  }
  if (opts.help) {
    stdio.out(HELP);
    return 0;
  }
  const emit = opts.json ? jsonReporter() : plainReporter({ explain: opts.explain, dryRun: opts.dryRun });
  let artifacts: ArtifactSettings;
  try {
    artifacts = artifactSettings(opts, process.env);
  } catch (e) {
    return declarationExit(e);
  }
  if (opts.gc) return gcCommand(opts.root, artifacts, emit, signal);
  const failed = (e: unknown) => {
    if (opts.json && e instanceof DeclarationError) emit({ type: 'error', diagnostics: e.diagnostics });
    return declarationExit(e);
  };
  for (const narrowing of [true, false]) {
    let plan: Plan;
    try {
      plan = await planBuild(opts, artifacts, { off: !narrowing });
    } catch (e) {
      return failed(e);
    }
    const code = await runPlan(opts, emit, artifacts, signal, interrupted, plan);
    // A narrowed build found, once it held the lock, that another build had been at work: it
    // changed nothing, and the build is planned again with the whole graph.
    if (code !== 'stale') return code;
  }
  return 1; // unreachable: a plan that is not narrowed never comes back stale
}

/**
 * Imports the targets module, then either the settled stamp answers (engine/stamp.ts: specs
 * identical to a validated set's, and every path as that build saw it) or the specs are validated
 * into the graph. The module's raw specs live only in this frame: a build of 100,000 targets must
 * not keep them beside the validated targets.
 */
async function planBuild(opts: CliOptions, artifacts: ArtifactSettings, narrowing: { off?: boolean; not?: string } = {}): Promise<Plan> {
  const plain = !opts.list && !opts.graph && opts.restore === undefined && !opts.watch && !opts.dryRun && !opts.status;
  const keyed = plain && process.env.HUBMAKE_NOOP_SHORTCUT !== 'off';
  const stateDir = path.join(opts.root, STATE_DIR);
  // -B runs targets whatever they are; a cache limit is enforced under the lock by a full build:
  // neither reads the stamp.
  const stamp = keyed && !opts.always && artifacts.limit === undefined ? readStamp(stateDir) : undefined;
  // HUBMAKE_MODULE_RECORD: off, or how many ms a module file must be older than its evaluation
  // (tests; default SETTLE_MS).
  const recordEnv = process.env.HUBMAKE_MODULE_RECORD;
  const recording = keyed && recordEnv !== 'off';
  const invocation = JSON.stringify([opts.root, opts.file, opts.goals, opts.defines]);
  // Read before the module runs: the watch would note the engine's own read as the module's.
  const share = narrowShare(process.env.HUBMAKE_NARROW);
  let check: StampCheck | undefined;
  // Nothing the module's evaluation read has changed (engine/module-record.ts): the stamp's key is
  // this build's, and no module code runs first, so the probe may start at once.
  const standing = stamp && recording ? standingRecord(stamp.head.modules, invocation) : undefined;
  // What the moved paths reach, when the build may be narrowed to it (engine/narrow.ts).
  let reached: Reach | string | undefined;
  if (stamp && standing) {
    const probe = probeStamp(opts.root, stamp, process.env);
    check = checkStamp(stateDir, new Disk(opts.root), stamp.head.key, stamp, await probe?.answer);
    const skipped = 'skipped: nothing it read has changed';
    if (check && check.changed.length === 0) return { settled: check.answer, replay: standing, module: skipped, ...(check.confirmed !== undefined ? { probed: check.confirmed } : {}) };
    if (check && share > 0 && !narrowing.off) {
      reached = reach(opts.root, stamp, check.movedAt, share);
      // Commands only: the targets it needs are stored with the stamp, and the module need not run.
      const stored = typeof reached === 'string' ? reached : storedAt(reached);
      const n = typeof reached === 'string' || typeof stored === 'string' ? undefined : narrowedGraph(reached, stored);
      if (typeof n === 'object' && stamp.head.moduleHash !== undefined) return narrowedPlan(n, stamp, check, { moduleHash: stamp.head.moduleHash, moduleFiles: [] }, skipped, standing);
    }
  }
  // The module runs (the build needs its targets): watched when no record stands, so that the
  // next build may skip it.
  const recorder = recording && !standing ? await startRecording(opts.root, invocation, recordEnv && /^\d+$/.test(recordEnv) ? Number(recordEnv) : SETTLE_MS) : undefined;
  let imported: Awaited<ReturnType<typeof importTargets>>;
  let key: string | undefined;
  let made: Awaited<ReturnType<NonNullable<typeof recorder>['stop']>> | undefined;
  try {
    imported = await importTargets(opts.root, opts.file, { defines: opts.defines, ...(recorder ? { watch: recorder } : {}) });
    // Some paths moved, the record stands: the build may need only the targets they reach
    // (engine/narrow.ts). The stamp's key is this build's, as for a no-op the record answers.
    if (stamp && check && reached !== undefined) {
      const targets = typeof reached === 'string' ? reached : validatedAt(reached, imported.specs, opts.root);
      const n = typeof reached === 'string' || typeof targets === 'string' ? String(targets) : narrowedGraph(reached, targets);
      if (typeof n !== 'string') return narrowedPlan(n, stamp, check, imported, 'run for its targets; its record stands');
      narrowing.not = n;
    }
    key = keyed ? stampKey({ root: opts.root, specs: imported.specs, moduleHash: imported.moduleHash, goals: opts.goals, defines: opts.defines, env: process.env }) : undefined;
  } finally {
    made = await recorder?.stop();
  }
  // A record must hold the moment it is made: one that does not (something it saw moved at once,
  // or is seen differently when looked at again) would only be rewritten by every no-op.
  if (made && 'record' in made && !checkRecord(made.record, invocation)) made = { refused: 'it does not hold when looked at again' };
  let note = made ? ('record' in made ? 'run and recorded' : `run, not recorded: ${made.refused}`) : standing ? 'run for its targets; its record stands' : undefined;
  // The records the next stamp keeps: each holds only for the key it was made with. A standing
  // one whose module's result moved all the same (through something it read unseen) is dropped
  // with the rest, and the stamp speaks for nothing.
  const sameKey = key !== undefined && stamp?.head.key === key;
  let records: ModuleRecord[] = sameKey && Array.isArray(stamp.head.modules) ? stamp.head.modules : [];
  if (made && 'record' in made && key !== undefined) records = withRecord(records, made.record);
  if (standing && !sameKey) {
    check = undefined;
    note = 'run; its record is dropped (its result changed although nothing it was seen to read did)';
  }
  if (!standing) {
    // The stamp's paths are stat'ed by the native probe only now: the module's code may write files
    // its targets read while it runs, and while the key is computed too (a getter, a toJSON, a
    // Proxy in the specs). Started earlier, it could confirm a file as it was before such a write.
    const ours = sameKey ? stamp : undefined;
    const probe = ours && probeStamp(opts.root, ours, process.env);
    check = ours ? checkStamp(stateDir, new Disk(opts.root), key!, ours, await probe?.answer) : undefined;
    if (check && check.changed.length === 0) {
      // A no-op whose stamp has no record for this runtime (its build could not make one) adds it.
      if (made && 'record' in made && !keepRecords(stateDir, ours!, check, records)) note = 'run and recorded; the record was not kept (another build holds the lock)';
      return { settled: check.answer, ...(note ? { module: note } : {}), ...(check.confirmed !== undefined ? { probed: check.confirmed } : {}) };
    }
  }
  const loaded = validateImported(opts.root, imported);
  return { loaded, goals: resolveGoals(loaded.graph, opts.goals), key, check, records, note, ...(narrowing.not !== undefined ? { narrowNote: `no: ${narrowing.not}` } : {}) };
}

/** A build narrowed to what the moved paths reach: the stamp's key and records are this build's. */
function narrowedPlan(n: Narrowed, stamp: StampFile, check: StampCheck, module: { moduleHash: string; moduleFiles: string[] }, note: string, replay?: ModuleRecord): Plan {
  return {
    loaded: { graph: n.graph, moduleHash: module.moduleHash, moduleFiles: module.moduleFiles },
    goals: { goals: stamp.head.goals, closure: new Set(n.graph.order) },
    key: stamp.head.key,
    check,
    records: stamp.head.modules ?? [],
    note,
    narrowNote: `${n.graph.order.length - n.fresh.size} of ${stamp.head.targets} targets to decide`,
    narrowed: { stamp, fresh: n.fresh, outside: { fresh: n.outside, targets: n.outsideTargets } },
    ...(replay ? { replay } : {}),
  };
}

/** Under the lock if it is free at once (a build at work will write its own stamp); a failure costs only the record. */
function keepRecords(stateDir: string, stamp: StampFile, check: StampCheck, records: ModuleRecord[]): boolean {
  const lock = new Lock(stateDir);
  try {
    return lock.tryAcquire() && addModuleRecords(stateDir, stamp, check, records);
  } catch {
    return false; // a read-only state directory: the next build runs the module again
  } finally {
    lock.release();
  }
}

type Plan =
  | { settled: SettledAnswer; probed?: number; replay?: ModuleRecord; module?: string }
  | { loaded: Loaded; goals: { goals: string[]; closure: Set<string> }; key: string | undefined; check: StampCheck | undefined; records: ModuleRecord[]; note: string | undefined; narrowed?: SessionOptions['narrowed']; narrowNote?: string; replay?: ModuleRecord };

/** Emits through `emit`, printing what the module printed once, just before the build starts. */
function replayingFirst(emit: (e: BuildEvent) => void, record: ModuleRecord): (e: BuildEvent) => void {
  let done = false;
  return (e) => {
    if (!done && e.type === 'build-start') {
      done = true;
      replayOutput(record);
    }
    emit(e);
  };
}

/** HUBMAKE_NARROW: off, or the largest share of the goals' targets a narrowed build may decide (default a half). */
function narrowShare(v: string | undefined): number {
  if (v === 'off') return 0;
  const n = Number(v);
  return v && n > 0 && n <= 1 ? n : 0.5;
}

/** Lists, draws, restores, watches or builds, as the options say. */
async function runPlan(opts: CliOptions, emit: (e: BuildEvent) => void, artifacts: ArtifactSettings, signal: AbortSignal | undefined, interrupted: () => NodeJS.Signals | undefined, plan: Plan): Promise<number | 'stale'> {
  if ('loaded' in plan) {
    const g = plan.loaded.graph;
    if (opts.list) {
      const width = Math.min(60, Math.max(...g.targets.map((t) => t.name.length)));
      for (const t of g.targets) stdio.out(`${t.name.padEnd(width)}  ${t.alias ? '(alias) ' : ''}${t.description ?? ''}`.trimEnd());
      return 0;
    }
    if (opts.graph) {
      stdio.out(renderGraph(g, plan.goals.closure, opts.graph));
      return 0;
    }
    if (opts.restore !== undefined) {
      return restoreCommand({ root: opts.root, graph: g, moduleHash: plan.loaded.moduleHash, name: opts.restore, settings: artifacts, buildId: newBuildId(), env: process.env, emit, ...(signal ? { signal } : {}) });
    }
  }
  // Two turns of the event loop (the first check phase can come before the poll phase that reads
  // the signal), so that a signal delivered while a synchronous module load held the loop is seen.
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  const sig = interrupted();
  if (sig) {
    stdio.err(`hubmake: ${sig} before the build started; nothing was changed`);
    return 130;
  }
  // On a terminal, a live view of what runs; elsewhere (CI, pipes) plain lines; --json as is.
  // Loaded only when used: a build in a pipe or CI never pays for the live view or watch lines.
  const live = opts.json || opts.dryRun || opts.status || !isTerminal() ? undefined : (await import('./report/live.ts')).liveReporter({ tty: { write: (s) => process.stdout.write(s), columns: () => process.stdout.columns ?? 80 }, explain: opts.explain });
  const shown = live?.emit ?? (opts.json || !opts.watch ? emit : withWatchLines(emit, (await import('./report/watch-lines.ts')).watchLines));
  const metered = process.env.HUBMAKE_TIMING ? withMetrics(shown, (l) => process.stderr.write(l)) : shown;
  // What the module printed when it ran, as if it had run: before the build starts (not before a
  // narrowed build that comes back stale: the module then runs, and prints it itself).
  const replay = plan.replay;
  const buildEmit = replay ? replayingFirst(metered, replay) : metered;
  if ('settled' in plan) {
    emitSettled(plan.settled, opts.jobs, buildEmit, plan.probed, plan.module);
    live?.close();
    return 0;
  }
  const { loaded, goals, key, check, records, note, narrowed, narrowNote } = plan;
  if (opts.watch) {
    const { watch } = await import('./watch.ts');
    try {
      return await watch({
        root: opts.root,
        file: opts.file,
        goalArgs: opts.goals,
        defines: opts.defines,
        loaded,
        jobs: opts.jobs,
        keepGoing: opts.keepGoing,
        always: opts.always,
        debounceMs: opts.debounceMs,
        restart: opts.watchRestart,
        extras: opts.watchExtra,
        emit: buildEmit,
        session: { slurmJobs: opts.slurmJobs, artifacts },
        ...(signal ? { signal } : {}),
      });
    } finally {
      live?.close();
    }
  }
  const { runBuild } = await import('./session.ts');
  const statusView = opts.status ? statusReporter() : undefined;
  const code = await runBuild({
    root: opts.root,
    loaded,
    goals: goals.goals,
    closure: goals.closure,
    always: opts.always,
    jobs: opts.jobs,
    slurmJobs: opts.slurmJobs,
    keepGoing: opts.keepGoing,
    dryRun: opts.dryRun || opts.status,
    emit: statusView ?? buildEmit,
    ...(key ? { stampKey: key } : {}),
    ...(check ? { stampCheck: check } : {}),
    ...(records.length ? { moduleRecords: records } : {}),
    ...(note !== undefined ? { moduleNote: note } : {}),
    ...(narrowed ? { narrowed } : {}),
    ...(narrowNote !== undefined ? { narrowNote } : {}),
    ...(signal ? { signal } : {}),
    artifacts,
  });
  live?.close();
  if (opts.status) {
    const c = new Artifacts(opts.root, path.join(opts.root, STATE_DIR), artifacts).stats();
    stdio.out(`cache   ${c.entries} entr${c.entries === 1 ? 'y' : 'ies'}, ${formatBytes(c.bytes)} in ${c.dir}${artifacts.limit !== undefined ? ` (limit ${formatBytes(artifacts.limit)})` : ''}${artifacts.cache ? '' : ' (not used: --no-cache)'}`);
  }
  return code;
}

/**
 * A build the settled stamp answered: the events a build of all-fresh targets gives (a decision per
 * target, in dependency order), so every logger says what it says after a full no-op.
 */
function emitSettled(a: SettledAnswer, jobs: number, emit: (e: BuildEvent) => void, probed: number | undefined, module: string | undefined): void {
  const t0 = Date.now();
  const buildId = newBuildId();
  emit({ type: 'build-start', buildId, goals: a.goals, targets: a.targets, runnable: a.names.length, jobs: Math.max(1, jobs), dryRun: false, ...(probed !== undefined ? { probed } : {}), ...(module !== undefined ? { module } : {}) });
  for (const target of a.names) emit({ type: 'decision', target, action: 'fresh', reasons: [] });
  const counts = { built: 0, fresh: a.names.length, kept: 0, failed: 0, blocked: 0, skipped: 0 };
  emit({ type: 'build-end', buildId, ok: true, interrupted: false, counts, durationMs: Date.now() - t0, ran: [], settled: true });
}

function statusReporter(): (e: BuildEvent) => void {
  return (e) => {
    if (e.type === 'decision') {
      const word = e.action === 'run' ? 'stale' : e.action === 'may-run' ? 'stale?' : e.action === 'keep' ? 'kept' : 'fresh';
      const why = e.reasons[0] ? `  (${describeReason(e.reasons[0])}${e.reasons.length > 1 ? `, +${e.reasons.length - 1} more` : ''})` : e.action === 'may-run' ? '  (an upstream target is stale)' : '';
      const cached = e.reasons.find((r) => r.kind === 'cached');
      stdio.out(`${word.padEnd(7)} ${e.target}${why}${cached?.kind === 'cached' ? `  [restorable from the cache: build ${cached.build}]` : ''}`);
    } else if (e.type === 'warning') stdio.err(`hubmake: warning: ${e.message}`);
    else if (e.type === 'blocked') stdio.out(`blocked ${e.target}`);
  };
}

/** A terminal that understands cursor movement (not CI logs, pipes or TERM=dumb). */
function isTerminal(): boolean {
  return !!process.stdout.isTTY && process.env.TERM !== 'dumb' && !process.env.CI;
}

/** The plain reporter plus watch mode's lines. */
function withWatchLines(emit: (e: BuildEvent) => void, watchLines: (e: BuildEvent) => Array<{ err?: boolean; text: string }>): (e: BuildEvent) => void {
  return (e) => {
    emit(e);
    for (const l of watchLines(e)) (l.err ? stdio.err : stdio.out)(l.text);
  };
}

function declarationExit(e: unknown): number {
  if (e instanceof DeclarationError) {
    for (const d of e.diagnostics) stdio.err(`hubmake: error: ${formatDiagnostic(d)}`);
    return 2;
  }
  throw e;
}
