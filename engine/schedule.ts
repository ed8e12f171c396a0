// The scheduler: dependency order, the -j limit and pools. It knows nothing of staleness (that is
// the rebuilder's job, decide.ts); it only says which target may be considered next and when a
// slot is free to run one.

export class Scheduler {
  private readonly waiting = new Map<string, number>();
  private readonly ready: string[] = [];
  private readonly busyPools = new Set<string>();
  /** Targets running now, local and remote together. */
  running = 0;
  /** Of those, the ones running as batch jobs (Slurm): they take no local slot. */
  private remote = 0;

  constructor(
    names: Iterable<string>,
    private readonly depsOf: (n: string) => string[],
    private readonly dependentsOf: (n: string) => string[],
    /** Whether a target takes part in this build; undefined: all do. */
    private readonly inScope: ((n: string) => boolean) | undefined,
    readonly jobs: number,
    /** Cap on batch jobs in the queue at once (--slurm-jobs). */
    readonly remoteJobs = 100,
  ) {
    for (const n of names) {
      const ds = depsOf(n);
      const count = inScope ? ds.filter(inScope).length : ds.length;
      this.waiting.set(n, count);
      if (count === 0) this.ready.push(n);
    }
    // Work through the ready queue in declaration order: deterministic, and close to what users wrote.
    this.ready.reverse();
  }

  /** A target whose dependencies have all settled, or undefined. */
  next(): string | undefined {
    return this.ready.pop();
  }

  get idle(): boolean {
    return this.ready.length === 0;
  }

  /** Marks a target settled (in any way) and releases dependents whose last dependency it was. */
  settle(n: string): void {
    for (const d of this.dependentsOf(n)) {
      const c = this.waiting.get(d);
      if (c === undefined) continue;
      this.waiting.set(d, c - 1);
      if (c - 1 === 0) this.ready.push(d);
    }
  }

  /** Whether any target could start now: a local slot is free, or a batch slot for a waiting batch target. */
  anyFree(batchWaiting: boolean): boolean {
    return this.running - this.remote < this.jobs || (batchWaiting && this.remote < this.remoteJobs);
  }

  canStart(pool: string | undefined, remote = false): boolean {
    const free = remote ? this.remote < this.remoteJobs : this.running - this.remote < this.jobs;
    return free && (pool === undefined || !this.busyPools.has(pool));
  }

  started(pool: string | undefined, remote = false): void {
    this.running++;
    if (remote) this.remote++;
    if (pool !== undefined) this.busyPools.add(pool);
  }

  finished(pool: string | undefined, remote = false): void {
    this.running--;
    if (remote) this.remote--;
    if (pool !== undefined) this.busyPools.delete(pool);
  }
}
