// The metrics logger (HUBMAKE_TIMING=1): a consumer of the same events as every reporter, which
// says how long commands kept the build busy. Benchmarks subtract it from the engine's time to
// get the engine's own overhead on a build that runs commands (bench/synthetic.ts, edit phase).
import type { BuildEvent, Listener } from '../events.ts';

export function withMetrics(inner: Listener, write: (line: string) => void, now: () => number = () => performance.now()): Listener {
  const started = new Map<string, number>();
  /** Time covered by at least one running target: with -j, overlapping runs count once. */
  let busy = 0;
  let busySince = 0;
  let ran = 0;
  let vouched: number | undefined;
  let probed: number | undefined;
  let module: string | undefined;
  let narrowed: string | undefined;
  return (e: BuildEvent) => {
    if (e.type === 'build-start') {
      vouched = e.vouched;
      probed = e.probed;
      module = e.module;
      narrowed = e.narrowed;
    } else if (e.type === 'start') {
      if (started.size === 0) busySince = now();
      started.set(e.target, now());
      ran++;
    } else if (e.type === 'finish' && started.delete(e.target) && started.size === 0) {
      busy += now() - busySince;
    } else if (e.type === 'build-end') {
      write(`hubmake-commands-busy-ms: ${busy.toFixed(1)}\nhubmake-commands-ran: ${ran}\nhubmake-decided-by: ${e.settled ? 'settled stamp' : vouched !== undefined ? `settled stamp for ${vouched} targets, per-target rebuilder for the rest` : 'per-target rebuilder'}\n${probed !== undefined ? `hubmake-stamp-probe-confirmed: ${probed}\n` : ''}${module !== undefined ? `hubmake-module: ${module}\n` : ''}${narrowed !== undefined ? `hubmake-narrowed: ${narrowed}\n` : ''}`);
    }
    inner(e);
  };
}
