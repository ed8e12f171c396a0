// Watch mode: build the goals, then keep them current as files change. Changes are gathered for
// a quiet period (debounce) and then only the targets they made stale, and what depends on them,
// are considered again. One build at a time: changes that arrive during a build queue exactly one
// follow-up build (or, with --watch-restart, first cancel the running targets they touch). A
// change to the targets module or its configuration reloads the graph through a fresh import; a
// module that fails to load is reported and the last good graph is kept. Everything it has to say
// goes out as events.
import path from 'node:path';
import { DeclarationError } from './errors.ts';
import type { BuildEvent, Listener } from './events.ts';
import { resolveGoals } from './graph.ts';
import { loadTargets, type Loaded } from './load.ts';
import { runBuild, type SessionOptions } from './session.ts';
import type { StatEntry } from './hash.ts';
import { StateStore } from './state.ts';
import { DirWatcher } from './dirwatch.ts';
import { planWatch, staleScope } from './watch-plan.ts';

const LISTED_PATHS = 20;

export interface WatchOptions {
  root: string;
  file: string;
  /** Goals as given on the command line (resolved again after each reload). */
  goalArgs: string[];
  loaded: Loaded;
  /** -D definitions handed to the targets function, on every reload too. */
  defines?: Record<string, string>;
  jobs: number;
  keepGoing: boolean;
  /** -B: the first build reruns the goals' targets. */
  always: boolean;
  debounceMs: number;
  restart: boolean;
  /** Extra files or globs whose change reloads the targets module (--watch-extra). */
  extras: string[];
  emit: Listener;
  env?: NodeJS.ProcessEnv;
  /** Further session settings passed to every build (artifact cache, Slurm). */
  session?: Partial<SessionOptions>;
  /** Ends watch mode (tests); without it SIGINT and SIGTERM do. */
  signal?: AbortSignal;
}

interface Batch {
  paths: Set<string>;
  targets: Set<string>;
  reload: boolean;
  /** The first build: every target of the goals. */
  all: boolean;
}

const emptyBatch = (): Batch => ({ paths: new Set(), targets: new Set(), reload: false, all: false });

/** Runs until interrupted; resolves to 130 (the exit code of an interrupted build). */
export function watch(o: WatchOptions): Promise<number> {
  return new Watcher(o).run();
}

class Watcher {
  private loaded: Loaded;
  private goals: { goals: string[]; closure: Set<string> };
  private dirs: DirWatcher | undefined;
  private classify: ReturnType<typeof planWatch>['classify'] = () => undefined;
  /** Changes inside the quiet period, not yet handed on. */
  private pending = emptyBatch();
  /** Changes waiting for the running build to end. */
  private queued: Batch | undefined;
  private timer: NodeJS.Timeout | undefined;
  private building = false;
  private idle: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly stop = new AbortController();
  private buildAbort = new AbortController();
  /** Targets whose last outcome failed (or were blocked by a failure): retried when their inputs change. */
  private readonly failed = new Set<string>();
  /** Targets not brought up to date yet (never decided, skipped, interrupted): part of the next build. */
  private readonly unfinished = new Set<string>();
  private readonly running = new Map<string, AbortController>();
  private firstBuild = true;
  /** The stat cache, read once and kept across builds; written after the first build and at the end. */
  private statCache: Map<string, StatEntry> | undefined;
  private pendingSince = 0;
  private watched = { files: 0, directories: 0 };

  constructor(private readonly o: WatchOptions) {
    this.loaded = o.loaded;
    this.goals = resolveGoals(o.loaded.graph, o.goalArgs);
  }

  async run(): Promise<number> {
    const detach = this.onSignals();
    try {
      this.replan();
      this.enqueue({ ...emptyBatch(), all: true });
      await new Promise<void>((resolve) => {
        if (this.stop.signal.aborted) resolve();
        else this.stop.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      await this.idle;
      this.saveStatCache();
      return 130;
    } finally {
      clearTimeout(this.timer);
      this.dirs?.close();
      detach();
    }
  }

  private onSignals(): () => void {
    const end = () => {
      this.stopped = true;
      clearTimeout(this.timer);
      // Running commands are killed with their process groups; the session saves the state
      // and releases the lock on its way out.
      this.buildAbort.abort();
      this.stop.abort();
    };
    if (this.o.signal) {
      if (this.o.signal.aborted) end();
      this.o.signal.addEventListener('abort', end, { once: true });
      return () => this.o.signal!.removeEventListener('abort', end);
    }
    let count = 0;
    const onSignal = () => {
      if (++count > 1) process.exit(130);
      end();
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    return () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    };
  }

  /** (Re)computes what to watch from the current graph and swaps the directory watches. */
  private replan(): void {
    const plan = planWatch(this.o.root, this.loaded.graph, this.goals.closure, this.loaded.moduleFiles, this.o.extras);
    let unwatched = 0;
    let first: string | undefined;
    const next = new DirWatcher(path.resolve(this.o.root), plan.roots, plan.skipDir, (abs) => this.changed(abs), (abs, e) => {
      if (unwatched++ === 0) first = `${path.relative(this.o.root, abs) || '.'}: ${e.message}`;
    });
    next.start();
    if (unwatched) {
      const hint = first?.includes('ENOSPC') ? ' (the inotify watch limit: raise fs.inotify.max_user_watches)' : '';
      this.o.emit({ type: 'warning', message: `watch mode cannot see changes in ${unwatched} director${unwatched === 1 ? 'y' : 'ies'}, first ${first}${hint}` });
    }
    this.dirs?.close();
    this.dirs = next;
    this.classify = plan.classify;
    this.watched = { files: plan.files, directories: next.roots };
  }

  private ready(): void {
    this.o.emit({ type: 'watch-ready', files: this.watched.files, directories: this.watched.directories, watches: this.dirs?.count ?? 0 });
  }

  private changed(abs: string): void {
    if (this.stopped) return;
    const rel = path.relative(this.o.root, abs).split(path.sep).join('/');
    const c = this.classify(rel);
    if (!c) return;
    this.pending.paths.add(rel);
    for (const t of c.targets) this.pending.targets.add(t);
    if (c.reload) this.pending.reload = true;
    // Each change restarts the quiet period, but a file written to without pause still gets built.
    const now = Date.now();
    if (this.pendingSince === 0) this.pendingSince = now;
    const wait = Math.min(this.o.debounceMs, Math.max(0, this.pendingSince + Math.max(1000, 10 * this.o.debounceMs) - now));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.settle(), wait);
  }

  /** The quiet period is over: announce the changes and build, or queue them behind the running build. */
  private settle(): void {
    const b = this.pending;
    this.pending = emptyBatch();
    this.pendingSince = 0;
    if (this.stopped || (b.paths.size === 0 && !b.all)) return;
    const paths = [...b.paths].sort();
    this.o.emit({ type: 'watch-change', paths: paths.slice(0, LISTED_PATHS), more: Math.max(0, paths.length - LISTED_PATHS), targets: [...b.targets].sort(), reload: b.reload, queued: this.building });
    if (this.building && this.o.restart) {
      for (const t of b.targets) {
        const ac = this.running.get(t);
        if (ac && !ac.signal.aborted) {
          this.o.emit({ type: 'watch-cancel', target: t });
          ac.abort();
        }
      }
    }
    this.enqueue(b);
  }

  private enqueue(b: Batch): void {
    if (this.queued) {
      for (const p of b.paths) this.queued.paths.add(p);
      for (const t of b.targets) this.queued.targets.add(t);
      this.queued.reload ||= b.reload;
      this.queued.all ||= b.all;
    } else this.queued = b;
    if (!this.building) this.idle = this.drain();
  }

  /** Builds until no changes are queued; one build at a time. */
  private async drain(): Promise<void> {
    this.building = true;
    try {
      while (this.queued && !this.stopped) {
        const b = this.queued;
        this.queued = undefined;
        await this.cycle(b);
        if (!this.stopped && !this.queued && !this.firstBuild) this.ready();
      }
    } finally {
      this.building = false;
    }
  }

  private async cycle(b: Batch): Promise<void> {
    // After a reload every target of the goals is considered again (the rebuilder finds what the
    // new declarations changed); after a failed one, only what the other changes touched.
    const full = (b.reload && (await this.reload())) || b.all;
    const scope = full
      ? new Set(this.goals.closure)
      : staleScope(this.loaded.graph, this.goals.closure, [...b.targets, ...this.unfinished], new Set([...this.failed, ...this.unfinished]));
    if (scope.size > 0) await this.build(scope);
    this.firstBuild = false;
  }

  /** A fresh import of the targets module; false (and the last good graph kept) when it fails. */
  private async reload(): Promise<boolean> {
    let next: Loaded;
    let goals: { goals: string[]; closure: Set<string> };
    try {
      next = await loadTargets(this.o.root, this.o.file, { fresh: true, ...(this.o.defines ? { defines: this.o.defines } : {}) });
      goals = resolveGoals(next.graph, this.o.goalArgs);
    } catch (e) {
      if (!(e instanceof DeclarationError)) throw e;
      this.o.emit({ type: 'watch-reload-error', diagnostics: e.diagnostics });
      return false;
    }
    const before = new Set(this.loaded.graph.byName.keys());
    const after = new Set(next.graph.byName.keys());
    this.loaded = next;
    this.goals = goals;
    this.replan();
    this.o.emit({
      type: 'watch-reload',
      targets: after.size,
      added: [...after].filter((n) => !before.has(n)).sort(),
      removed: [...before].filter((n) => !after.has(n)).sort(),
    });
    return true;
  }

  private async build(scope: Set<string>): Promise<void> {
    const g = this.loaded.graph;
    for (const n of scope) if (!g.byName.get(n)!.alias) this.unfinished.add(n);
    this.buildAbort = new AbortController();
    const buildSignal = this.buildAbort.signal;
    if (this.stopped) this.buildAbort.abort();
    const track = (e: BuildEvent) => {
      switch (e.type) {
        case 'decision':
          if (e.action === 'fresh' || e.action === 'keep') this.settled(e.target, true);
          break;
        case 'finish':
          this.running.delete(e.target);
          if (e.status === 'built') this.settled(e.target, true);
          else if (e.status === 'failed') this.settled(e.target, false);
          break;
        case 'blocked':
          this.settled(e.target, false);
          break;
      }
      this.o.emit(e);
    };
    try {
      await runBuild({
        ...this.o.session,
        root: this.o.root,
        loaded: this.loaded,
        goals: this.goals.goals,
        closure: scope,
        always: this.o.always && this.firstBuild,
        jobs: this.o.jobs,
        keepGoing: this.o.keepGoing,
        dryRun: false,
        emit: track,
        signal: buildSignal,
        ...(this.o.env ? { env: this.o.env } : {}),
        statCache: (this.statCache ??= new StateStore(this.o.root).loadStatCache()),
        // Writing 100,000 entries after every save costs more than the build it follows: the first
        // build's hashing is kept on disk at once, later updates when watch mode ends.
        saveStatCache: this.firstBuild,
        targetSignal: (name) => {
          const ac = new AbortController();
          this.running.set(name, ac);
          return AbortSignal.any([buildSignal, ac.signal]);
        },
      });
    } catch (e) {
      // A fault of the engine while building must not end the session: say it and keep watching.
      this.o.emit({ type: 'warning', message: `the build stopped on an internal error: ${(e as Error).message ?? String(e)}` });
    } finally {
      this.running.clear();
    }
  }

  private saveStatCache(): void {
    if (!this.statCache || this.firstBuild) return;
    try {
      new StateStore(this.o.root).saveStatCache(this.statCache);
    } catch (e) {
      this.o.emit({ type: 'warning', message: `could not save the stat cache: ${(e as Error).message}` });
    }
  }

  private settled(name: string, ok: boolean): void {
    this.unfinished.delete(name);
    if (ok) this.failed.delete(name);
    else this.failed.add(name);
  }
}
