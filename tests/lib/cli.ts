// Helpers for end-to-end tests: temporary roots and the real CLI as a subprocess.
import { spawnSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const BUILD_TS = path.join(REPO, 'build.ts');

/** A fresh temporary root with node_modules linked in, so targets modules can import packages. */
export function tempRoot(prefix = 'hubmake-'): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

export function write(root: string, rel: string, data: string): void {
  const abs = path.join(root, rel);
  fs.mkdirSync(path.dirname(abs), { recursive: true });
  fs.writeFileSync(abs, data);
}

export function read(root: string, rel: string): string {
  return fs.readFileSync(path.join(root, rel), 'utf8');
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Parsed --json events (empty without --json). */
  events: Array<Record<string, unknown> & { type: string }>;
}

/** Runs `node --import tsx build.ts -C root ...args` and waits for it. */
export function cli(root: string, args: string[], env: NodeJS.ProcessEnv = {}): CliResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 120_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, events: parseEvents(r.stdout) };
}

export function cliAsync(root: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawn(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, ...args], {
    cwd: root,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
}

export function parseEvents(stdout: string): CliResult['events'] {
  const out: CliResult['events'] = [];
  for (const line of stdout.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      out.push(JSON.parse(line));
    } catch { /* not an event */ }
  }
  return out;
}

/** Names of targets that started running, from --json events. */
export function started(r: CliResult): string[] {
  return r.events.filter((e) => e.type === 'start').map((e) => String(e.target)).sort();
}

/** Every file under root (except node_modules) with its bytes, to prove nothing changed. */
export function snapshot(root: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (dir: string) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const abs = path.join(dir, ent.name);
      const rel = path.relative(root, abs);
      if (rel === 'node_modules') continue;
      if (ent.isDirectory()) {
        out.set(rel + '/', '');
        walk(abs);
      } else if (ent.isSymbolicLink()) out.set(rel, `-> ${fs.readlinkSync(abs)}`);
      else out.set(rel, fs.readFileSync(abs).toString('base64'));
    }
  };
  walk(root);
  return out;
}
