// The one seam through which the engine touches the file system (Ninja's DiskInterface), so that
// atomic writes, the clock and stat details live in one place and tests can observe them.
import fs from 'node:fs';
import path from 'node:path';

export interface FileStat {
  dev: number;
  ino: number;
  size: number;
  mtimeNs: bigint;
  ctimeNs: bigint;
  isDir: boolean;
}

export class Disk {
  constructor(readonly root: string) {}

  abs(rel: string): string {
    return path.join(this.root, rel);
  }

  /** Stat without following errors: undefined when the path does not exist. */
  stat(rel: string): FileStat | undefined {
    const st = fs.statSync(this.abs(rel), { bigint: true, throwIfNoEntry: false });
    if (!st) return undefined;
    return { dev: Number(st.dev), ino: Number(st.ino), size: Number(st.size), mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, isDir: st.isDirectory() };
  }

  exists(rel: string): boolean {
    return fs.existsSync(this.abs(rel));
  }

  readText(rel: string): string | undefined {
    try {
      return fs.readFileSync(this.abs(rel), 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  /** Writes via a temp file in the same directory and a rename, so readers never see half a file. */
  writeAtomic(rel: string, data: string | Uint8Array): void {
    writeFileAtomic(this.abs(rel), data);
  }

  append(rel: string, line: string): void {
    const abs = this.abs(rel);
    fs.appendFileSync(abs, line);
  }

  mkdirFor(rel: string): void {
    fs.mkdirSync(path.dirname(this.abs(rel)), { recursive: true });
  }

  /** Wall clock in nanoseconds, for the racy-mtime guard. */
  nowNs(): bigint {
    return BigInt(Date.now()) * 1_000_000n;
  }
}

/** The one atomic write of the engine (outputs of actions, the state log, the stat cache). */
export function writeFileAtomic(abs: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  const tmp = `${abs}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  try {
    fs.writeFileSync(tmp, data);
    fs.renameSync(tmp, abs);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
}
