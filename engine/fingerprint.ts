// The one place that defines what "changed" means for a target: its command (or action identity),
// canonical params, declared environment values, and the content hash of every input. The parts
// are kept beside the digest so that --explain can say which one moved.
import crypto from 'node:crypto';
import type { Hasher } from './hash.ts';
import { asRecord, unique, type PathHashes } from './path-hashes.ts';
import { isGlob, type Target } from './spec.ts';

export interface FingerprintParts {
  /** The command text, or `action:<sha256 of its source and its module graph>`. */
  command: string;
  params: string;
  env: Record<string, string | null>;
  /**
   * Input path, content hash, ... (engine/path-hashes.ts), each path once: glob matches appear
   * one by one, so the match set counts; `glob:<pattern>`, 'no-match' for a glob matching nothing.
   */
  inputs: PathHashes;
}

export interface Fingerprint {
  digest: string;
  parts: FingerprintParts;
}

/** Action identities by function and module hash: one sha256 per action, not per target using it. */
const actionIds = new WeakMap<Function, { moduleHash: string; id: string }>();

export function commandIdentity(t: Target, moduleHash: string): string {
  if (typeof t.run === 'string') return t.run;
  if (typeof t.run === 'function') {
    const hit = actionIds.get(t.run);
    if (hit?.moduleHash === moduleHash) return hit.id;
    const id = `action:${sha256(`${t.run.toString()}\0${moduleHash}`)}`;
    actionIds.set(t.run, { moduleHash, id });
    return id;
  }
  return '';
}

export function computeFingerprint(t: Target, hasher: Hasher, env: NodeJS.ProcessEnv, moduleHash: string): Fingerprint {
  const listed: PathHashes = [];
  for (const inp of t.inputs) {
    if (isGlob(inp)) {
      const matches = hasher.expandGlob(inp);
      // An empty match set is still a fact worth recording: a new match must make the target stale.
      if (matches.length === 0) listed.push(`glob:${inp}`, 'no-match');
      for (const m of matches) listed.push(m, hasher.hashPath(m));
    } else {
      listed.push(inp, hasher.hashPath(inp));
    }
  }
  // A path declared twice, or also matched by a glob, is one input.
  const inputs = unique(listed);
  let envVals: Record<string, string | null> = NO_ENV;
  if (t.env.length) {
    envVals = {};
    for (const k of t.env) envVals[k] = env[k] ?? null;
  }
  return new LazyDigest({ command: commandIdentity(t, moduleHash), params: t.paramsJson, env: envVals, inputs });
}

/** The env part of every target that declares none: shared, so frozen (records keep it). */
const NO_ENV: Record<string, string | null> = Object.freeze({}) as Record<string, string | null>;

// The rebuilder compares parts; only a target that runs (cache key, job record) needs the digest,
// so a no-op build of 10,000 targets skips 10,000 key sorts and sha256 rounds. A class rather
// than an object literal with a getter: that literal costs a closure and its context per target.
class LazyDigest implements Fingerprint {
  private d: string | undefined;
  constructor(readonly parts: FingerprintParts) {}
  get digest(): string {
    return (this.d ??= digestOf(this.parts));
  }
}

export function digestOf(parts: FingerprintParts): string {
  const h = crypto.createHash('sha256');
  h.update(parts.command);
  h.update('\0');
  h.update(parts.params);
  h.update('\0');
  for (const k of Object.keys(parts.env).sort()) h.update(`${k}=${parts.env[k] ?? '\u0000unset'}\n`);
  h.update('\0');
  const m = asRecord(parts.inputs);
  for (const k of Object.keys(m).sort()) h.update(`${k}\0${m[k]}\n`);
  return h.digest('hex');
}

export function sha256(s: string | Uint8Array): string {
  return crypto.createHash('sha256').update(s).digest('hex');
}
