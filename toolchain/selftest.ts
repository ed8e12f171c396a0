// A pytest-like runner for the toolchain's own study tests, so the hub's step E1 evidence
// (two selectors and a collect-only listing) can be produced without Python:
//   npx tsx toolchain/selftest.ts tests/study/test_dose_overlap_training.py::test_execute_training_job_persists_bundle -vv
//   npx tsx toolchain/selftest.ts tests/study/test_dose_overlap_training.py -k training_cli -vv
//   npx tsx toolchain/selftest.ts --collect-only tests/study/test_dose_overlap_training.py
// Exit codes follow pytest: 0 all passed, 1 some failed, 5 nothing selected; 2 for a bad
// command line (pytest would say 4). Durations in the output vary; everything else is stable.
import { runSelftest } from './selftest-lib.ts';

process.exitCode = await runSelftest(process.argv.slice(2), (s) => process.stdout.write(s));
