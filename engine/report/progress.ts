// The state of a build as the events tell it, for the live view: which targets run now and for
// how long, what is done, to do and failed, and how long the rest should take going by the
// previous successful runs. A pure fold over events; the clock is passed in.
import type { BuildEvent } from '../events.ts';

export interface Running {
  target: string;
  startedAt: number;
  expectedMs: number | undefined;
}

export interface ProgressView {
  running: Array<Running & { elapsedMs: number }>;
  /** Targets that reached a verdict: fresh, kept or built. */
  done: number;
  failed: number;
  /** Blocked by a failure, or not started. */
  notBuilt: number;
  /** Not decided yet, waiting to run, or running. */
  todo: number;
  total: number;
  /** Expected time until the work known to be ahead is done; undefined when nothing is known. */
  remainingMs: number | undefined;
  /** Some running or waiting target has no previous run to go by. */
  unknownDurations: boolean;
}

export class Progress {
  active = false;
  private total = 0;
  private jobs = 1;
  private done = 0;
  private failed = 0;
  private notBuilt = 0;
  private readonly running = new Map<string, Running>();
  /** Decided to run, not started yet, with the duration of their last run when known. */
  private readonly waiting = new Map<string, number | undefined>();

  apply(e: BuildEvent, now: number): void {
    switch (e.type) {
      case 'build-start':
        this.active = !e.dryRun;
        this.total = e.runnable ?? e.targets;
        this.jobs = Math.max(1, e.jobs);
        this.done = this.failed = this.notBuilt = 0;
        this.running.clear();
        this.waiting.clear();
        break;
      case 'decision':
        if (e.action === 'fresh' || e.action === 'keep') this.done++;
        else if (e.action === 'run') this.waiting.set(e.target, e.expectedMs);
        break;
      case 'start':
        this.waiting.delete(e.target);
        this.running.set(e.target, { target: e.target, startedAt: now, expectedMs: e.expectedMs });
        break;
      case 'finish':
        this.running.delete(e.target);
        this.waiting.delete(e.target);
        if (e.status === 'built') this.done++;
        else if (e.status === 'failed') this.failed++;
        else this.notBuilt++;
        break;
      case 'blocked':
        this.notBuilt++;
        break;
      case 'skipped':
        // Queued targets skipped on a stop were decided 'run' and never started.
        this.waiting.delete(e.target);
        this.notBuilt++;
        break;
      case 'build-end':
        this.active = false;
        this.running.clear();
        this.waiting.clear();
        break;
    }
  }

  view(now: number): ProgressView {
    const running = [...this.running.values()].map((r) => ({ ...r, elapsedMs: Math.max(0, now - r.startedAt) }));
    let unknown = false;
    let work = 0;
    let longest = 0;
    for (const r of running) {
      if (r.expectedMs === undefined) { unknown = true; continue; }
      const left = Math.max(0, r.expectedMs - r.elapsedMs);
      work += left;
      longest = Math.max(longest, left);
    }
    for (const ms of this.waiting.values()) {
      if (ms === undefined) unknown = true;
      else work += ms;
    }
    const known = running.some((r) => r.expectedMs !== undefined) || [...this.waiting.values()].some((ms) => ms !== undefined);
    // Work spread over the job slots, but never less than the longest single remainder.
    const remainingMs = known ? Math.max(longest, Math.round(work / this.jobs)) : undefined;
    const todo = Math.max(0, this.total - this.done - this.failed - this.notBuilt);
    return { running, done: this.done, failed: this.failed, notBuilt: this.notBuilt, todo, total: this.total, remainingMs, unknownDurations: unknown };
  }
}
