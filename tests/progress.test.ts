// The live terminal view and the progress model behind it, fed with events and a fake clock, drawn
// on a fake terminal that understands the few control sequences the view uses.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { BuildEvent } from '../engine/events.ts';
import { liveReporter } from '../engine/report/live.ts';
import { Progress } from '../engine/report/progress.ts';

/** A terminal screen: text, '\r', '\n', ESC[nA (cursor up) and ESC[J (clear below). */
class Screen {
  lines: string[] = [''];
  row = 0;
  col = 0;
  raw = '';
  write(s: string): void {
    this.raw += s;
    for (let i = 0; i < s.length; ) {
      const esc = /^\x1b\[(\d*)([AJ])/.exec(s.slice(i));
      if (esc) {
        if (esc[2] === 'A') this.row = Math.max(0, this.row - Number(esc[1] || 1));
        else {
          this.lines[this.row] = (this.lines[this.row] ?? '').slice(0, this.col);
          this.lines.length = this.row + 1;
        }
        i += esc[0].length;
        continue;
      }
      const ch = s[i++]!;
      if (ch === '\r') this.col = 0;
      else if (ch === '\n') {
        this.row++;
        this.col = 0;
        if (this.lines.length <= this.row) this.lines.push('');
      } else {
        const l = this.lines[this.row] ?? '';
        this.lines[this.row] = l.slice(0, this.col) + ch + l.slice(this.col + 1);
        this.col++;
      }
    }
  }
  /** Visible lines, without the empty line under the cursor. */
  text(): string[] {
    const out = [...this.lines];
    while (out.length && out[out.length - 1] === '') out.pop();
    return out;
  }
}

const SPIN = '[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]';

test('live view: running targets with elapsed and expected time, counts, time left; finished targets scroll above', () => {
  const screen = new Screen();
  let now = 0;
  const live = liveReporter({ tty: { write: (s) => screen.write(s), columns: () => 100 }, now: () => now, tickMs: 0 });
  const emit = (e: BuildEvent) => live.emit(e);
  emit({ type: 'build-start', buildId: 'b1', goals: ['all'], targets: 6, runnable: 5, jobs: 2, dryRun: false });
  emit({ type: 'decision', target: 'prep', action: 'fresh', reasons: [] });
  emit({ type: 'decision', target: 'train', action: 'run', reasons: [], command: 'train.sh', expectedMs: 2000 });
  emit({ type: 'decision', target: 'eval', action: 'run', reasons: [], command: 'eval.sh' });
  now = 1000;
  emit({ type: 'start', target: 'train', command: 'train.sh', expectedMs: 2000 });
  emit({ type: 'start', target: 'eval', command: 'eval.sh' });
  now = 1500;
  live.render();
  let t = screen.text();
  assert.is(t.length, 3, t.join('\n'));
  assert.match(t[0]!, new RegExp(`^${SPIN} train  500ms / ~2\\.0s$`));
  assert.match(t[1]!, new RegExp(`^${SPIN} eval  500ms$`));
  assert.is(t[2], '[1/5 done · 2 running · 2 to do · ~1.5s left (+ targets never run before)]');

  // The spinner and the elapsed time move with the clock alone.
  const before = t[0]!;
  now = 1650;
  live.render();
  t = screen.text();
  assert.is.not(t[0], before);
  assert.match(t[0]!, / train {2}650ms \/ ~2\.0s$/);
  assert.is(t.length, 3, 'redrawn in place, not appended');

  // A finished target scrolls above the area as one line; output lines too.
  now = 2200;
  emit({ type: 'finish', target: 'train', status: 'built', durationMs: 1200, exitCode: 0 });
  emit({ type: 'output', target: 'eval', line: 'epoch 3' });
  t = screen.text();
  assert.equal(t.slice(0, 2), ['built   train (1.2s)', '[eval] epoch 3']);
  assert.match(t[2]!, new RegExp(`^${SPIN} eval  1\\.2s$`));
  assert.is(t[3], '[2/5 done · 1 running · 2 to do]');
  assert.is(t.length, 4);

  // A target that runs longer than it did last time says so.
  emit({ type: 'decision', target: 'report', action: 'run', reasons: [], expectedMs: 300 });
  emit({ type: 'start', target: 'report', command: 'report.sh', expectedMs: 300 });
  now = 3000;
  live.render();
  t = screen.text();
  assert.match(t[3]!, / report {2}800ms \/ ~300ms \(over\)$/);

  // Failures scroll with their log tail; the end of the build clears the area.
  emit({ type: 'finish', target: 'eval', status: 'failed', durationMs: 2000, exitCode: 3, error: 'command failed (exit code 3)', log: 'logs/eval.log', tail: ['Traceback', 'ValueError: nan'] });
  emit({ type: 'finish', target: 'report', status: 'built', durationMs: 900, exitCode: 0 });
  emit({ type: 'build-end', buildId: 'b1', ok: false, interrupted: false, counts: { built: 2, fresh: 1, kept: 0, failed: 1, blocked: 0, skipped: 0 }, durationMs: 3000, ran: ['train', 'eval', 'report'] });
  live.close();
  t = screen.text();
  // The failure line reads as the plain reporter words it.
  assert.ok(t[2]!.startsWith('FAILED  eval: command failed'), t[2]);
  t[2] = 'FAILED';
  assert.equal(t, [
    'built   train (1.2s)',
    '[eval] epoch 3',
    'FAILED',
    '    log: logs/eval.log',
    '    last 2 lines:',
    '    | Traceback',
    '    | ValueError: nan',
    'built   report (900ms)',
    'hubmake: 2 built, 1 up to date, 1 failed in 3.0s',
  ]);
  // Lines that scrolled away were written once, never redrawn.
  assert.is(screen.raw.split('built   train').length - 1, 1);
});

test('live view: watch mode lines scroll, area lines never wrap the terminal', () => {
  const screen = new Screen();
  let now = 0;
  const live = liveReporter({ tty: { write: (s) => screen.write(s), columns: () => 30 }, now: () => now, tickMs: 0 });
  live.emit({ type: 'watch-ready', files: 3, directories: 2, watches: 4 });
  live.emit({ type: 'watch-change', paths: ['src/a.txt'], more: 0, targets: ['out/a.txt'], reload: false, queued: false });
  live.emit({ type: 'build-start', buildId: 'b2', goals: [], targets: 1, jobs: 1, dryRun: false });
  live.emit({ type: 'start', target: 'a-target-with-a-very-long-name-indeed', command: 'x' });
  now = 100;
  live.render();
  const t = screen.text();
  assert.ok(t[0]!.startsWith('hubmake: watching 3 files and 2 directories (4 watches)'));
  assert.is(t[1], 'hubmake: changed src/a.txt: inputs of out/a.txt');
  for (const l of t.slice(2)) assert.ok(l.length < 30, `area line fits: '${l}'`);
  assert.ok(t[2]!.endsWith('…'));
  live.close();
});

test('progress: time left spreads known work over the job slots, never below the longest remainder', () => {
  const p = new Progress();
  p.apply({ type: 'build-start', buildId: 'b', goals: [], targets: 4, runnable: 4, jobs: 2, dryRun: false }, 0);
  p.apply({ type: 'decision', target: 'a', action: 'run', reasons: [], expectedMs: 10_000 }, 0);
  p.apply({ type: 'decision', target: 'b', action: 'run', reasons: [], expectedMs: 2_000 }, 0);
  p.apply({ type: 'decision', target: 'c', action: 'run', reasons: [], expectedMs: 2_000 }, 0);
  p.apply({ type: 'start', target: 'a', command: 'a', expectedMs: 10_000 }, 0);
  p.apply({ type: 'start', target: 'b', command: 'b', expectedMs: 2_000 }, 0);
  let v = p.view(1_000);
  assert.is(v.remainingMs, 9_000, 'a has 9 s left; b and c (3 s of work) fit beside it');
  assert.is(v.unknownDurations, false);
  assert.is(v.todo, 4);
  p.apply({ type: 'finish', target: 'b', status: 'built', durationMs: 2_000 }, 2_000);
  p.apply({ type: 'skipped', target: 'c', why: 'interrupted' }, 2_000);
  v = p.view(2_000);
  assert.equal([v.done, v.notBuilt, v.todo, v.running.length], [1, 1, 2, 1]);
  assert.is(v.remainingMs, 8_000);
});

test.run();
