// Fault injection for crash-consistency tests and bench/crash.ts: a seeded random graph of slow
// shell commands and in-process actions that write their outputs in pieces, a build of it through
// the real CLI killed at a random moment (SIGKILL of the whole process tree, or SIGINT/SIGTERM),
// then a second build, and a verdict: do the outputs equal a clean build's, and did only targets
// that were running or not yet built run again?
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { spawn } from 'node:child_process';
import { BUILD_TS, REPO, parseEvents, tempRoot } from './cli.ts';
import { prng } from './prng.ts';

export interface CrashTarget {
  name: string;
  kind: 'command' | 'action';
  outputs: string[];
  inputs: string[];
  sleepMs: number;
  log?: string;
}

export interface CrashGraph {
  seed: number;
  sources: Record<string, string>;
  targets: CrashTarget[];
}

const sha = (s: string) => crypto.createHash('sha256').update(s).digest('hex');

/** A random DAG: every target reads some earlier outputs and sources, sleeps, writes in two steps. */
export function makeCrashGraph(seed: number, size?: { min: number; max: number }): CrashGraph {
  const r = prng(seed);
  const min = size?.min ?? 4;
  const max = size?.max ?? 8;
  const sources: Record<string, string> = {};
  const nSrc = 1 + r.int(3);
  for (let i = 0; i < nSrc; i++) sources[`src/s${i}.txt`] = `source ${i} of seed ${seed}\n`;
  const n = min + r.int(max - min + 1);
  const targets: CrashTarget[] = [];
  for (let i = 0; i < n; i++) {
    const name = `t${i}`;
    const dir = r.chance(0.3) ? `out/d${i % 2}/` : 'out/';
    const outputs = [`${dir}${name}.txt`];
    if (r.chance(0.25)) outputs.push(`${dir}${name}.extra`);
    const inputs = new Set<string>();
    const earlier = targets.flatMap((t) => t.outputs);
    const k = earlier.length ? r.int(3) : 0;
    for (let j = 0; j < k; j++) inputs.add(r.pick(earlier));
    if (r.chance(0.6) || inputs.size === 0) inputs.add(r.pick(Object.keys(sources)));
    const t: CrashTarget = { name, kind: r.chance(0.35) ? 'action' : 'command', outputs, inputs: [...inputs], sleepMs: 15 + r.int(120) };
    if (t.kind === 'command' && r.chance(0.3)) t.log = `logs/${name}.log`;
    targets.push(t);
  }
  return { seed, sources, targets };
}

/** What a clean build of the graph writes, computed without building. */
export function expectedOutputs(g: CrashGraph): Map<string, string> {
  const content = new Map<string, string>(Object.entries(g.sources));
  for (const t of g.targets) {
    const joined = t.inputs.map((i) => content.get(i)!).join('');
    content.set(t.outputs[0]!, `${t.name}\n${sha(joined)}  -\n`);
    if (t.outputs[1]) content.set(t.outputs[1], `${t.name} extra\n`);
  }
  for (const s of Object.keys(g.sources)) content.delete(s);
  return content;
}

const q = (s: string) => `'${s}'`;

/** The targets module. Commands append their name to ran.log, so a test can count every run. */
export function targetsModule(g: CrashGraph): string {
  const specs = g.targets.map((t) => {
    const fields = [`name: ${JSON.stringify(t.name)}`, `outputs: ${JSON.stringify(t.outputs)}`, `inputs: ${JSON.stringify(t.inputs)}`];
    if (t.log) fields.push(`log: ${JSON.stringify(t.log)}`);
    if (t.kind === 'command') {
      const [o1, o2] = t.outputs;
      const secs = (t.sleepMs / 1000).toFixed(3);
      // The first output is written in two steps with a sleep between: a kill can leave it half-written.
      const parts = [
        `echo ${t.name} >> ran.log`,
        `mkdir -p ${q(path.posix.dirname(o1!))}`,
        `printf '%s\\n' ${t.name} > ${q(o1!)}`,
        `sleep ${secs}`,
        `cat ${t.inputs.map(q).join(' ')} /dev/null | sha256sum >> ${q(o1!)}`,
      ];
      if (o2) parts.push(`printf '%s extra\\n' ${t.name} > ${q(o2)}`);
      if (t.log) parts.push(`echo done ${t.name}`);
      fields.push(`run: ${JSON.stringify(parts.join(' && '))}`);
    } else {
      fields.push(`run: act(${t.sleepMs})`);
    }
    return `  { ${fields.join(', ')} },`;
  });
  return `import fs from 'node:fs';
import path from 'node:path';
import crypto from 'node:crypto';
// An in-process action: counts itself, reads its inputs, sleeps, writes output 1, sleeps, output 2.
const act = (ms) => async (ctx) => {
  fs.appendFileSync(path.join(ctx.root, 'ran.log'), ctx.name + '\\n');
  const declared = ${JSON.stringify(Object.fromEntries(g.targets.map((t) => [t.name, t.inputs])))}[ctx.name];
  const joined = declared.map((p) => fs.readFileSync(path.join(ctx.root, p), 'utf8')).join('');
  await new Promise((r) => setTimeout(r, ms / 2));
  await ctx.writeFile(ctx.outputs[0], ctx.name + '\\n' + crypto.createHash('sha256').update(joined).digest('hex') + '  -\\n');
  await new Promise((r) => setTimeout(r, ms / 2));
  if (ctx.outputs[1]) await ctx.writeFile(ctx.outputs[1], ctx.name + ' extra\\n');
};
export default [
${specs.join('\n')}
];
`;
}

export function writeGraph(root: string, g: CrashGraph): void {
  for (const [p, c] of Object.entries(g.sources)) {
    fs.mkdirSync(path.dirname(path.join(root, p)), { recursive: true });
    fs.writeFileSync(path.join(root, p), c);
  }
  fs.writeFileSync(path.join(root, 'targets.ts'), targetsModule(g));
}

/** Every pid below `root` in the process tree (by /proc ppid links). */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const ent of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(ent)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${ent}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(ent));
      children.set(ppid, list);
    } catch { /* gone */ }
  }
  const out: number[] = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop()!;
    for (const c of children.get(p) ?? []) {
      out.push(c);
      stack.push(c);
    }
  }
  return out;
}

function signalAll(pids: Iterable<number>, sig: NodeJS.Signals): void {
  for (const p of pids) {
    try {
      process.kill(p, sig);
    } catch { /* already gone */ }
  }
}

/** Process state letter from /proc (R, S, T, Z...), undefined when gone. */
function stateOf(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0];
  } catch {
    return undefined;
  }
}

/**
 * SIGKILL a process and everything below it, including commands in their own process groups:
 * freeze the tree first so nothing forks or writes meanwhile. A SIGSTOP takes effect
 * asynchronously (a process in the middle of fork() finishes it), so each round waits until every
 * frozen process is really stopped before looking for children again.
 */
export function killTree(pid: number): void {
  const frozen = new Set<number>([pid]);
  signalAll([pid], 'SIGSTOP');
  for (let round = 0; round < 50; round++) {
    const deadline = Date.now() + 500;
    while (Date.now() < deadline && [...frozen].some((p) => { const st = stateOf(p); return st !== undefined && st !== 'T' && st !== 't' && st !== 'Z' && st !== 'X'; })) { /* spin: milliseconds */ }
    const now = descendants(pid).filter((p) => !frozen.has(p));
    if (now.length === 0) break;
    for (const p of now) frozen.add(p);
    signalAll(now, 'SIGSTOP');
  }
  signalAll(frozen, 'SIGKILL');
}

export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** SIGKILL: the whole process tree. SIGKILL-build: the build process alone, as the OOM killer does, leaving its commands running. */
export type Fault = 'SIGKILL' | 'SIGKILL-build' | 'SIGINT' | 'SIGTERM';

export interface TrialOptions {
  seed: number;
  fault: Fault;
  /** Second build through the real CLI (bench) or in-process through runBuild (fast, for CI). */
  rebuild: 'cli' | 'in-process';
  /** Also check that a third build has nothing to do. */
  checkNoop?: boolean;
  jobs?: number;
}

export interface TrialResult {
  seed: number;
  fault: Fault;
  incremental: boolean;
  killedAfterMs: number;
  /** Exit code of the faulted build (null when killed by a signal). */
  faultedExit: number | null;
  /** Targets that started in the faulted build, and those that finished built. */
  startedBefore: string[];
  finishedBefore: string[];
  rerun: string[];
  problems: string[];
  /** Leftover temp files of atomic writes interrupted by SIGKILL (litter, not damage). */
  litter: string[];
  root: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

/** Waits for the child's exit, resolving to [code, signal]. */
function exited(child: ReturnType<typeof spawn>): Promise<[number | null, NodeJS.Signals | null]> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve([child.exitCode, child.signalCode]);
  return new Promise((res) => child.once('exit', (c, s) => res([c, s])));
}

/** A build through the engine's session (lock, state, builder) in this process: no start-up cost. */
export async function buildInProcess(root: string, jobs: number, goalNames: string[] = []): Promise<{ code: number; events: Array<Record<string, unknown> & { type: string }> }> {
  const { loadTargets } = await import(path.join(REPO, 'engine/load.ts'));
  const { resolveGoals } = await import(path.join(REPO, 'engine/graph.ts'));
  const { runBuild } = await import(path.join(REPO, 'engine/session.ts'));
  const events: Array<Record<string, unknown> & { type: string }> = [];
  const loaded = await loadTargets(root, 'targets.ts');
  const goals = resolveGoals(loaded.graph, goalNames);
  const code = await runBuild({
    root, loaded, goals: goals.goals, closure: goals.closure, always: false, jobs, keepGoing: false, dryRun: false,
    emit: (e: { type: string }) => events.push(e as Record<string, unknown> & { type: string }),
    signal: new AbortController().signal,
    env: process.env,
  });
  return { code, events };
}

async function buildCli(root: string, jobs: number): Promise<{ code: number; events: Array<Record<string, unknown> & { type: string }>; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, '-f', 'targets.ts', '--json', '-j', String(jobs)], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  const [code] = await exited(child);
  return { code: code ?? -1, events: parseEvents(out), stderr: err };
}

/** Every file under root that is not a source, an output, a log, the module, ran.log or build state. */
function strayFiles(root: string, g: CrashGraph): string[] {
  const known = new Set<string>([...Object.keys(g.sources), 'targets.ts', 'ran.log', ...g.targets.flatMap((t) => [...t.outputs, ...(t.log ? [t.log] : [])])]);
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const ent of fs.readdirSync(path.join(root, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${ent.name}` : ent.name;
      if (r === 'node_modules' || r === '.hubmake') continue;
      if (ent.isDirectory()) walk(r);
      else if (!known.has(r)) out.push(r);
    }
  };
  walk('');
  return out;
}

/** One trial: (maybe) a full build and an input change, a faulted build, a second build, the verdict. */
export async function crashTrial(o: TrialOptions): Promise<TrialResult> {
  const r = prng(o.seed * 7919 + 17);
  const g = makeCrashGraph(o.seed);
  const jobs = o.jobs ?? 1 + r.int(3);
  const root = tempRoot('hubmake-crash-');
  writeGraph(root, g);
  const problems: string[] = [];
  const incremental = r.chance(0.4);
  if (incremental) {
    const first = await buildInProcess(root, jobs);
    if (first.code !== 0) problems.push(`the first full build exited ${first.code}`);
    const src = r.pick(Object.keys(g.sources));
    g.sources[src] = `${g.sources[src]}changed ${o.seed}\n`;
    fs.writeFileSync(path.join(root, src), g.sources[src]!);
    fs.writeFileSync(path.join(root, 'ran.log'), '');
  }
  // The faulted build streams its --json events to a file: writes to a file are synchronous, so
  // every event emitted before the kill is on disk.
  const eventsFile = path.join(root, '.events-1.jsonl');
  const fd = fs.openSync(eventsFile, 'w');
  const errFd = fs.openSync(path.join(root, '.stderr-1.txt'), 'w');
  const t0 = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, '-f', 'targets.ts', '--json', '-j', String(jobs)], {
    cwd: root,
    stdio: ['ignore', fd, errFd],
    detached: true,
  });
  fs.closeSync(fd);
  fs.closeSync(errFd);
  // Kill during start-up now and then; usually at a random moment of the build proper.
  const duringStartup = r.chance(0.1);
  const span = g.targets.reduce((s, t) => s + t.sleepMs, 0) / Math.max(1, jobs - 0.5) + 150;
  let delay = 0;
  if (duringStartup) delay = r.int(400);
  else {
    while (Date.now() - t0 < 20_000 && child.exitCode === null && !readLines(eventsFile).length) await sleep(5);
    delay = r.int(Math.ceil(span));
  }
  await sleep(delay);
  const killedAfterMs = Date.now() - t0;
  let faultedExit: number | null = null;
  let orphans: number[] = [];
  if (o.fault === 'SIGKILL') {
    if (child.exitCode === null) killTree(child.pid!);
    faultedExit = (await exited(child))[0];
  } else if (o.fault === 'SIGKILL-build') {
    // The build's commands (marked in their environment), not helpers such as tsx's esbuild service.
    orphans = descendants(child.pid!).filter((p) => {
      try {
        return fs.readFileSync(`/proc/${p}/environ`).includes('HUBMAKE_RUN=');
      } catch {
        return false;
      }
    });
    try {
      process.kill(child.pid!, 'SIGKILL');
    } catch { /* already exited */ }
    faultedExit = (await exited(child))[0];
    // A command spawned an instant before the kill is still starting up; let it log itself before
    // the count below (a real next build takes far longer than this to start).
    await sleep(100);
  } else {
    // Like Ctrl-C in a terminal: the signal goes to the build's process group (the commands
    // live in groups of their own and must be stopped by the build).
    const pidsBefore = new Set(descendants(child.pid!));
    try {
      process.kill(-child.pid!, o.fault);
    } catch { /* already exited */ }
    const timer = setTimeout(() => killTree(child.pid!), 15_000);
    const [code, sig] = await exited(child);
    clearTimeout(timer);
    faultedExit = code;
    const lines = readLines(eventsFile);
    const finishedOk = lines.some((l) => l.includes('"type":"build-end"') && l.includes('"interrupted":false'));
    // Before the build starts (still loading the targets module) nothing is on disk yet and the
    // default disposition applies: the process dies by the signal itself.
    const beforeStart = !lines.some((l) => l.includes('"type":"build-start"'));
    // After the build has ended (state saved, lock released) the handlers are gone as well: a
    // signal in that last instant ends the process by the signal, with nothing left to do.
    const ok = finishedOk ? code === 0 || sig === o.fault : code === 130 || (beforeStart && sig === o.fault);
    if (!ok) problems.push(`after ${o.fault} the build exited with ${code ?? sig}, expected 130`);
    await sleep(20);
    const left = [...pidsBefore].filter(alive);
    if (left.length) {
      problems.push(`after ${o.fault}, processes of the build were still running: ${left.join(', ')}`);
      signalAll(left, 'SIGKILL');
    }
  }
  const faulted = parseEvents(fs.readFileSync(eventsFile, 'utf8'));
  const startedBefore = faulted.filter((e) => e.type === 'start').map((e) => String(e.target));
  const finishedBefore = faulted.filter((e) => e.type === 'finish' && e.status === 'built').map((e) => String(e.target));
  const freshBefore = faulted.filter((e) => e.type === 'decision' && e.action === 'fresh').map((e) => String(e.target));
  const ranBefore = readLines(path.join(root, 'ran.log')).length;

  const second = o.rebuild === 'cli' ? await buildCli(root, jobs) : await buildInProcess(root, jobs);
  if (second.code !== 0) problems.push(`the second build exited ${second.code}: ${JSON.stringify(second.events.filter((e) => e.type === 'finish' || e.type === 'warning' || e.type === 'error')).slice(0, 600)}`);
  const rerun = readLines(path.join(root, 'ran.log')).slice(ranBefore);
  // The commands the killed build left running must have been stopped by the second build.
  const stillRunning = orphans.filter(alive);
  if (stillRunning.length) {
    problems.push(`commands of the killed build were still running after the second build: ${stillRunning.join(', ')}`);
    signalAll(stillRunning, 'SIGKILL');
  }
  const notAgain = new Set([...finishedBefore, ...freshBefore]);
  for (const t of rerun) if (notAgain.has(t)) problems.push(`target ${t} ran again although it ${finishedBefore.includes(t) ? 'had finished' : 'was fresh'} before the ${o.fault}`);
  const counts = new Map<string, number>();
  for (const t of rerun) counts.set(t, (counts.get(t) ?? 0) + 1);
  for (const [t, c] of counts) if (c > 1) problems.push(`target ${t} ran ${c} times in the second build`);

  for (const [p, want] of expectedOutputs(g)) {
    let got: string | undefined;
    try {
      got = fs.readFileSync(path.join(root, p), 'utf8');
    } catch { /* missing */ }
    if (got !== want) problems.push(`output ${p} is ${got === undefined ? 'missing' : JSON.stringify(got.slice(0, 80))}, a clean build writes ${JSON.stringify(want.slice(0, 80))}`);
  }
  const stray = strayFiles(root, g).filter((f) => !f.startsWith('.events-') && !f.startsWith('.stderr-'));
  const litter = stray.filter((f) => /\.tmp-\d+-[a-z0-9]+$/.test(f));
  for (const f of stray) if (!litter.includes(f)) problems.push(`unexpected file ${f} after the second build`);

  if (o.checkNoop) {
    const third = await buildInProcess(root, jobs);
    const ranThird = readLines(path.join(root, 'ran.log')).length - ranBefore - rerun.length;
    if (third.code !== 0 || ranThird !== 0) problems.push(`a third build was not a no-op: exit ${third.code}, ${ranThird} target(s) ran`);
    const warn = third.events.filter((e) => e.type === 'warning');
    if (warn.length) problems.push(`the third build warned: ${JSON.stringify(warn)}`);
  }
  return { seed: o.seed, fault: o.fault, incremental, killedAfterMs, faultedExit, startedBefore, finishedBefore, rerun, problems, litter, root };
}

/** Runs trials `parallel` at a time; calls back after each. */
export async function runTrials(seeds: number[], make: (seed: number) => TrialOptions, parallel: number, each?: (r: TrialResult) => void): Promise<TrialResult[]> {
  const results: TrialResult[] = [];
  let next = 0;
  const worker = async () => {
    while (next < seeds.length) {
      const seed = seeds[next++]!;
      const res = await crashTrial(make(seed));
      results.push(res);
      each?.(res);
      if (res.problems.length === 0) fs.rmSync(res.root, { recursive: true, force: true });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return results;
}

/** The bad outcomes of a batch of trials, one paragraph each ('' when all were good). */
export function verdict(results: TrialResult[]): string {
  return results
    .filter((r) => r.problems.length)
    .map((r) => `seed ${r.seed} (${r.fault}, ${r.incremental ? 'incremental' : 'from scratch'}, signalled after ${r.killedAfterMs} ms, root kept at ${r.root}):\n  ${r.problems.join('\n  ')}`)
    .join('\n');
}

/**
 * The CI crash trial over seeds BASE+first .. BASE+first+trials-1, registered as one uvu test
 * (reliability-crash and reliability-crash-b each take half, to keep each file short).
 */
export function sigkillTrials(first: number, trials: number): void {
  const BASE = Number(process.env.HUBMAKE_CRASH_SEED ?? 1000);
  const FIRST = first;
  const TRIALS = trials;
  test(`SIGKILL of the whole process tree at a random moment (seeds ${BASE + FIRST}..${BASE + FIRST + TRIALS - 1}): the next build equals a clean build and reruns only unfinished targets`, async () => {
    const seeds = Array.from({ length: TRIALS }, (_, i) => BASE + FIRST + i);
    const results = await runTrials(seeds, (seed) => ({ seed, fault: 'SIGKILL', rebuild: 'in-process', checkNoop: seed % 3 === 0 }), 4);
    assert.is(results.length, TRIALS);
    // The kills must land inside builds, not only before or after them, or the test proves little.
    const midBuild = results.filter((r) => r.startedBefore.length > 0 && r.faultedExit === null);
    assert.ok(midBuild.length >= TRIALS / 3, `only ${midBuild.length} of ${TRIALS} kills landed while targets ran`);
    const withFinished = results.filter((r) => r.finishedBefore.length > 0 && r.faultedExit === null);
    assert.ok(withFinished.length >= 3, `only ${withFinished.length} kills came after some target had finished`);
    const bad = verdict(results);
    assert.is(bad, '', `bad outcomes:\n${bad}`);
  });
}
