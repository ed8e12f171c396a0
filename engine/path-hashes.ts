// A record's inputs or outputs: path, hash, path, hash, ... in one flat list.
//
// Why not an object keyed by path: the log holds one such map for each input and output side of
// every record, and a load of 100,000 records spent ~250 ms of its ~560 making them: every key of
// an object is an internalised string, and nearly every path is new to the process. The log's own
// lines are already flat lists (state-codec.ts); loaded, the very arrays JSON.parse made are kept,
// their hashes turned to hex in place (load ~300 ms, 25 MB less heap). The rebuilder compares them
// with what it hashed now without building a map; whoever wants a map of them asks for one.
export type PathHashes = string[];

/** The flat list of a map of path → hash, in its key order. */
export function pathHashes(m: Record<string, string>): PathHashes {
  const p: PathHashes = [];
  for (const k of Object.keys(m)) p.push(k, m[k]!);
  return p;
}

/** The hash a list gives a path (the last, should one be listed twice, as a map would keep it). */
export function hashAt(p: PathHashes, path: string): string | undefined {
  for (let i = p.length - 2; i >= 0; i -= 2) if (p[i] === path) return p[i + 1];
  return undefined;
}

/** The list as a map of path → hash: a plain object whose prototype no path (`__proto__`) replaces. */
export function asRecord(p: PathHashes): Record<string, string> {
  const m: Record<string, string> = {};
  for (let i = 0; i < p.length; i += 2) {
    const k = p[i]!;
    if (k === '__proto__') Object.defineProperty(m, k, { value: p[i + 1], enumerable: true, writable: true, configurable: true });
    else m[k] = p[i + 1]!;
  }
  return m;
}

/** The list as a Map (the last hash of a path listed twice, as asRecord keeps it). */
function byPath(p: PathHashes): Map<string, string> {
  const m = new Map<string, string>();
  for (let i = 0; i < p.length; i += 2) m.set(p[i]!, p[i + 1]!);
  return m;
}

/**
 * The list with each path once, where it first appears, with its last hash (as a map built in
 * that order keeps it); the list itself when no path repeats, the usual case.
 */
export function unique(p: PathHashes): PathHashes {
  if (p.length <= 2) return p;
  if (p.length <= 16) {
    let repeats = false;
    for (let i = 2; i < p.length && !repeats; i += 2) for (let j = 0; j < i; j += 2) if (p[j] === p[i]) { repeats = true; break; }
    if (!repeats) return p;
  } else if (new Set(p.filter((_, i) => i % 2 === 0)).size * 2 === p.length) return p;
  const out: PathHashes = [];
  for (const [k, v] of byPath(p)) out.push(k, v);
  return out;
}

/** Whether two lists are the same map of path → hash (asRecord of each), in any order. */
export function samePairs(a: PathHashes, b: PathHashes): boolean {
  // The usual case, a record against the fingerprint that made it: the same list.
  if (a.length === b.length) {
    let i = 0;
    while (i < a.length && a[i] === b[i] && a[i + 1] === b[i + 1]) i += 2;
    if (i === a.length) return true;
  }
  const ma = byPath(a);
  const mb = byPath(b);
  if (ma.size !== mb.size) return false;
  for (const [k, v] of mb) if (ma.get(k) !== v) return false;
  return true;
}

/** Whether the list is the map `m` (as asRecord would make it): the same paths, each with its hash. */
export function sameAs(p: PathHashes, m: Record<string, string>): boolean {
  // Few paths (the usual case) are looked up in place: n keys of m each found with its hash in a
  // list of n pairs means the list names no path twice, and no other.
  const small = p.length <= 16;
  const listed = small ? undefined : byPath(p);
  let n = 0;
  for (const k in m) {
    if (!Object.hasOwn(m, k) || (small ? hashAt(p, k) : listed!.get(k)) !== m[k]) return false;
    n++;
  }
  if (n * 2 === p.length) return true;
  // More pairs than keys: the same map only if the extra ones repeat paths of m.
  return (listed ?? byPath(p)).size === n;
}
