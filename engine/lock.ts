// One build at a time per root. The lock file names its holder; a lock whose process is gone
// (killed hard) is taken over, by renaming it aside first so two waiting builds cannot both win.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { procStart } from './proc.ts';

export interface LockHolder {
  pid: number;
  host: string;
  started: string;
  /** Kernel start time of the process, so a recycled pid is not mistaken for the holder. */
  boot?: string;
}


function alive(h: LockHolder): boolean {
  if (h.host !== os.hostname()) return true; // cannot tell from here; be safe
  try {
    process.kill(h.pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  const now = procStart(h.pid);
  return h.boot === undefined || now === undefined || now === h.boot;
}

export class Lock {
  private held = false;
  readonly file: string;

  constructor(stateDir: string) {
    this.file = path.join(stateDir, 'lock');
  }

  /** Waits until the lock is ours; onWait is told once who holds it. */
  async acquire(onWait: (holder: LockHolder) => void, signal?: AbortSignal): Promise<void> {
    fs.mkdirSync(path.dirname(this.file), { recursive: true });
    const me = this.holder();
    let told = false;
    for (;;) {
      try {
        if (this.link(me)) return;
      } catch (e) {
        // A full disk or a read-only .hubmake/: say which file, not just the errno.
        throw new Error(`cannot write the build lock ${this.file}: ${(e as Error).message}`);
      }
      const text = readOr(this.file);
      let holder: LockHolder | undefined;
      try {
        holder = JSON.parse(text ?? '') as LockHolder;
      } catch {
        holder = undefined;
      }
      if (text !== undefined && (!holder || !alive(holder))) {
        // Unreadable (damaged) or its holder is dead: take it.
        const aside = `${this.file}.stale-${process.pid}`;
        try {
          fs.renameSync(this.file, aside);
          const took = readOr(aside);
          if (took !== text) {
            // Another build took over between our read and the rename: give its lock back.
            try { fs.linkSync(aside, this.file); } catch { /* someone else holds it now */ }
          }
          fs.rmSync(aside, { force: true });
        } catch { /* lost the race; loop */ }
        continue;
      }
      if (holder && !told) {
        onWait(holder);
        told = true;
      }
      if (signal?.aborted) throw new Error('interrupted while waiting for the lock');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** One try, without waiting or taking over an abandoned lock: true when it is now ours. */
  tryAcquire(): boolean {
    try {
      return this.link(this.holder());
    } catch {
      return false; // no state directory to write in
    }
  }

  private holder(): LockHolder {
    const me: LockHolder = { pid: process.pid, host: os.hostname(), started: new Date().toISOString() };
    const boot = procStart(process.pid);
    if (boot) me.boot = boot;
    return me;
  }

  /**
   * The lock appears with its holder already written (temp file + link, which fails if the lock
   * exists): a lock opened but not yet written would look abandoned to a second build starting
   * at the same moment, and both would build. False when another holds it; throws on any other
   * error.
   */
  private link(me: LockHolder): boolean {
    const tmp = `${this.file}.new-${process.pid}`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(me));
      fs.linkSync(tmp, this.file);
      this.held = true;
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      fs.rmSync(tmp, { force: true });
    }
  }

  release(): void {
    if (!this.held) return;
    this.held = false;
    const text = readOr(this.file);
    try {
      if (text && (JSON.parse(text) as LockHolder).pid === process.pid) fs.rmSync(this.file, { force: true });
    } catch { /* leave it */ }
  }
}

function readOr(f: string): string | undefined {
  try {
    return fs.readFileSync(f, 'utf8');
  } catch {
    return undefined;
  }
}
