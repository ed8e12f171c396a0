// The live terminal view: finished targets (and everything else the plain reporter would say)
// scroll above a small area that is redrawn in place: the targets running now with their elapsed
// and expected time and a spinner, then the counts and the expected time left. Only used on a
// terminal; the area is erased and redrawn with two control sequences (cursor up, clear below),
// so the scrolled lines above it are never touched.
import type { BuildEvent, Listener } from '../events.ts';
import { plainReporter, secs } from './plain.ts';
import { Progress } from './progress.ts';
import { watchLines } from './watch-lines.ts';

export interface Tty {
  write(s: string): void;
  /** Width of the terminal, so area lines never wrap (which would break the redraw). */
  columns(): number;
}

export interface LiveOptions {
  tty: Tty;
  explain?: boolean;
  now?: () => number;
  /** Redraw period while a build runs (spinner, elapsed times); 0 redraws on every event only (tests). */
  tickMs?: number;
  /** Most running targets listed; the rest are counted. */
  maxRows?: number;
}

export interface LiveReporter {
  emit: Listener;
  /** Redraws now. */
  render(): void;
  /** Erases the area and stops the timer. */
  close(): void;
}

const SPINNER = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
const UP = (n: number) => `\x1b[${n}A`;
const CLEAR_BELOW = '\x1b[J';

export function liveReporter(o: LiveOptions): LiveReporter {
  const now = o.now ?? Date.now;
  const tickMs = o.tickMs ?? 100;
  const maxRows = o.maxRows ?? 8;
  const progress = new Progress();
  let scroll: string[] = [];
  let areaHeight = 0;
  let waiting: string | undefined;
  let timer: NodeJS.Timeout | undefined;
  let lastRender = 0;
  let closed = false;
  // Everything but the start of a target reads as the plain reporter says it.
  const plain = plainReporter({ explain: !!o.explain, dryRun: false, io: { out: (l) => scroll.push(l), err: (l) => scroll.push(l) } });

  const area = (): string[] => {
    if (!progress.active) return waiting ? [waiting] : [];
    const t = now();
    const v = progress.view(t);
    const spin = SPINNER[Math.floor(t / 100) % SPINNER.length];
    const rows = v.running
      .sort((a, b) => a.startedAt - b.startedAt)
      .slice(0, maxRows)
      .map((r) => {
        const exp = r.expectedMs !== undefined ? ` / ~${secs(r.expectedMs)}` : '';
        const over = r.expectedMs !== undefined && r.elapsedMs > r.expectedMs ? ' (over)' : '';
        return `${spin} ${r.target}  ${secs(r.elapsedMs)}${exp}${over}`;
      });
    if (v.running.length > maxRows) rows.push(`  … and ${v.running.length - maxRows} more running`);
    const parts = [`${v.done}/${v.total} done`, `${v.running.length} running`, `${Math.max(0, v.todo - v.running.length)} to do`];
    if (v.failed) parts.push(`${v.failed} failed`);
    if (v.notBuilt) parts.push(`${v.notBuilt} not built`);
    if (v.remainingMs !== undefined) parts.push(`~${secs(v.remainingMs)} left${v.unknownDurations ? ' (+ targets never run before)' : ''}`);
    rows.push(`[${parts.join(' · ')}]`);
    return rows;
  };

  const render = () => {
    if (closed) return;
    lastRender = now();
    const width = Math.max(20, o.tty.columns());
    const lines = area().map((l) => (l.length >= width ? `${l.slice(0, width - 2)}…` : l));
    let s = areaHeight ? `\r${UP(areaHeight)}${CLEAR_BELOW}` : '';
    for (const l of scroll) s += `${l}\n`;
    for (const l of lines) s += `${l}\n`;
    scroll = [];
    areaHeight = lines.length;
    if (s) o.tty.write(s);
  };

  const startTimer = () => {
    if (tickMs <= 0 || timer) return;
    timer = setInterval(render, tickMs);
    timer.unref();
  };
  const stopTimer = () => {
    if (timer) clearInterval(timer);
    timer = undefined;
  };

  const emit = (e: BuildEvent) => {
    progress.apply(e, now());
    if (e.type !== 'start') plain(e);
    // Watch mode: the first 'ready' says what is watched; later ones only show in the area.
    if (e.type !== 'watch-ready' || waiting === undefined) for (const l of watchLines(e)) scroll.push(l.text);
    if (e.type === 'watch-ready') waiting = `watching ${e.files} files, ${e.directories} directories; waiting for changes (Ctrl-C to stop)`;
    if (e.type === 'build-start') startTimer();
    if (e.type === 'build-end') stopTimer();
    // Lines that scroll away are written at once, except a chatty command's output, which waits
    // for the next tick (the timer runs during builds) so the area is not redrawn per line.
    if (tickMs > 0 && e.type === 'output' && timer && now() - lastRender < tickMs) return;
    if (tickMs <= 0 || scroll.length || e.type === 'build-start' || e.type === 'build-end' || now() - lastRender >= tickMs) render();
  };

  return {
    emit,
    render,
    close() {
      stopTimer();
      waiting = undefined;
      progress.active = false;
      render();
      closed = true;
    },
  };
}
