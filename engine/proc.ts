// What /proc says of a process (Linux only; elsewhere every answer is undefined): the one reader
// of /proc/<pid>/stat for the lock, orphan clean-up and the command launcher.
import fs from 'node:fs';

/** The fields of /proc/<pid>/stat after the command name (state first), or undefined when it is gone. */
function statFields(pid: number): string[] | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return undefined;
  }
}

/** One-letter state (R, S, Z…), or undefined when the process is gone or there is no /proc. */
export const procState = (pid: number): string | undefined => statFields(pid)?.[0];

export function pgidOf(pid: number): number | undefined {
  const f = statFields(pid);
  return f ? Number(f[2]) : undefined;
}

/** Kernel start time of a process (field 22), so a recycled pid is not taken for the one recorded. */
export const procStart = (pid: number): string | undefined => statFields(pid)?.[19];

export const HAS_PROC = fs.existsSync('/proc/self/stat');
