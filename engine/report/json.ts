// --json: every event as one line of JSON on stdout, unchanged, for tools and tests.
import type { BuildEvent } from '../events.ts';

export function jsonReporter(write: (s: string) => void = (s) => process.stdout.write(s)): (e: BuildEvent) => void {
  return (e) => write(JSON.stringify({ ...e, time: Date.now() }) + '\n');
}
