// The public declaration API of hubmake. Targets modules import these types; everything
// else in engine/ is an implementation detail behind them.

/** Settings for running a target on Slurm instead of locally. */
export interface SlurmOptions {
  partition?: string;
  time?: string;
  cpus?: number;
  mem?: string;
  gres?: string;
  account?: string;
  args?: string[];
}

/** What a target spec declares. All paths are relative to the root directory. */
export interface TargetSpec {
  /** Defaults to outputs[0]. A spec with deps and no outputs/run is an alias. */
  name?: string;
  /** Files, or directories when the path ends with `/` (hashed as a tree). */
  outputs?: string[];
  /** File paths, directory paths or fast-glob patterns. */
  inputs?: string[];
  /** Names of targets that must be built first (no file link needed). */
  deps?: string[];
  /** A JSON value hashed in canonical form. */
  params?: unknown;
  /** Names of environment variables whose values are part of the fingerprint. */
  env?: string[];
  /** A shell command (run from the root) or an in-process action. */
  run?: string | Action;
  /** File that receives the command's stdout and stderr (kept on failure). */
  log?: string;
  /** 'missing': rebuilt only when an output is absent, never because inputs changed. */
  rebuild?: 'stale' | 'missing';
  /** Shown by --list. */
  description?: string;
  /**
   * Run even when dependencies failed or were blocked (reports, summaries). Such a target
   * sees the outcome of this build through ctx.outcomes() and reruns whenever one of its
   * dependencies did not succeed.
   */
  runOnFailure?: boolean;
  /** Targets naming the same pool never run at the same time (e.g. tools that share a scratch file). */
  pool?: string;
  /**
   * The artifact cache: true stores every successful run's outputs, false none; unset (the
   * default) stores them when the run took at least the cache's minimum time (100 ms unless
   * --cache-min-ms says otherwise): rerunning a quicker command costs less than storing and
   * restoring its outputs. Lookups are made either way unless false.
   */
  cache?: boolean;
  executor?: 'local' | 'slurm';
  slurm?: SlurmOptions;
}

/** What a target's last attempt ended as, as seen by runOnFailure targets and reports. */
export interface TargetOutcome {
  name: string;
  /** 'fresh': nothing to do this build; 'kept': stale inputs but rebuild: 'missing' kept the outputs. */
  status: 'built' | 'fresh' | 'kept' | 'failed' | 'blocked' | 'skipped';
  /** The command text, or `action <name>` for an in-process action. */
  command?: string;
  exitCode?: number | null;
  durationMs?: number;
  log?: string;
  /** Id of the build that produced the current outputs (or ran the failed attempt). */
  buildId?: string;
  /** Error message of a failed attempt. */
  error?: string;
  /** Names of the failed dependencies that blocked this target. */
  blockedBy?: string[];
  /** 'built' from the artifact cache instead of running: the build that produced the outputs. */
  restoredFrom?: string;
  /** 'failed': where the last good outputs are kept; `--restore <name>` brings them back. */
  preserved?: { buildId: string; path: string };
  outputs: string[];
  deps: string[];
}

export interface ActionContext {
  /** Absolute path of the root directory. */
  root: string;
  name: string;
  /** Resolved input paths (globs expanded), relative to the root. */
  inputs: string[];
  outputs: string[];
  params: unknown;
  /** Append a line to the target's log (or show it prefixed by the target's name). */
  log(line: string): void;
  /** Relative path of the target's log, if it declares one. */
  logPath?: string;
  /** Aborted on Ctrl-C or when the build stops early. */
  signal: AbortSignal;
  /** Write a file atomically (temp file + rename), creating its directory. Path relative to root. */
  writeFile(path: string, data: string | Uint8Array): Promise<void>;
  /** Id of the current build. */
  buildId: string;
  /** Outcomes of every target of the graph as known now (this build, else the last recorded run). */
  outcomes(): TargetOutcome[];
}

export type Action = (ctx: ActionContext) => Promise<void> | void;

/** What a targets function is given: where it builds, and the `-D key=value` definitions. */
export interface TargetsContext {
  /** Absolute path of the root directory (-C). */
  root: string;
  /** `-D key=value` definitions from the command line, in order (later ones win). */
  defines: Record<string, string>;
}

/** A targets module's default export. */
export type TargetsExport = TargetSpec[] | ((ctx: TargetsContext) => TargetSpec[] | Promise<TargetSpec[]>);
