// The settled stamp's paths stat'ed by the native probe (engine/stamp-probe.c): a no-op of 10,000
// targets spent ~40 ms of its ~100 ms stat'ing 11,000 paths one after the other from here; the
// probe takes ~10 ms. It starts only once the targets module has run and the key is computed:
// both run the module's code, which may write files its targets read.
//
// The probe only confirms paths whose stat is exactly as recorded; engine/stamp.ts looks at every
// other one itself, with the same code as when the probe is missing (no C compiler at install,
// HUBMAKE_STAMP_PROBE=off) or gives no answer. So the probe can make a check faster, never say
// more than the check would.
import { spawn } from 'node:child_process';
import { nativeProgram } from './native.ts';
import type { StampFile } from './stamp.ts';

/**
 * Below this many paths the check stats them itself: starting a process costs the build 4-10 ms
 * at 10k targets (libuv forks it), what ~2,000 stats from node cost.
 */
const PROBE_MIN_PATHS = 2000;
/**
 * An answer later than this is not waited for (the probe is killed, the build stats the paths
 * itself): 110,000 paths take it ~0.1 s, and the build only waits for it once started, so only a
 * probe that hangs reaches it.
 */
const PROBE_TIMEOUT_MS = 5000;

export interface StampProbe {
  /** The records the probe did not confirm, or undefined when it gave no answer. */
  answer: Promise<Set<number> | undefined>;
  /** The answer will not be asked for: stop the probe and let the build exit without it. */
  abandon(): void;
}

/**
 * Starts the probe on a stamp as read, or undefined when the check had better stat the paths
 * itself. HUBMAKE_STAMP_PROBE: `off`, or the fewest paths worth the probe (tests give 0), like
 * HUBMAKE_STAT_AHEAD a tuning knob whose unreadable values mean the default.
 */
export function probeStamp(root: string, stamp: StampFile, env: NodeJS.ProcessEnv): StampProbe | undefined {
  const v = env.HUBMAKE_STAMP_PROBE;
  if (v === 'off') return undefined;
  const n = Number(v);
  if (stamp.head.count < (v && Number.isInteger(n) && n >= 0 ? n : PROBE_MIN_PATHS)) return undefined;
  const program = nativeProgram('hubmake-stamp-probe', 'stamp-probe.c');
  if (!program) return undefined;
  const child = spawn(program, [root, stamp.file, stamp.self], { stdio: ['ignore', 'pipe', 'ignore'] });
  let late: NodeJS.Timeout | undefined;
  const abandon = () => {
    clearTimeout(late);
    child.kill('SIGKILL');
    child.unref();
    child.stdout!.destroy();
  };
  const answer = new Promise<Set<number> | undefined>((resolve) => {
    const chunks: Buffer[] = [];
    late = setTimeout(() => {
      abandon();
      resolve(undefined);
    }, PROBE_TIMEOUT_MS);
    child.stdout!.on('data', (c: Buffer) => chunks.push(c));
    child.on('error', () => {
      clearTimeout(late);
      resolve(undefined);
    });
    child.on('close', (code) => {
      clearTimeout(late);
      resolve(code === 0 ? parseAnswer(Buffer.concat(chunks).toString('latin1'), stamp.head.count) : undefined);
    });
  });
  return { answer, abandon };
}

/** Indices, one per line, then `end <records read>`: anything else, or another count, is no answer. */
function parseAnswer(text: string, count: number): Set<number> | undefined {
  const lines = text.split('\n');
  if (lines.pop() !== '' || lines.pop() !== `end ${count}`) return undefined;
  const unconfirmed = new Set<number>();
  for (const l of lines) {
    const i = Number(l);
    if (!/^\d+$/.test(l) || i >= count) return undefined;
    unconfirmed.add(i);
  }
  return unconfirmed;
}
