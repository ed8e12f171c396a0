// The rebuilder: whether a target runs, and why. Pure: given what was recorded and what is on
// disk now, it returns a decision with every reason, so --explain, --dry-run and --status all
// say the same thing the build acts on.
import { flattenJson } from './canonical.ts';
import type { FingerprintParts } from './fingerprint.ts';
import { MISSING } from './hash.ts';
import { asRecord, hashAt, samePairs, type PathHashes } from './path-hashes.ts';
import type { SuccessRecord, TargetHistory } from './state.ts';
import { partsOf } from './state.ts';

export type Reason =
  | { kind: 'never-built' }
  | { kind: 'forced' }
  | { kind: 'unfinished'; build: string }
  | { kind: 'last-failed'; build: string; error: string }
  | { kind: 'output-missing'; path: string }
  | { kind: 'output-modified'; path: string; old: string; now: string }
  | { kind: 'command-changed'; old: string; now: string }
  | { kind: 'params-changed'; key: string; old: string | undefined; now: string | undefined }
  | { kind: 'env-changed'; name: string; old: string | null | undefined; now: string | null }
  | { kind: 'input-changed'; path: string; old: string | undefined; now: string | undefined }
  | { kind: 'deps-failed'; deps: string[] }
  | { kind: 'degraded-before' }
  /** Not a cause but the remedy: the artifact cache holds this fingerprint's outputs from build `build`. */
  | { kind: 'cached'; build: string; from: string };

export type Decision =
  | { action: 'fresh' }
  | { action: 'run'; reasons: Reason[] }
  /** rebuild: 'missing' with outputs present: inputs may have changed, the outputs are kept. */
  | { action: 'keep'; reasons: Reason[] };

export interface DecideInput {
  policy: 'stale' | 'missing';
  forced: boolean;
  history: TargetHistory | undefined;
  now: FingerprintParts;
  /** Every declared output and its hash now (MISSING when absent), as a list (engine/path-hashes.ts). */
  outputs: PathHashes;
  /** Dependencies that did not succeed in this build (runOnFailure targets run anyway). */
  failedDeps: string[];
}

/** Shared: a fresh decision carries nothing, and a no-op build makes one per target. */
const FRESH: Decision = Object.freeze({ action: 'fresh' });

export function decide(d: DecideInput): Decision {
  // The usual answer first, without the arrays and objects that gathering reasons takes (a no-op
  // build of 100,000 targets decides 100,000 of them): every check below that would give a
  // reason, made in place. Anything else goes the long way, which finds the same answer.
  if (!d.forced && d.failedDeps.length === 0 && d.policy === 'stale' && asRecorded(d.history, d.now, d.outputs)) return FRESH;
  const missing: string[] = [];
  for (let i = 0; i < d.outputs.length; i += 2) if (d.outputs[i + 1] === MISSING) missing.push(d.outputs[i]!);
  if (d.forced) return { action: 'run', reasons: [{ kind: 'forced' }] };
  if (d.failedDeps.length) return { action: 'run', reasons: [{ kind: 'deps-failed', deps: d.failedDeps }] };

  if (d.policy === 'missing') {
    if (missing.length) return { action: 'run', reasons: missing.map((path) => ({ kind: 'output-missing' as const, path })) };
    const rec = d.history?.ok;
    const changed = rec ? fingerprintReasons(partsOf(rec), d.now) : [{ kind: 'never-built' as const }];
    return changed.length ? { action: 'keep', reasons: changed } : FRESH;
  }

  const reasons: Reason[] = [];
  const h = d.history;
  const rec = h?.ok;
  if (!rec) reasons.push({ kind: 'never-built' });
  if (h?.unfinished) reasons.push({ kind: 'unfinished', build: h.unfinished.b });
  if (h?.fail) reasons.push({ kind: 'last-failed', build: h.fail.b, error: h.fail.err });
  for (const path of missing) reasons.push({ kind: 'output-missing', path });
  if (rec) {
    reasons.push(...outputReasons(rec, d.outputs));
    reasons.push(...fingerprintReasons(partsOf(rec), d.now));
    if (rec.degraded) reasons.push({ kind: 'degraded-before' });
  }
  return reasons.length ? { action: 'run', reasons } : FRESH;
}

/**
 * Whether the last run succeeded, completed and undegraded, and every output and every part of
 * the fingerprint is as it recorded: decide()'s reasons for the 'stale' policy, all absent.
 */
function asRecorded(h: TargetHistory | undefined, now: FingerprintParts, outputs: PathHashes): boolean {
  const rec = h?.ok;
  if (!rec || h!.unfinished || h!.fail || rec.degraded) return false;
  for (let i = 0; i < outputs.length; i += 2) {
    const v = outputs[i + 1];
    if (v === MISSING || v !== hashAt(rec.out, outputs[i]!)) return false;
  }
  return rec.cmd === now.command && rec.params === now.params && sameRecord(rec.env, now.env) && samePairs(rec.in, now.inputs);
}

function outputReasons(rec: SuccessRecord, outputs: PathHashes): Reason[] {
  const out: Reason[] = [];
  for (let i = 0; i < outputs.length; i += 2) {
    const path = outputs[i]!;
    const now = outputs[i + 1]!;
    if (now === MISSING) continue;
    const old = hashAt(rec.out, path);
    if (old === undefined) out.push({ kind: 'output-missing', path }); // newly declared output
    else if (old !== now) out.push({ kind: 'output-modified', path, old, now });
  }
  return out;
}

export function fingerprintReasons(old: FingerprintParts, now: FingerprintParts): Reason[] {
  // The usual answer of a no-op build, reached without building key sets.
  if (sameParts(old, now)) return [];
  const out: Reason[] = [];
  if (old.command !== now.command) out.push({ kind: 'command-changed', old: old.command, now: now.command });
  if (old.params !== now.params) {
    const a = old.params ? flattenJson(JSON.parse(old.params)) : new Map<string, string>();
    const b = now.params ? flattenJson(JSON.parse(now.params)) : new Map<string, string>();
    for (const k of new Set([...a.keys(), ...b.keys()])) {
      if (a.get(k) !== b.get(k)) out.push({ kind: 'params-changed', key: k, old: a.get(k), now: b.get(k) });
    }
  }
  // Own keys only: a path or variable named like a property every object has (`constructor`,
  // `__proto__`) and present on one side must not read the other side's inherited one.
  for (const k of new Set([...Object.keys(old.env), ...Object.keys(now.env)])) {
    const was = own(old.env, k);
    const is = own(now.env, k);
    if (was !== is) out.push({ kind: 'env-changed', name: k, old: was, now: is ?? null });
  }
  const a = asRecord(old.inputs);
  const b = asRecord(now.inputs);
  for (const k of new Set([...Object.keys(a), ...Object.keys(b)])) {
    const was = own(a, k);
    const is = own(b, k);
    if (was !== is) out.push({ kind: 'input-changed', path: k, old: was, now: is });
  }
  return out;
}

function own<V>(m: Record<string, V>, k: string): V | undefined {
  return Object.hasOwn(m, k) ? m[k] : undefined;
}

function sameParts(old: FingerprintParts, now: FingerprintParts): boolean {
  return old.command === now.command && old.params === now.params && sameRecord(old.env, now.env) && samePairs(old.inputs, now.inputs);
}

function sameRecord<V>(a: Record<string, V>, b: Record<string, V>): boolean {
  let n = 0;
  for (const k in a) {
    if (a[k] !== b[k]) return false;
    n++;
  }
  for (const _ in b) n--;
  return n === 0;
}

const short = (h: string | undefined | null) => (h === undefined ? 'absent' : h === null ? 'unset' : h === MISSING ? 'missing' : h.replace(/^tree:/, 'tree ').slice(0, 12));

/** One line per reason, in the words of the README. */
export function describeReason(r: Reason): string {
  switch (r.kind) {
    case 'never-built': return 'never built successfully';
    case 'forced': return 'forced by -B/--always-make';
    case 'unfinished': return `previous run (build ${r.build}) did not finish`;
    case 'last-failed': return `last run (build ${r.build}) failed: ${r.error.split('\n')[0]}`;
    case 'output-missing': return `output ${r.path} is missing`;
    case 'output-modified': return `output ${r.path} was modified since it was built (recorded ${short(r.old)}, now ${short(r.now)}); rebuilding it`;
    case 'command-changed': return `command changed: ${truncate(r.old)} -> ${truncate(r.now)}`;
    case 'params-changed': return `params key ${r.key} changed: ${r.old ?? 'absent'} -> ${r.now ?? 'absent'}`;
    case 'env-changed': return `env ${r.name} changed: ${r.old === undefined ? 'untracked' : JSON.stringify(r.old)} -> ${JSON.stringify(r.now)}`;
    case 'input-changed':
      if (r.old === undefined) return `input ${r.path} is new (${short(r.now)})`;
      if (r.now === undefined) return `input ${r.path} is gone (was ${short(r.old)})`;
      return `input ${r.path} changed: ${short(r.old)} -> ${short(r.now)}`;
    case 'deps-failed': return `dependencies did not succeed: ${r.deps.join(', ')} (runs anyway to report)`;
    case 'degraded-before': return 'last run saw failed dependencies';
    case 'cached': return `restored from the artifact cache (${r.from}) instead of running: the outputs of build ${r.build}, verified by sha256; its log is not re-created`;
  }
}

function truncate(s: string): string {
  const one = s.replace(/\s+/g, ' ');
  return JSON.stringify(one.length > 80 ? one.slice(0, 77) + '...' : one);
}
