// One build session in a root: take the lock, load the state, build, save, release. Shared by
// the command line and watch mode; the lock and state are never touched by a dry run.
import path from 'node:path';
import { build } from './builder.ts';
import { Disk, removeTempLitter } from './disk.ts';
import type { Listener } from './events.ts';
import { Hasher, type StatEntry } from './hash.ts';
import type { Loaded } from './load.ts';
import { Lock } from './lock.ts';
import { stopOrphans } from './run.ts';
import { STATE_DIR, StateStore } from './state.ts';
import { newBuildId } from './cli.ts';
import { Artifacts, artifactSettings, type ArtifactSettings } from './artifacts.ts';
import type { ModuleRecord } from './module-record.ts';
import { checkStamp, knownFresh, removeStamp, stampUnchanged, trackedScope, writeStamp, type StampCheck, type StampFile } from './stamp.ts';
import { stampStats, trackedOf, writeOutline } from './narrow.ts';
import type { BuildResult } from './builder.ts';
import { PREFETCH_MIN_PATHS, StatPrefetch } from './prefetch.ts';

export interface SessionOptions {
  root: string;
  loaded: Loaded;
  goals: string[];
  closure: Set<string>;
  always: boolean;
  jobs: number;
  /** Cap on Slurm jobs in the queue at once (default 100). */
  slurmJobs?: number;
  keepGoing: boolean;
  dryRun: boolean;
  emit: Listener;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  /** Store and artifact cache settings (default: the cache under .hubmake, or HUBMAKE_CACHE_DIR). */
  artifacts?: ArtifactSettings;
  /** Watch mode: cancel one running target without stopping the build (--watch-restart). */
  targetSignal?: (name: string) => AbortSignal | undefined;
  /**
   * Watch mode: the stat cache kept in memory across builds, instead of reading it from disk each
   * time (15 MB of JSON for 100,000 files); saved only when saveStatCache is not false.
   */
  statCache?: Map<string, StatEntry>;
  saveStatCache?: boolean;
  /** The settled stamp's key for these declarations and goals (engine/stamp.ts): written after a build that leaves them fresh. */
  stampKey?: string;
  /** What the stamp said of this build before the lock was taken: the paths that moved since. */
  stampCheck?: StampCheck;
  /** What the module's evaluation read, kept with the stamp (engine/module-record.ts). */
  moduleRecords?: ModuleRecord[];
  /** What became of the targets module, for the build-start event. */
  moduleNote?: string;
  /**
   * A build narrowed to what the stamp's moved paths reach (engine/narrow.ts): `loaded` holds only
   * those targets and their dependencies. It holds only for the stamp as checked: when another
   * build got the lock first, or the stamp moved, the session returns 'stale' having changed
   * nothing, and the caller plans again with the whole graph.
   */
  narrowed?: { stamp: StampFile; fresh: Set<string>; outside: { fresh: string[]; targets: number } };
  /** Whether it was narrowed, or why not, for the build-start event. */
  narrowNote?: string;
}

/** Goals' targets for -B: an alias stands for the targets it names. */
function forcedTargets(o: SessionOptions): Set<string> {
  const out = new Set<string>();
  if (!o.always) return out;
  const g = o.loaded.graph;
  const stack = [...o.goals];
  while (stack.length) {
    const n = stack.pop()!;
    const t = g.byName.get(n);
    if (!t || out.has(n)) continue;
    if (t.alias) stack.push(...g.depsOf.get(n)!);
    else out.add(n);
  }
  return out;
}

export async function runBuild(o: SessionOptions): Promise<number | 'stale'> {
  const ac = new AbortController();
  const signal = o.signal ?? ac.signal;
  const state = new StateStore(o.root);
  const lock = new Lock(state.dir);
  let detach = () => {};
  if (!o.signal) {
    // Ctrl-C / SIGTERM: abort running targets (their process groups are killed), then save.
    let count = 0;
    const onSignal = () => {
      if (++count > 1) process.exit(130);
      ac.abort();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    detach = () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }
  let waited = false;
  let prefetch: StatPrefetch | undefined;
  try {
    if (!o.dryRun) {
      await lock.acquire((h) => {
        waited = true;
        o.emit({ type: 'lock-wait', pid: h.pid, host: h.host, since: h.started });
      }, signal);
      // A build killed while compacting the log or saving the stat cache leaves their temp files.
      for (const f of ['log.jsonl', 'stat.json']) removeTempLitter(path.join(state.dir, f));
    }
    // One snapshot per build, as a plain object: fingerprints and commands see the same values,
    // and reading it per command (the launcher pool compares it) costs no trip into process.env's
    // native getters (~50 µs per command measured with 50 variables).
    const env = o.env ?? { ...process.env };
    const disk = new Disk(o.root);
    const settings = o.artifacts ?? artifactSettings({}, env);
    // HUBMAKE_NOOP_SHORTCUT=off: the stamp is neither read nor written nor removed (benchmarks
    // measure the per-target no-op beside the stamped one; tests compare the two).
    const useStamp = !o.dryRun && env.HUBMAKE_NOOP_SHORTCUT !== 'off';
    // The stamp's list of moved paths holds only if nothing was recorded since it was read and no
    // time passed waiting for another build's lock (files may have moved meanwhile too): then every
    // target that touches none of them, and has nothing upstream that does, is fresh without
    // deciding it. After a wait the stamp is checked again, now under the lock.
    let prior: StampCheck | undefined;
    if (useStamp && o.stampCheck && o.stampKey && !o.always) {
      prior = waited ? checkStamp(state.dir, disk, o.stampKey) : stampUnchanged(state.dir, o.stampCheck) ? o.stampCheck : undefined;
    }
    const narrowed = o.narrowed;
    if (narrowed && (!prior || prior !== o.stampCheck)) return 'stale';
    // Before anything changes: a build that checks the stamp without the lock must not find one
    // that speaks for files this build is about to write. (Records change the log the stamp
    // names, too, so this is the first line of defence, not the only one.)
    if (useStamp) removeStamp(state.dir);
    const fresh = narrowed ? narrowed.fresh : prior ? knownFresh(o.loaded.graph, o.closure, prior.changed) : undefined;
    // Under the lock (no other build writes now; a dry run takes none, and its decisions race a
    // concurrent build with or without this): the files to decide are stat'ed on a worker
    // thread while this one reads the state log and the stat cache (HUBMAKE_STAT_AHEAD: the
    // fewest files worth a thread, or off; `<n>,wait` also waits for the worker before deciding,
    // as tests do so that a small graph uses its stats at all).
    const aheadMin = statAheadMin(env.HUBMAKE_STAT_AHEAD);
    const ahead = aheadMin === undefined ? undefined : new StatPrefetch(o.root, o.loaded.graph, o.closure, fresh, aheadMin);
    prefetch = ahead?.started ? ahead : undefined;
    const head = narrowed?.stamp.head;
    state.load(head ? { names: o.loaded.graph.order, lines: head.logLines!, strings: head.strings! } : undefined);
    let abrupt = false;
    for (const h of state.history.values()) if (h.unfinished) { abrupt = true; break; }
    if (abrupt) {
      // Commands of a build that ended abruptly may have been writing while the worker stat'ed.
      prefetch?.close();
      prefetch = undefined;
    }
    if (!o.dryRun && abrupt) {
      // A build ended without recording the end of some targets: if it was killed hard, their
      // commands may still be running and writing outputs. Stop them before anything is rebuilt.
      const stopped = await stopOrphans(o.root);
      if (stopped.length) o.emit({ type: 'warning', message: `stopped ${stopped.length} command process(es) (pid ${stopped.join(', ')}) left running by a build of this directory that ended abruptly` });
    }
    if (env.HUBMAKE_STAT_AHEAD?.endsWith(',wait')) prefetch?.waitAll(10_000);
    const hasher = new Hasher(disk, o.statCache ?? (narrowed ? stampStats(narrowed.stamp, prior!.movedAt, o.loaded.graph, state.history) : state.loadStatCache()), prefetch);
    const artifacts = new Artifacts(o.root, state.dir, settings);
    const res = await build({
      root: o.root,
      graph: o.loaded.graph,
      closure: o.closure,
      forced: forcedTargets(o),
      jobs: o.jobs,
      ...(o.slurmJobs !== undefined ? { slurmJobs: o.slurmJobs } : {}),
      keepGoing: o.keepGoing,
      dryRun: o.dryRun,
      env,
      moduleHash: o.loaded.moduleHash,
      state,
      hasher,
      buildId: newBuildId(),
      goals: o.goals,
      signal,
      emit: o.emit,
      ...(o.targetSignal ? { targetSignal: o.targetSignal } : {}),
      ...(fresh ? { knownFresh: fresh } : {}),
      ...(prior?.confirmed !== undefined ? { probed: prior.confirmed } : {}),
      ...(o.moduleNote !== undefined ? { module: o.moduleNote } : {}),
      ...(narrowed ? { outside: narrowed.outside } : {}),
      ...(o.narrowNote !== undefined ? { narrowed: o.narrowNote } : {}),
      artifacts,
    });
    if (!o.dryRun) {
      try {
        artifacts.sweepReleased();
      } catch (e) {
        o.emit({ type: 'warning', message: `could not remove released preserved copies: ${(e as Error).message}` });
      }
      if (settings.limit !== undefined) gcCache(o, artifacts, settings.limit);
      // The records are already appended: a full disk here costs only the tidy-up, not the build.
      try {
        const tracked = useStamp && o.stampKey && stampable(res, state.warnings) ? (narrowed ? trackedOf(narrowed.stamp, prior!.movedAt) : trackedScope(o.loaded.graph, o.closure)) : undefined;
        // Outputs hashed the moment their command wrote them cannot vouch for their bytes by their
        // stat yet; most are old enough by now. Confirming them here, as the next build would,
        // lets that build be answered by the stamp (and not re-hash them through the stat cache).
        if (tracked) hasher.confirm(tracked.paths, CONFIRM_BYTES);
        state.compact();
        // A build the stamp vouched for re-hashed a few files: their stat cache entries may stay
        // stale on disk (a stale entry's stat no longer matches, so it is only re-hashed), and
        // rewriting every entry costs more than the few re-hashes it would save (~25 ms at 10k).
        if (hasher.changed && o.saveStatCache !== false && !prior) state.saveStatCache(hasher.entries());
        // Last, so that the log signature it keeps is the log's final one.
        // A narrowed build knows the log's lines, not which are live: it keeps the last full build's count.
        const counts = state.counts();
        const live = counts.live ?? head?.live;
        const stamped = !!tracked && writeStamp(state.dir, disk, hasher, o.stampKey!, o.goals, tracked, { carried: prior?.carried(), modules: o.moduleRecords, moduleHash: o.loaded.moduleHash, ...(live !== undefined ? { log: { lines: counts.lines, live, strings: counts.strings } } : {}) });
        // The goals' targets for narrowed builds that need not run the module (unchanged by a narrowed one).
        if (stamped && !narrowed) writeOutline(state.dir, o.stampKey!, o.loaded.graph, o.closure, tracked.paths);
      } catch (e) {
        o.emit({ type: 'warning', message: `could not rewrite the build state in ${state.dir}: ${(e as Error).message}; the records of this build are kept` });
      }
    }
    if (res.interrupted) return 130;
    return res.ok ? 0 : 1;
  } catch (e) {
    if (signal.aborted) return 130;
    // The state directory cannot be written (disk full, read-only): a clear message, not a stack.
    if (typeof (e as NodeJS.ErrnoException).code === 'string' || /^cannot write the build lock /.test((e as Error).message)) {
      o.emit({ type: 'error', diagnostics: [{ field: STATE_DIR, message: `cannot use the build state: ${(e as Error).message}`, hint: 'free disk space or make the state directory writable, then build again' }] });
      return 1;
    }
    throw e;
  } finally {
    prefetch?.close();
    state.close();
    lock.release();
    detach();
  }
}

function statAheadMin(v: string | undefined): number | undefined {
  if (v === 'off') return undefined;
  const n = Number(v?.replace(/,wait$/, ''));
  return v && Number.isInteger(n) && n > 0 ? n : PREFETCH_MIN_PATHS;
}

/** Bytes of just-written outputs re-hashed at the end of a build to make them trusted (Hasher.confirm). */
const CONFIRM_BYTES = 64 << 20;

function gcCache(o: SessionOptions, artifacts: Artifacts, limit: number): void {
  try {
    o.emit({ type: 'cache-gc', ...artifacts.gc(limit), limit });
  } catch (e) {
    o.emit({ type: 'warning', message: `cache gc failed: ${(e as Error).message}` });
  }
}

/** Every target of the goals ended fresh or built, and the state loaded cleanly: the next build may skip deciding. */
function stampable(res: BuildResult, warnings: string[]): boolean {
  if (!res.ok || res.interrupted || warnings.length) return false;
  for (const oc of res.outcomes.values()) if (oc.status !== 'fresh' && oc.status !== 'built') return false;
  return true;
}
