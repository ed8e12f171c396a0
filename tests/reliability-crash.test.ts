// Crash consistency under SIGKILL: a seeded random graph (slow commands that write their outputs
// in pieces, in-process actions, the state log being appended) is built through the real CLI and
// the whole process tree is killed at a random moment; a second build must produce exactly what a
// clean build produces, and only targets that were running or not yet built may run again.
// 100 trials per CI run, split over this file and reliability-crash-b.test.ts to keep each file
// short; bench/crash.ts runs 1,000. Seeds: HUBMAKE_CRASH_SEED (default 1000) onwards.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runTrials, verdict } from './lib/crashGraph.ts';

const BASE = Number(process.env.HUBMAKE_CRASH_SEED ?? 1000);
const FIRST = 0;
const TRIALS = 50;

test(`SIGKILL of the whole process tree at a random moment (seeds ${BASE + FIRST}..${BASE + FIRST + TRIALS - 1}): the next build equals a clean build and reruns only unfinished targets`, async () => {
  const seeds = Array.from({ length: TRIALS }, (_, i) => BASE + FIRST + i);
  const results = await runTrials(seeds, (seed) => ({ seed, fault: 'SIGKILL', rebuild: 'in-process', checkNoop: seed % 3 === 0 }), 4);
  assert.is(results.length, TRIALS);
  // The kills must land inside builds, not only before or after them, or the test proves little.
  const midBuild = results.filter((r) => r.startedBefore.length > 0 && r.faultedExit === null);
  assert.ok(midBuild.length >= TRIALS / 3, `only ${midBuild.length} of ${TRIALS} kills landed while targets ran`);
  const withFinished = results.filter((r) => r.finishedBefore.length > 0 && r.faultedExit === null);
  assert.ok(withFinished.length >= 3, `only ${withFinished.length} kills came after some target had finished`);
  const bad = verdict(results);
  assert.is(bad, '', `bad outcomes:\n${bad}`);
});

test.run();
