// Shell quoting for command strings. Every value interpolated into a command goes through
// quote(): paths come from a configuration file and may contain spaces or quotes, and a
// command string is also what the engine hashes, so the quoting must be deterministic.

/** Characters that never need quoting in bash (words made only of these are left bare). */
const SAFE = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

/** Quote one word for bash: bare when safe, else single-quoted with `'` escaped as `'\''`. */
export function quote(word: string | number): string {
  const s = String(word);
  if (SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Join an argument vector into one command line, quoting each word. */
export function argv(words: ReadonlyArray<string | number>): string {
  return words.map(quote).join(' ');
}
