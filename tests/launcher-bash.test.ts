// The command launcher's tests (tests/lib/launcher-suite.ts) with the bash launcher: the one used
// where no C compiler built the native launcher, or with HUBMAKE_LAUNCHER=bash.
import { launcherSuite } from './lib/launcher-suite.ts';

launcherSuite('bash');
