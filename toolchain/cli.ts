// Process plumbing shared by the four CLIs: exit codes (0 ok, 1 runtime failure with a
// traceback on stderr, 2 usage), plus small formatting helpers whose exact output other
// tools parse (the dose label "1e+03", JSON layout, SHA-256 of a file).
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, readSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { UsageError, usageText, type FlagSpec } from './args.ts';

/** Python-style exception names, so error strings read "ValueError: ..." as in the study. */
export class ValueError extends Error {
  override name = 'ValueError';
}
export class FileNotFoundError extends Error {
  override name = 'FileNotFoundError';
}
export class RuntimeError extends Error {
  override name = 'RuntimeError';
}

export interface Io {
  out: (line: string) => void;
  err: (line: string) => void;
}

export const processIo: Io = {
  out: (l) => process.stdout.write(l + '\n'),
  err: (l) => process.stderr.write(l + '\n'),
};

/** Run a CLI entry point: map UsageError to exit 2 and any other throw to exit 1. */
export async function runCli(
  prog: string,
  specs: Record<string, FlagSpec>,
  main: (argv: string[], io: Io) => Promise<number>,
): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(usageText(prog, specs) + '\n');
    process.exitCode = 0;
    return;
  }
  process.exitCode = await runMain(prog, specs, argv, processIo, main);
}

export async function runMain(
  prog: string,
  specs: Record<string, FlagSpec>,
  argv: string[],
  io: Io,
  main: (argv: string[], io: Io) => Promise<number>,
): Promise<number> {
  try {
    return await main(argv, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(usageText(prog, specs).split('\n')[0]!);
      io.err(`${prog}: error: ${e.message}`);
      return 2;
    }
    io.err('Traceback (most recent call last, JavaScript stack):');
    io.err(e instanceof Error ? (e.stack ?? `${e.name}: ${e.message}`) : String(e));
    return 1;
  }
}

/** Python's f"{dose:.0e}": 1000 -> "1e+03", 100000 -> "1e+05". */
export function doseLabel(dose: number): string {
  const [m, e] = dose.toExponential(0).split('e');
  const exp = Number(e);
  return `${m}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
}

/** Directory name for a dose, as the study's f"dose_{int(dose)}". */
export function doseDir(dose: number): string {
  return `dose_${Math.trunc(dose)}`;
}

/** JSON with 2-space indent and a trailing newline (stable key order = insertion order). */
export function writeJson(path: string, value: unknown): void {
  mkdirSync(dirname(path), { recursive: true });
  // temp name + rename: a reader (or a concurrent call) never sees a half-written manifest
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + '\n');
  renameSync(tmp, path);
}

/** SHA-256 of a file read in 64 KiB chunks, lowercase hex (as training.py computes it). */
export function sha256File(path: string): string {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(65536);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (n === 0) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}

/** Deterministic stand-in for the study's utcnow() timestamps: SOURCE_DATE_EPOCH if set
 *  (the reproducible-builds convention), else the Unix epoch. Never the wall clock. */
export function fixedTimestamp(): string {
  const sde = process.env['SOURCE_DATE_EPOCH'];
  const secs = sde && /^\d+$/.test(sde) ? Number(sde) : 0;
  return new Date(secs * 1000).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

export function errorString(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}
