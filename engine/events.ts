// The typed events: the engine's only way to talk. Reporters (plain lines, live terminal, JSON,
// explain) consume them; the engine never prints.
import type { Diagnostic } from './errors.ts';
import type { Reason } from './decide.ts';
import type { TargetOutcome } from './types.ts';

export type BuildEvent =
  /** Work is about to be decided: how many targets the goals reach. */
  | {
      type: 'build-start';
      buildId: string;
      goals: string[];
      targets: number;
      /** Of those, targets that are not aliases (each ends as fresh, kept, built, failed, blocked or skipped). */
      runnable?: number;
      jobs: number;
      dryRun: boolean;
      /** Targets the settled stamp vouched fresh without deciding them (engine/stamp.ts). */
      vouched?: number;
      /** Paths of the stamp the native probe confirmed, the rest looked at by the build (engine/stamp-probe.ts). */
      probed?: number;
      /** What became of the targets module: skipped (its record stands), or run and why (engine/module-record.ts). */
      module?: string;
      /** Whether the build was narrowed to what the moved paths reach (engine/narrow.ts), and why not. */
      narrowed?: string;
    }
  /** Another build holds the root; this one waits. */
  | { type: 'lock-wait'; pid: number; host: string; since: string }
  | { type: 'warning'; message: string }
  /** The rebuilder's verdict on one target (every target of the goals gets one, or is blocked/skipped). */
  | {
      type: 'decision';
      target: string;
      action: 'fresh' | 'run' | 'keep' | 'may-run';
      reasons: Reason[];
      command?: string;
      /** Duration of the target's last successful run, when it is to run (progress estimates). */
      expectedMs?: number;
    }
  | { type: 'start'; target: string; command: string; log?: string; expectedMs?: number; executor?: string }
  /** A line of output from a target without a log file. */
  | { type: 'output'; target: string; line: string }
  | {
      type: 'finish';
      target: string;
      status: 'built' | 'failed' | 'interrupted';
      durationMs: number;
      exitCode?: number | null;
      log?: string;
      error?: string;
      /** Last lines of the log of a failed target. */
      tail?: string[];
      /** Slurm job that ran the target, and the node it ran on. */
      jobId?: string;
      node?: string;
      /**
       * 'built' without running: the outputs came from the artifact cache (`from`, its directory),
       * produced by build `buildId`, verified by sha256. The target's log is not re-created.
       */
      restored?: { buildId: string; from: string; files: number; bytes: number };
      /**
       * 'failed'/'interrupted': the outputs of the last good run (build `buildId`) are kept in the
       * store (`path`, their manifest); `npx tsx build.ts --restore <target>` writes them back.
       */
      preserved?: { buildId: string; path: string };
    }
  /** Before a rerun, the target's present outputs were copied into the store (`kind` 'unrecorded': they match no success record). */
  | { type: 'preserved'; target: string; path: string; kind: 'good' | 'unrecorded'; files: number; bytes: number }
  /**
   * --restore: the outputs of the target's last success record (build `buildId`) were written
   * back from a preserved copy or the cache, verified by sha256. `fresh`: its fingerprint still
   * matches, so the next build leaves it alone.
   */
  | { type: 'restored'; target: string; buildId: string; source: 'preserved' | 'cache'; from: string; files: number; bytes: number; durationMs: number; fresh: boolean }
  /** --gc or the end of a build with a cache size limit: what the cache holds now and what went. */
  | { type: 'cache-gc'; entries: number; bytes: number; evicted: number; removedBlobs: number; freedBytes: number; limit: number | null }
  /**
   * A target's Slurm job was submitted, adopted from an earlier build, or changed state
   * (PENDING with its reason, RUNNING on a node, a final state, CANCELLED by this build).
   */
  | { type: 'job'; target: string; jobId: string; state: string; node?: string; reason?: string; adopted?: boolean }
  | { type: 'blocked'; target: string; by: string[] }
  | { type: 'skipped'; target: string; why: string }
  | { type: 'info'; target?: string; message: string }
  | {
      type: 'build-end';
      buildId: string;
      ok: boolean;
      interrupted: boolean;
      counts: Record<TargetOutcome['status'], number>;
      durationMs: number;
      /** Commands and actions that ran, by target name. */
      ran: string[];
      /** Answered by the settled stamp (engine/stamp.ts) without a per-target decision. */
      settled?: true;
      /** Files whose stat a worker thread took ahead of the decisions (engine/prefetch.ts). */
      statsAhead?: number;
    }
  | { type: 'error'; diagnostics: Diagnostic[] }
  /** Watch mode is waiting for changes: what it watches (literal files, directory watches). */
  | { type: 'watch-ready'; files: number; directories: number; watches: number }
  /**
   * Changes after the quiet period: the paths (root-relative, at most a few dozen listed),
   * the targets whose inputs they touch, and whether the targets module or its configuration
   * changed (reload). `queued`: a build is running, so one follow-up build comes after it.
   */
  | { type: 'watch-change'; paths: string[]; more: number; targets: string[]; reload: boolean; queued: boolean }
  /** Watch mode cancelled a running target because its inputs changed (--watch-restart). */
  | { type: 'watch-cancel'; target: string }
  /** The targets module was reloaded: how many targets it declares now, which are new or gone. */
  | { type: 'watch-reload'; targets: number; added: string[]; removed: string[] }
  /** The reloaded targets module failed; watch mode keeps the last good graph. */
  | { type: 'watch-reload-error'; diagnostics: Diagnostic[] };

export type Listener = (e: BuildEvent) => void;
