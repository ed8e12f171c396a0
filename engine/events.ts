// The typed events: the engine's only way to talk. Reporters (plain lines, live terminal, JSON,
// explain) consume them; the engine never prints.
import type { Diagnostic } from './errors.ts';
import type { Reason } from './decide.ts';
import type { TargetOutcome } from './types.ts';

export type BuildEvent =
  /** Work is about to be decided: how many targets the goals reach. */
  | { type: 'build-start'; buildId: string; goals: string[]; targets: number; jobs: number; dryRun: boolean }
  /** Another build holds the root; this one waits. */
  | { type: 'lock-wait'; pid: number; host: string; since: string }
  | { type: 'warning'; message: string }
  /** The rebuilder's verdict on one target (every target of the goals gets one, or is blocked/skipped). */
  | { type: 'decision'; target: string; action: 'fresh' | 'run' | 'keep' | 'may-run'; reasons: Reason[]; command?: string }
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
    }
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
    }
  | { type: 'error'; diagnostics: Diagnostic[] };

export type Listener = (e: BuildEvent) => void;
