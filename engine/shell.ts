// Quoting values into shell commands. A target's command is a bash string, and values that come
// from params or a configuration file (paths with spaces, quotes, `$()`, `;`, newlines) must reach
// the command as one word each, never as shell syntax. The command text is also what the
// fingerprint hashes, so quoting is deterministic: the same value always yields the same text.

/** Words made only of these characters need no quoting in bash (and stay readable in logs). */
const SAFE = /^[A-Za-z0-9_\/.,:=@%+-]+$/;

export type ShellValue = string | number | boolean | bigint | ReadonlyArray<string | number | boolean | bigint>;

/** One word for bash: bare when safe, else single-quoted with `'` written as `'\''`. */
export function quote(value: string | number | boolean | bigint): string {
  if (value === null || value === undefined) throw new TypeError(`shell quote: got ${value}; pass a string or number (a missing value must not become an empty word silently)`);
  const s = String(value);
  if (s.includes('\0')) throw new TypeError(`shell quote: ${JSON.stringify(s)} contains a NUL byte, which no command argument can carry`);
  if (SAFE.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** An argument vector as one command line, each word quoted. */
export function argv(words: ReadonlyArray<string | number | boolean | bigint>): string {
  return words.map(quote).join(' ');
}

/**
 * Tagged template: the literal parts are shell syntax as written, every interpolated value is
 * quoted (an array becomes several words).
 *   sh`python train.py --out ${dir} ${flags}`
 */
export function sh(strings: TemplateStringsArray, ...values: ShellValue[]): string {
  let out = strings[0]!;
  values.forEach((v, i) => {
    out += Array.isArray(v) ? argv(v) : quote(v as string | number | boolean | bigint);
    out += strings[i + 1]!;
  });
  return out;
}
