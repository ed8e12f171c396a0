// A running `build.ts --watch --json` for end-to-end tests: its events as they arrive, waits on
// them, and a clean stop. Real file-system events in a real temporary root; nothing is faked.
import type { ChildProcess } from 'node:child_process';
import { cliAsync } from './cli.ts';

export type Ev = Record<string, unknown> & { type: string };

export class WatchSession {
  readonly events: Ev[] = [];
  readonly child: ChildProcess;
  stderr = '';
  private buf = '';
  private waiters: Array<() => void> = [];
  readonly exited: Promise<number | null>;

  constructor(readonly root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}) {
    this.child = cliAsync(root, ['--watch', '--json', ...args], env);
    this.child.stdout!.on('data', (c: Buffer) => {
      this.buf += c.toString();
      const lines = this.buf.split('\n');
      this.buf = lines.pop() ?? '';
      for (const l of lines) {
        if (!l.startsWith('{')) continue;
        try {
          this.events.push(JSON.parse(l) as Ev);
        } catch { /* not an event */ }
      }
      this.wake();
    });
    this.child.stderr!.on('data', (c: Buffer) => (this.stderr += c.toString()));
    this.exited = new Promise((resolve) => this.child.on('exit', (code, sig) => {
      this.wake();
      resolve(code ?? (sig ? 128 : null));
    }));
  }

  private wake(): void {
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w();
  }

  /** Index to count events from. */
  mark(): number {
    return this.events.length;
  }

  since(mark: number, type?: string): Ev[] {
    return this.events.slice(mark).filter((e) => type === undefined || e.type === type);
  }

  /** Names of the targets started since the mark, sorted. */
  started(mark: number): string[] {
    return this.since(mark, 'start').map((e) => String(e.target)).sort();
  }

  /** Waits for the first event since the mark that satisfies pred. */
  async waitFor(mark: number, pred: (e: Ev) => boolean, what: string, timeoutMs = 20_000): Promise<Ev> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(mark).find(pred);
      if (hit) return hit;
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`watch exited while waiting for ${what}\n${this.stderr}`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; events since mark: ${JSON.stringify(this.since(mark).map((e) => [e.type, e.target ?? '']))}\n${this.stderr}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, Math.min(left, 500));
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  /** Waits until watch mode is idle again after a build that started after the mark. */
  async idleAfter(mark: number, what: string): Promise<void> {
    const m = await this.waitFor(mark, (e) => e.type === 'build-start', `a build (${what})`);
    await this.waitFor(this.events.indexOf(m), (e) => e.type === 'watch-ready', `watch-ready after ${what}`);
  }

  /** Lets time pass with the watcher running (to prove that nothing happens). */
  quiet(ms: number): Promise<void> {
    return new Promise((r) => setTimeout(r, ms));
  }

  /** Ctrl-C: SIGINT to the process; resolves to its exit code. */
  async interrupt(): Promise<number | null> {
    this.child.kill('SIGINT');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 15_000);
    try {
      return await this.exited;
    } finally {
      clearTimeout(t);
    }
  }
}
