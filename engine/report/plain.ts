// The default reporter: one plain line per start and finish, no control characters, so it reads
// the same in a terminal, a CI log or a pipe. --explain adds the reasons behind every decision.
import { describeReason } from '../decide.ts';
import { formatDiagnostic } from '../errors.ts';
import type { BuildEvent } from '../events.ts';

export interface Out {
  out(line: string): void;
  err(line: string): void;
}

export const stdio: Out = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

export function secs(ms: number): string {
  return ms < 1000 ? `${ms}ms` : ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : `${Math.floor(ms / 60_000)}m${Math.round((ms % 60_000) / 1000)}s`;
}

export function plainReporter(opts: { explain: boolean; dryRun: boolean; io?: Out }): (e: BuildEvent) => void {
  const io = opts.io ?? stdio;
  return (e) => {
    switch (e.type) {
      case 'lock-wait':
        io.err(`hubmake: another build holds the lock (pid ${e.pid} on ${e.host}, since ${e.since}); waiting for it to finish`);
        break;
      case 'warning':
        io.err(`hubmake: warning: ${e.message}`);
        break;
      case 'decision':
        if (opts.dryRun) {
          if (e.action === 'run') {
            io.out(`would run ${e.target}: ${e.command ?? ''}`);
            for (const r of e.reasons) io.out(`    because ${describeReason(r)}`);
          } else if (e.action === 'may-run') {
            io.out(`may run   ${e.target}: ${e.command ?? ''}`);
            io.out('    because a target it depends on will run (it runs only if that changes its inputs)');
          } else if (e.action === 'keep' && opts.explain) {
            io.out(`keep      ${e.target}`);
            for (const r of e.reasons) io.out(`    inputs changed: ${describeReason(r)}`);
          }
        } else if (opts.explain) {
          if (e.action === 'run') {
            io.out(`explain ${e.target}: runs because`);
            for (const r of e.reasons) io.out(`    ${describeReason(r)}`);
          } else if (e.action === 'keep') {
            io.out(`explain ${e.target}: kept (rebuild: 'missing'): its outputs exist, so they are kept although`);
            for (const r of e.reasons) io.out(`    ${describeReason(r)}`);
            io.out(`    to regenerate on purpose: npx tsx build.ts ${JSON.stringify(e.target)} -B`);
          }
        }
        break;
      case 'start':
        io.out(`start   ${e.target}${e.log ? `  (log: ${e.log})` : ''}`);
        break;
      case 'output':
        io.out(`[${e.target}] ${e.line}`);
        break;
      case 'finish':
        if (e.restored) {
          io.out(`restored ${e.target} from the cache (outputs of build ${e.restored.buildId}, ${e.restored.files} file(s) verified, ${secs(e.durationMs)}; its log is not re-created)`);
          break;
        }
        if (e.status === 'built') io.out(`built   ${e.target} (${secs(e.durationMs)}${e.jobId ? `, slurm job ${e.jobId}${e.node ? ` on ${e.node}` : ''}` : ''})`);
        else if (e.status === 'interrupted') io.out(`stopped ${e.target} (interrupted after ${secs(e.durationMs)})`);
        else {
          io.err(`FAILED  ${e.target}: ${e.error ?? 'failed'}${e.exitCode != null && !/exit code/.test(e.error ?? '') ? ` (exit code ${e.exitCode})` : ''}`);
          if (e.log) io.err(`    log: ${e.log}`);
          if (e.tail?.length) {
            io.err(`    last ${e.tail.length} lines:`);
            for (const l of e.tail) io.err(`    | ${l}`);
          }
        }
        if (e.preserved) io.err(`    the last good outputs (build ${e.preserved.buildId}) are kept in ${e.preserved.path}; bring them back with: npx tsx build.ts --restore '${e.target.replace(/'/g, `'\\''`)}'`);
        break;
      case 'preserved':
        if (opts.explain) io.out(`explain ${e.target}: copied ${e.files} present output file(s) (${e.bytes} bytes${e.kind === 'unrecorded' ? ', matching no successful run' : ''}) into the store before the rerun: ${e.path}`);
        break;
      case 'restored':
        io.out(`restored ${e.target}: the outputs of build ${e.buildId} from ${e.source === 'cache' ? 'the artifact cache' : 'the copy preserved before a rerun'} (${e.from}), ${e.files} file(s), ${e.bytes} bytes, verified by sha256 in ${secs(e.durationMs)}`);
        if (!e.fresh) io.out(`    note: its inputs, params or command changed since that build, so the next build reruns it`);
        break;
      case 'cache-gc':
        io.out(`hubmake: cache gc: evicted ${e.evicted} entr${e.evicted === 1 ? 'y' : 'ies'} and removed ${e.removedBlobs} blob(s) (${e.freedBytes} bytes); the cache holds ${e.entries} entries, ${e.bytes} bytes${e.limit !== null ? ` (limit ${e.limit} bytes)` : ''}`);
        break;
      case 'job':
        // Submission, adoption and the move to a node; the final state shows in the finish line.
        if (e.adopted) io.out(`slurm   ${e.target}: adopted job ${e.jobId} of an earlier build (${e.state}${e.node ? ` on ${e.node}` : ''})`);
        else if (e.state === 'SUBMITTED') io.out(`slurm   ${e.target}: submitted job ${e.jobId}`);
        else if (e.state === 'RUNNING') io.out(`slurm   ${e.target}: job ${e.jobId} running on ${e.node ?? 'a node'}`);
        else if (e.state === 'PENDING' && e.reason) io.out(`slurm   ${e.target}: job ${e.jobId} pending (${e.reason})`);
        break;
      case 'blocked':
        io.err(`blocked ${e.target} (needs ${e.by.join(', ')}, which failed)`);
        break;
      case 'skipped':
        // One line per target not started would bury the failure in a large graph; the closing
        // line counts them, and --explain names each.
        if (opts.explain && e.why !== 'interrupted') io.err(`skipped ${e.target}: ${e.why}`);
        break;
      case 'info':
        io.err(`${e.target ? `[${e.target}] ` : ''}${e.message}`);
        break;
      case 'error':
        for (const d of e.diagnostics) io.err(`hubmake: error: ${formatDiagnostic(d)}`);
        break;
      case 'build-end': {
        const c = e.counts;
        if (opts.dryRun) break;
        if (e.interrupted) io.err(`hubmake: interrupted; ${c.built} built before the stop, state saved`);
        else if (c.built === 0 && c.failed === 0 && c.blocked === 0 && c.skipped === 0) {
          io.out(`hubmake: nothing to do (${c.fresh + c.kept} targets up to date)`);
          // Someone asking why nothing ran should know that no target was looked at one by one.
          if (opts.explain && e.settled) io.out('explain: answered by the settled stamp (.hubmake/settled.stamp): no input or output of these goals moved since a build that left them all fresh; HUBMAKE_NOOP_SHORTCUT=off decides every target');
        }
        else {
          const parts = [`${c.built} built`, `${c.fresh + c.kept} up to date`];
          if (c.failed) parts.push(`${c.failed} failed`);
          if (c.blocked) parts.push(`${c.blocked} blocked`);
          if (c.skipped) parts.push(`${c.skipped} not started`);
          (e.ok ? io.out : io.err)(`hubmake: ${parts.join(', ')} in ${secs(e.durationMs)}`);
        }
        break;
      }
    }
  };
}
