// Crash consistency under SIGKILL: a seeded random graph (slow commands that write their outputs
// in pieces, in-process actions, the state log being appended) is built through the real CLI and
// the whole process tree is killed at a random moment; a second build must produce exactly what a
// clean build produces, and only targets that were running or not yet built may run again.
// 100 trials per CI run, split over this file and reliability-crash-b.test.ts to keep each file
// short; bench/crash.ts runs 1,000. Seeds: HUBMAKE_CRASH_SEED (default 1000) onwards.
import { test } from 'uvu';
import { sigkillTrials } from './lib/crashGraph.ts';

sigkillTrials(0, 50);

test.run();
