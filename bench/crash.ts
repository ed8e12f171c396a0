// The crash-consistency trial of tests/reliability-crash.test.ts, 1,000 times: SIGKILL of the
// whole process tree (and SIGINT/SIGTERM) at a random moment of a build of a random graph, then a
// second build through the real CLI. Reports the count of bad outcomes (goal: 0) and keeps the
// root of every bad trial for inspection.
//   node --import tsx bench/crash.ts [--trials 1000] [--seed 1] [--parallel 4] [--fault SIGKILL|SIGKILL-build|SIGINT|SIGTERM|mixed] [--rebuild cli|in-process]
import { parseArgs } from 'node:util';
import { runTrials, verdict, type Fault, type TrialResult } from '../tests/lib/crashGraph.ts';

const { values: v } = parseArgs({
  options: {
    trials: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    parallel: { type: 'string', default: '4' },
    fault: { type: 'string', default: 'mixed' },
    rebuild: { type: 'string', default: 'cli' },
  },
});
const trials = Number(v.trials);
const base = Number(v.seed);
const faults: Fault[] = v.fault === 'mixed' ? ['SIGKILL', 'SIGKILL-build', 'SIGINT', 'SIGTERM'] : [v.fault as Fault];
const rebuild = v.rebuild === 'in-process' ? 'in-process' : 'cli';

const t0 = Date.now();
let done = 0;
let bad = 0;
const results: TrialResult[] = await runTrials(
  Array.from({ length: trials }, (_, i) => base + i),
  (seed) => ({ seed, fault: faults[seed % faults.length]!, rebuild, checkNoop: true }),
  Number(v.parallel),
  (r) => {
    done++;
    if (r.problems.length) {
      bad++;
      process.stderr.write(`BAD seed ${r.seed} (${r.fault}): ${r.problems.join(' | ')}\n`);
    }
    if (done % 50 === 0) process.stderr.write(`${done}/${trials} trials, ${bad} bad, ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  },
);

const by = (f: (r: TrialResult) => boolean) => results.filter(f).length;
console.log(`crash bench: ${trials} trials (seeds ${base}..${base + trials - 1}, faults ${[...new Set(faults)].join('/')}, second build ${rebuild}) in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
for (const f of new Set(faults)) {
  const rs = results.filter((r) => r.fault === f);
  console.log(`  ${f}: ${rs.length} trials, ${rs.filter((r) => r.problems.length).length} bad; signalled while targets ran: ${rs.filter((r) => r.startedBefore.length > r.finishedBefore.length).length}; before any target started: ${rs.filter((r) => r.startedBefore.length === 0).length}; after the build had ended: ${rs.filter((r) => r.faultedExit === 0).length}`);
}
console.log(`  incremental (full build, input changed, then faulted build): ${by((r) => r.incremental)}`);
console.log(`  commands run by the second build: ${results.reduce((s, r) => s + r.rerun.length, 0)}; targets that had started before the fault: ${results.reduce((s, r) => s + r.startedBefore.length, 0)}, finished: ${results.reduce((s, r) => s + r.finishedBefore.length, 0)}`);
console.log(`  leftover temp files of interrupted atomic writes: ${by((r) => r.litter.length > 0)} trials`);
console.log(`bad outcomes: ${bad}`);
if (bad) console.log(verdict(results));
process.exitCode = bad ? 1 : 0;
