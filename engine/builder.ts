// The Builder: walks the goals' targets in dependency order (scheduler), asks the rebuilder
// whether each must run (decide), runs the stale ones (run), and records the outcome (state).
// Staleness is decided when a target's dependencies have finished, not up front, because early
// cutoff needs their new output hashes. Everything it has to say goes out as events.
import { decide, type Decision, type Reason } from './decide.ts';
import { Disk, removeTempLitter } from './disk.ts';
import type { BuildEvent, Listener } from './events.ts';
import { computeFingerprint, type Fingerprint } from './fingerprint.ts';
import type { Graph } from './graph.ts';
import { Hasher, MISSING } from './hash.ts';
import { runTarget, tailOf } from './run.ts';
import type { SlurmExecutor } from './executors/slurm.ts';
import type { Artifacts, CacheHit } from './artifacts.ts';
import { BlobError } from './store.ts';
import { Scheduler } from './schedule.ts';
import type { Target } from './spec.ts';
import { asRecord, unique, type PathHashes } from './path-hashes.ts';
import { comparableHistory, type StateStore, type SuccessRecord } from './state.ts';
import type { TargetOutcome } from './types.ts';
import path from 'node:path';
import { normalizeRel } from './paths.ts';

export interface BuildOptions {
  root: string;
  graph: Graph;
  /** Targets the goals reach. */
  closure: Set<string>;
  /** Targets forced to run (-B). */
  forced: Set<string>;
  jobs: number;
  keepGoing: boolean;
  dryRun: boolean;
  env: NodeJS.ProcessEnv;
  /** Hash of the targets module and the local modules it imports: part of every action's identity. */
  moduleHash: string;
  state: StateStore;
  hasher: Hasher;
  buildId: string;
  goals: string[];
  signal: AbortSignal;
  emit: Listener;
  /** Cap on Slurm jobs in the queue at once (--slurm-jobs); -j limits only local jobs. */
  slurmJobs?: number;
  /** Watch mode's hook to cancel one running target (--watch-restart); it also follows `signal`. */
  targetSignal?: (name: string) => AbortSignal | undefined;
  /** The store and the artifact cache: outputs are preserved before reruns, cached after success. */
  artifacts?: Artifacts;
  /**
   * Targets the settled stamp vouches for (engine/stamp.ts): none of their files moved since a
   * build that left them fresh, and nothing upstream of them is to be decided. Settled as fresh
   * without a fingerprint.
   */
  knownFresh?: Set<string>;
  /**
   * A narrowed build (engine/narrow.ts): the goals' targets outside the graph, all fresh by the
   * stamp's word. Reported as decided, so that a build reads the same whether narrowed or not.
   */
  outside?: { fresh: string[]; targets: number };
  /** The stamp's paths the native probe confirmed, for the build-start event. */
  probed?: number;
  /** What became of the targets module, for the build-start event. */
  module?: string;
  /** Whether the build was narrowed, and why not, for the build-start event. */
  narrowed?: string;
}

export interface BuildResult {
  ok: boolean;
  interrupted: boolean;
  outcomes: Map<string, TargetOutcome>;
  ran: string[];
}

type Status = TargetOutcome['status'];
const NOT_OK: ReadonlySet<Status> = new Set(['failed', 'blocked', 'skipped']);
/** Shared empty list: most targets have no failed dependency. Never pushed to. */
const NONE: string[] = [];
/** The reasons of every fresh decision event: one frozen empty list, not one per target. */
const NO_REASONS = Object.freeze([]) as unknown as Reason[];

export function build(o: BuildOptions): Promise<BuildResult> {
  return new Builder(o).run();
}

class Builder {
  private readonly sched: Scheduler;
  private readonly outcomes = new Map<string, TargetOutcome>();
  private readonly queue: Array<{ t: Target; fp: Fingerprint; reasons: Reason[]; degraded: boolean; hit?: CacheHit | undefined }> = [];
  /** Dry run: targets that would run, so dependents "may run". */
  private readonly willChange = new Set<string>();
  private readonly ran: string[] = [];
  private readonly disk: Disk;
  /** Created on the first Slurm target: a local build never loads the Slurm executor. */
  private slurm: Promise<SlurmExecutor> | undefined;
  private stopping = false;
  private finished = false;
  /** Targets whose execute() has not returned: a slot given back early leaves their bookkeeping still to do. */
  private executing = 0;
  private done!: (r: BuildResult) => void;
  /** Slurm targets in the queue: with every local slot taken, only they could still start. */
  private batchQueued = 0;
  /** Events held back while a slot given back early starts the next target (see execute). */
  private held: BuildEvent[] | undefined;
  /** Targets settled failed, blocked or skipped so far. */
  private notOkSettled = 0;
  private readonly started = Date.now();

  constructor(private readonly o: BuildOptions) {
    const g = o.graph;
    this.disk = new Disk(o.root);
    // A whole-graph build (the usual case) needs no filtering by scope: every target is in it.
    const whole = o.closure.size === g.targets.length;
    this.sched = new Scheduler(
      whole ? g.order : g.order.filter((n) => o.closure.has(n)),
      (n) => g.depsOf.get(n)!,
      (n) => g.dependentsOf.get(n)!,
      whole ? undefined : (n) => o.closure.has(n),
      Math.max(1, o.jobs),
      Math.max(1, o.slurmJobs ?? 100),
    );
  }

  private emit(e: BuildEvent): void {
    if (this.held) this.held.push(e);
    else this.o.emit(e);
  }

  run(): Promise<BuildResult> {
    let runnable = 0;
    for (const n of this.o.closure) if (!this.o.graph.byName.get(n)!.alias) runnable++;
    const outside = this.o.outside;
    const start: BuildEvent = { type: 'build-start', buildId: this.o.buildId, goals: this.o.goals, targets: this.o.closure.size + (outside?.targets ?? 0), runnable: runnable + (outside?.fresh.length ?? 0), jobs: this.sched.jobs, dryRun: this.o.dryRun };
    // Every target outside a narrowed build's graph is fresh by the stamp's word, aliases included.
    if (this.o.knownFresh) start.vouched = this.o.knownFresh.size + (outside?.targets ?? 0);
    if (this.o.probed !== undefined) start.probed = this.o.probed;
    if (this.o.module !== undefined) start.module = this.o.module;
    if (this.o.narrowed !== undefined) start.narrowed = this.o.narrowed;
    this.emit(start);
    for (const w of this.o.state.warnings) this.emit({ type: 'warning', message: w });
    for (const target of outside?.fresh ?? NONE) this.emit({ type: 'decision', target, action: 'fresh', reasons: NO_REASONS });
    return new Promise((resolve) => {
      this.done = resolve;
      this.o.signal.addEventListener('abort', () => this.pump(), { once: true });
      this.pump();
    });
  }

  private pump(): void {
    do {
      for (let n = this.sched.next(); n !== undefined; n = this.sched.next()) this.consider(n);
      for (let i = 0; i < this.queue.length; ) {
        const item = this.queue[i]!;
        if (this.o.signal.aborted || (this.stopping && !item.t.runOnFailure)) {
          this.queue.splice(i, 1);
          if (item.t.executor === 'slurm') this.batchQueued--;
          this.settle(item.t.name, this.outcome(item.t, 'skipped', {}));
          this.emit({ type: 'skipped', target: item.t.name, why: this.o.signal.aborted ? 'interrupted' : 'the build stopped after a failure (use -k to keep going)' });
          continue;
        }
        // With every slot taken nothing further can start: the rest of the queue waits for the
        // next release (a clean 10k build queued ~1,000 targets, scanned at every start). Not
        // while stopping or interrupted: every queued target is then to be skipped now.
        if (!this.stopping && !this.o.signal.aborted && !this.sched.anyFree(this.batchQueued > 0)) break;
        const remote = item.t.executor === 'slurm';
        if (!this.sched.canStart(item.t.pool, remote)) { i++; continue; }
        this.queue.splice(i, 1);
        if (remote) this.batchQueued--;
        this.sched.started(item.t.pool, remote);
        this.executing++;
        // The slot is given back once: when the command has ended well (see execute), or here.
        let slot = true;
        const release = () => {
          if (!slot) return;
          slot = false;
          this.sched.finished(item.t.pool, remote);
          this.pump();
        };
        void this.execute(item.t, item.fp, item.degraded, item.hit, release).catch((e: unknown) => this.crashed(item.t, e)).then(() => {
          this.executing--;
          if (slot) release();
          else this.pump();
        });
      }
      // Skipping releases more targets: go round until nothing new is ready.
    } while (!this.sched.idle);
    if (this.sched.running === 0 && this.executing === 0 && this.queue.length === 0 && !this.finished) {
      this.finished = true;
      this.finish();
    }
  }

  private settle(name: string, outcome: TargetOutcome): void {
    this.outcomes.set(name, outcome);
    if (NOT_OK.has(outcome.status)) this.notOkSettled++;
    this.sched.settle(name);
  }

  private outcome(t: Target, status: Status, extra?: Partial<TargetOutcome>): TargetOutcome {
    const out: TargetOutcome = { name: t.name, status, outputs: t.outputs, deps: this.o.graph.depsOf.get(t.name)! };
    if (typeof t.run === 'string') out.command = t.run;
    else if (t.run) out.command = `action ${t.name}`;
    if (t.log) out.log = t.log;
    return extra ? Object.assign(out, extra) : out;
  }

  private freshOutcome(t: Target, rec: SuccessRecord | undefined, status: 'fresh' | 'kept' = 'fresh'): TargetOutcome {
    if (!rec) return this.outcome(t, status);
    // One literal holding the record's fields. Added one by one to outcome()'s literal, they cost
    // ~1 KB of heap per target, most of it promoted to the old space before it died (heap
    // sampling of a 100,000-target no-op: ~100 MB against ~15 MB; 2.5 s against 2.05 s).
    const oc: TargetOutcome = { name: t.name, status, outputs: t.outputs, deps: this.o.graph.depsOf.get(t.name)!, buildId: rec.b, durationMs: rec.ms, exitCode: 0 };
    if (typeof t.run === 'string') oc.command = t.run;
    else if (t.run) oc.command = `action ${t.name}`;
    if (t.log) oc.log = t.log;
    return oc;
  }

  /** The rebuilder's step for one target whose dependencies have all settled. */
  private consider(name: string): void {
    const o = this.o;
    const t = o.graph.byName.get(name)!;
    const all = o.graph.depsOf.get(name)!;
    // Whole-graph builds (the usual case) keep every dependency: no copy per target.
    const deps = o.closure.size === o.graph.targets.length ? all : all.filter((d) => o.closure.has(d));
    let notOk: string[] = NONE;
    // Until something fails, is blocked or skipped, no dependency can have: not looked up.
    if (this.notOkSettled) for (const d of deps) if (NOT_OK.has(this.outcomes.get(d)!.status)) (notOk === NONE ? (notOk = []) : notOk).push(d);
    if (o.signal.aborted) {
      this.settle(name, this.outcome(t, 'skipped', {}));
      return;
    }
    if (notOk.length && !t.runOnFailure) {
      const roots = new Set<string>();
      let anyFailed = false;
      for (const d of notOk) {
        const oc = this.outcomes.get(d)!;
        if (oc.status === 'failed') { roots.add(d); anyFailed = true; }
        else if (oc.status === 'blocked') { for (const b of oc.blockedBy ?? []) roots.add(b); anyFailed = true; }
      }
      if (anyFailed) {
        this.settle(name, this.outcome(t, 'blocked', { blockedBy: [...roots] }));
        this.emit({ type: 'blocked', target: name, by: [...roots] });
      } else {
        this.settle(name, this.outcome(t, 'skipped', {}));
        this.emit({ type: 'skipped', target: name, why: 'its dependencies were not built' });
      }
      return;
    }
    if (this.stopping && !t.runOnFailure) {
      this.settle(name, this.outcome(t, 'skipped', {}));
      this.emit({ type: 'skipped', target: name, why: 'the build stopped after a failure (use -k to keep going)' });
      return;
    }
    if (t.alias) {
      this.settle(name, this.outcome(t, 'fresh', {}));
      if (deps.some((d) => this.willChange.has(d))) this.willChange.add(name);
      return;
    }
    if (o.knownFresh?.has(name)) {
      this.emit({ type: 'decision', target: name, action: 'fresh', reasons: NO_REASONS });
      this.settle(name, this.freshOutcome(t, o.state.history.get(name)?.ok));
      return;
    }
    let fp: Fingerprint;
    let outputs: PathHashes;
    try {
      fp = computeFingerprint(t, o.hasher, o.env, o.moduleHash);
      const listed: PathHashes = [];
      for (const out of t.outputs) listed.push(out, o.hasher.hashPath(out));
      outputs = unique(listed);
    } catch (e) {
      // An unreadable input (permissions, I/O error): name it and fail this target.
      const msg = `cannot hash its inputs or outputs: ${(e as Error).message}`;
      this.settle(name, this.outcome(t, 'failed', { error: msg }));
      this.emit({ type: 'finish', target: name, status: 'failed', durationMs: 0, error: msg, tail: [] });
      if (!o.keepGoing) this.stopping = true;
      return;
    }
    const history = comparableHistory(o.state.history.get(name), fp.parts.params);
    const decision: Decision = decide({ policy: t.rebuild, forced: o.forced.has(name), history, now: fp.parts, outputs, failedDeps: notOk });
    const rec = history?.ok;
    if (decision.action !== 'run') {
      // Only a dry run tells what may run because something upstream will.
      if (o.dryRun && decision.action === 'fresh' && deps.some((d) => this.willChange.has(d))) {
        this.willChange.add(name);
        this.emit({ type: 'decision', target: name, action: 'may-run', reasons: [], ...cmd(t) });
      } else {
        this.emit({ type: 'decision', target: name, action: decision.action, reasons: decision.action === 'keep' ? decision.reasons : NO_REASONS });
      }
      this.settle(name, this.freshOutcome(t, rec, decision.action === 'keep' ? 'kept' : 'fresh'));
      return;
    }
    const hit = o.artifacts?.cacheable(t, o.forced.has(name), notOk.length > 0) ? o.artifacts.lookup(t, fp.digest, asRecord(outputs), !o.dryRun) : undefined;
    if (hit) decision.reasons.push({ kind: 'cached', build: hit.entry.buildId, from: hit.from });
    this.emit({ type: 'decision', target: name, action: 'run', reasons: decision.reasons, ...cmd(t), ...(rec ? { expectedMs: rec.ms } : {}) });
    if (o.dryRun) {
      this.willChange.add(name);
      this.settle(name, this.outcome(t, 'fresh', {}));
      return;
    }
    this.queue.push({ t, fp, reasons: decision.reasons, degraded: notOk.length > 0, hit });
    if (t.executor === 'slurm') this.batchQueued++;
  }

  private async execute(t: Target, fp: Fingerprint, degraded: boolean, hit: CacheHit | undefined, release: () => void): Promise<void> {
    const o = this.o;
    const name = t.name;
    // From here on files change (this target's, and any a command writes undeclared): no stat
    // taken before the build ran anything is used again.
    o.hasher.dropPrefetch();
    if (o.state.history.get(name)?.unfinished) {
      // Killed mid-run last time: its half-written temp files may lie beside the outputs.
      const litter = t.outputs.flatMap((p) => removeTempLitter(path.join(o.root, p)));
      if (litter.length) this.emit({ type: 'info', target: name, message: `removed ${litter.length} temp file(s) left by a killed build: ${litter.map((f) => path.relative(o.root, f)).join(', ')}` });
    }
    // The last good record, before this run replaces it: its cache entry tells which preserved
    // blobs stay referenced once this run succeeds.
    const prev = o.state.history.get(name)?.ok;
    const preserved = this.preserveOutputs(t);
    if (hit && this.restoreFromCache(t, fp, hit, prev)) return;
    const t0 = Date.now();
    const last: string[] = [];
    o.state.recordStart(name, o.buildId);
    const start: BuildEvent = { type: 'start', target: name, command: typeof t.run === 'string' ? t.run : `action ${name}` };
    if (t.log) start.log = t.log;
    const expected = o.state.history.get(name)?.ok?.ms;
    if (expected !== undefined) start.expectedMs = expected;
    if (t.executor === 'slurm') start.executor = 'slurm';
    this.emit(start);
    const inputs = fp.parts.inputs.filter((k, i) => i % 2 === 0 && !k.startsWith('glob:'));
    const targetSignal = o.targetSignal?.(name) ?? o.signal;
    const res = await runTarget({
      root: o.root,
      target: t,
      inputs,
      buildId: o.buildId,
      signal: targetSignal,
      env: o.env,
      onLine: (line) => {
        last.push(line);
        if (last.length > 20) last.shift();
        this.emit({ type: 'output', target: name, line });
      },
      outcomes: () => this.allOutcomes(),
      writeFile: async (rel, data) => {
        const own = ownOutput(t, rel);
        try {
          this.disk.writeAtomic(own, data);
        } catch (e) {
          // ENOSPC, ENOTDIR...: Node's message does not always say which file.
          throw new Error(`cannot write '${own}': ${(e as Error).message}`);
        }
      },
      fingerprint: fp.digest,
      ...(t.executor === 'slurm' ? { slurm: await this.slurmExecutor() } : {}),
    });
    const job = res.jobId ? { job: res.jobId, ...(res.node ? { node: res.node } : {}) } : {};
    const jobEv = res.jobId ? { jobId: res.jobId, ...(res.node ? { node: res.node } : {}) } : {};
    const ms = Date.now() - t0;
    if (o.signal.aborted || targetSignal.aborted) {
      // No record: the start marker stays, so the next build reruns exactly this target.
      this.settle(name, this.outcome(t, 'skipped', { error: 'interrupted', ...preserved }));
      this.emit({ type: 'finish', target: name, status: 'interrupted', durationMs: ms, ...preserved });
      return;
    }
    let error = res.error;
    // A list, as the record keeps it: an object would drop an output named __proto__.
    const out: PathHashes = [];
    // With -j2 and more, a command that exited 0 and left every declared output gives its slot
    // back at once, before its outputs are hashed and its success recorded (~0.1 ms of this thread
    // that the next command no longer waits for: a clean 10k build ~3% faster). What that start
    // reports is held back until this target's finish, so no start shows before the finish that
    // freed its slot, and the duration is this run's own. Output that is there is what decides
    // success without -k: only when every output is a regular file it can read (a missing one, a
    // FIFO, one it may not read would fail the target, and nothing may start after that). A
    // directory output waits for its hashing. Only a read error in the instant between this
    // look and the hashing (EIO, a file swapped) fails the target after the next one started.
    // Not with -j1, whose output reads one target after another.
    let held: BuildEvent[] | undefined;
    if (res.ok && this.sched.jobs > 1 && typeof t.run === 'string' && t.executor !== 'slurm' && t.outputs.every((p) => this.disk.readableFile(p))) {
      this.held = [];
      try {
        release();
      } finally {
        held = this.held;
        this.held = undefined;
      }
    }
    const flush = () => {
      if (!held) return;
      const hs = held;
      held = undefined;
      for (const e of hs) this.o.emit(e);
    };
    try {
      if (res.ok) {
        for (const p of t.outputs) {
          o.hasher.invalidate(p);
          const h = o.hasher.hashPath(p);
          if (h === MISSING) { error = `declared output '${p}' was not created`; break; }
          out.push(p, h);
        }
      }
      if (error === undefined) {
        const rec: SuccessRecord = { k: 'ok', t: name, cmd: fp.parts.command, params: fp.parts.params, env: fp.parts.env, in: fp.parts.inputs, out: unique(out), ms, b: o.buildId, ...job };
        if (degraded) rec.degraded = true;
        o.state.recordSuccess(rec);
        this.ran.push(name);
        this.settle(name, this.outcome(t, 'built', { exitCode: res.exitCode, durationMs: ms, buildId: o.buildId }));
        const fin: BuildEvent = { type: 'finish', target: name, status: 'built', durationMs: ms, exitCode: res.exitCode, ...jobEv };
        if (t.log) fin.log = t.log;
        this.emit(fin);
        if (held) {
          // Its slot went early: now the starts it made show, and its dependents, ready since
          // its settle, get their turn before the artifact cache store below.
          flush();
          this.pump();
        }
        this.remember(t, fp, asRecord(out), ms, degraded, prev);
        return;
      }
      o.state.recordFailure({ k: 'fail', t: name, b: o.buildId, ms, code: res.exitCode, err: error, cmd: fp.parts.command, ...job });
      this.ran.push(name);
      const tail = t.log ? tailOf(path.join(o.root, t.log)) : last;
      this.settle(name, this.outcome(t, 'failed', { exitCode: res.exitCode, durationMs: ms, buildId: o.buildId, error, ...preserved }));
      const fin: BuildEvent = { type: 'finish', target: name, status: 'failed', durationMs: ms, exitCode: res.exitCode, error, tail, ...jobEv, ...preserved };
      if (t.log) fin.log = t.log;
      this.emit(fin);
      if (!o.keepGoing) this.stopping = true;
    } catch (e) {
      if (!held) throw e;
      // Its slot already went: its failure shows before what started there.
      this.crashed(t, e);
    } finally {
      flush();
    }
  }

  /**
   * Before a target reruns (or is restored over): copy its present outputs into the store, so a
   * failed or killed run cannot destroy the last good ones. Returns where those are kept.
   */
  private preserveOutputs(t: Target): { preserved?: { buildId: string; path: string } } {
    const o = this.o;
    if (!o.artifacts) return {};
    try {
      const p = o.artifacts.preserve(t, o.state.history.get(t.name)?.ok, o.hasher, o.buildId);
      if (p.copied) this.emit({ type: 'preserved', target: t.name, ...p.copied });
      return p.good ? { preserved: p.good } : {};
    } catch (e) {
      // A full disk must not stop the build, but nobody should believe a copy exists.
      this.emit({ type: 'warning', message: `${t.name}: could not preserve its outputs before the rerun: ${(e as Error).message}` });
      return {};
    }
  }

  /** A cache hit: write its outputs (verified), record them as produced by their original build. */
  private restoreFromCache(t: Target, fp: Fingerprint, hit: CacheHit, prev: SuccessRecord | undefined): boolean {
    const o = this.o;
    const t0 = Date.now();
    let r: { files: number; bytes: number };
    try {
      r = o.artifacts!.restore(hit, o.hasher);
    } catch (e) {
      if (!(e instanceof BlobError) && (e as NodeJS.ErrnoException).code === undefined) throw e;
      this.emit({ type: 'warning', message: `${t.name}: the cache entry of build ${hit.entry.buildId} is not usable (${(e as Error).message}); running the command instead` });
      return false;
    }
    const out: PathHashes = [];
    for (const p of t.outputs) out.push(p, o.hasher.hashPath(p));
    const ms = Date.now() - t0;
    const e = hit.entry;
    o.state.recordSuccess({ k: 'ok', t: t.name, cmd: fp.parts.command, params: fp.parts.params, env: fp.parts.env, in: fp.parts.inputs, out: unique(out), ms: e.ms, b: e.buildId });
    this.released(t, prev);
    this.settle(t.name, this.outcome(t, 'built', { exitCode: 0, durationMs: ms, buildId: e.buildId, restoredFrom: e.buildId }));
    this.emit({ type: 'finish', target: t.name, status: 'built', durationMs: ms, exitCode: 0, restored: { buildId: e.buildId, from: hit.from, ...r } });
    return true;
  }

  /** After a success the copy preserved before it has done its job: let it go. */
  private released(t: Target, prev: SuccessRecord | undefined): void {
    try {
      this.o.artifacts?.succeeded(t, prev);
    } catch { /* a manifest that cannot be removed costs disk space only */ }
  }

  /** After a success: store the outputs in the artifact cache under the fingerprint. */
  private remember(t: Target, fp: Fingerprint, out: Record<string, string>, ms: number, degraded: boolean, prev: SuccessRecord | undefined): void {
    const o = this.o;
    this.released(t, prev);
    if (!o.artifacts?.worthStoring(t, ms, degraded)) return;
    try {
      o.artifacts.remember(t, fp.digest, out, o.buildId, ms, o.hasher);
    } catch (e) {
      this.emit({ type: 'warning', message: `${t.name}: could not store its outputs in the artifact cache: ${(e as Error).message}` });
    }
  }

  /** An engine-side error while running a target (e.g. its output cannot be read): the target fails. */
  private crashed(t: Target, e: unknown): void {
    const error = `hubmake could not finish this target: ${(e as Error).message ?? String(e)}`;
    if (this.outcomes.has(t.name)) return;
    this.settle(t.name, this.outcome(t, 'failed', { error }));
    this.emit({ type: 'finish', target: t.name, status: 'failed', durationMs: 0, error, tail: [] });
    if (!this.o.keepGoing) this.stopping = true;
  }

  private slurmExecutor(): Promise<SlurmExecutor> {
    const o = this.o;
    this.slurm ??= import('./executors/slurm.ts').then(({ SlurmExecutor }) => new SlurmExecutor({ root: o.root, env: o.env, state: o.state, emit: o.emit, buildId: o.buildId }));
    return this.slurm;
  }

  /** This build's outcomes, and for targets outside the goals what the state remembers. */
  private allOutcomes(): TargetOutcome[] {
    return this.o.graph.targets.map((t) => {
      const now = this.outcomes.get(t.name);
      if (now) return now;
      const h = this.o.state.history.get(t.name);
      if (h?.fail) return this.outcome(t, 'failed', { buildId: h.fail.b, durationMs: h.fail.ms, exitCode: h.fail.code, error: h.fail.err });
      if (h?.ok) return this.outcome(t, 'fresh', { buildId: h.ok.b, durationMs: h.ok.ms, exitCode: 0 });
      return this.outcome(t, 'skipped', {});
    });
  }

  private finish(): void {
    const o = this.o;
    const counts: Record<Status, number> = { built: 0, fresh: 0, kept: 0, failed: 0, blocked: 0, skipped: 0 };
    for (const [n, oc] of this.outcomes) if (!o.graph.byName.get(n)!.alias) counts[oc.status]++;
    counts.fresh += o.outside?.fresh.length ?? 0;
    const interrupted = o.signal.aborted;
    const ok = !interrupted && counts.failed === 0 && counts.blocked === 0 && counts.skipped === 0;
    this.emit({ type: 'build-end', buildId: o.buildId, ok, interrupted, counts, durationMs: Date.now() - this.started, ran: this.ran, ...(o.hasher.statsAhead ? { statsAhead: o.hasher.statsAhead } : {}) });
    this.done({ ok, interrupted, outcomes: this.outcomes, ran: this.ran });
  }
}

function cmd(t: Target): { command?: string } {
  return typeof t.run === 'string' ? { command: t.run } : t.run ? { command: `action ${t.name}` } : {};
}

/** ctx.writeFile writes only the target's own outputs: the engine never writes a file no target declares. */
function ownOutput(t: Target, rel: string): string {
  const n = normalizeRel(rel);
  if (t.outputs.includes(n) || t.outputs.some((o) => o.endsWith('/') && n.startsWith(o) && !n.slice(o.length).split('/').includes('..'))) return n;
  throw new Error(`ctx.writeFile('${rel}'): '${n}' is not an output of target '${t.name}'; declare it in \`outputs\` (the build writes only declared outputs)`);
}
