// Clean shutdown on SIGINT (Ctrl-C) and SIGTERM: the build stops its commands (their process
// groups, also a command that ignores SIGTERM), exits 130, keeps what finished, and the next build
// completes the work, rerunning only what was running or not yet built.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliAsync, read, tempRoot, write } from './lib/cli.ts';
import { alive, runTrials, verdict } from './lib/crashGraph.ts';

const BASE = Number(process.env.HUBMAKE_CRASH_SEED ?? 1000) + 5000;

for (const fault of ['SIGINT', 'SIGTERM'] as const) {
  test(`${fault} at a random moment, 12 seeded trials: exit 130, no process left, the next build equals a clean build`, async () => {
    const seeds = Array.from({ length: 12 }, (_, i) => BASE + (fault === 'SIGINT' ? 0 : 100) + i);
    const results = await runTrials(seeds, (seed) => ({ seed, fault, rebuild: 'in-process', checkNoop: true }), 4);
    const mid = results.filter((r) => r.startedBefore.length > r.finishedBefore.length && r.faultedExit === 130);
    assert.ok(mid.length >= 3, `only ${mid.length} signals landed while targets ran`);
    const bad = verdict(results);
    assert.is(bad, '', `bad outcomes:\n${bad}`);
  });
}

test('SIGKILL of the build process alone (as the OOM killer does), 12 seeded trials: the next build stops the commands it left running, then equals a clean build', async () => {
  const seeds = Array.from({ length: 12 }, (_, i) => BASE + 200 + i);
  const results = await runTrials(seeds, (seed) => ({ seed, fault: 'SIGKILL-build', rebuild: 'in-process', checkNoop: true }), 4);
  const mid = results.filter((r) => r.startedBefore.length > r.finishedBefore.length && r.faultedExit === null);
  assert.ok(mid.length >= 3, `only ${mid.length} kills landed while targets ran`);
  const bad = verdict(results);
  assert.is(bad, '', `bad outcomes:\n${bad}`);
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a command left running by a build killed alone is stopped (and named) before the next build reruns its target', async () => {
  const root = tempRoot('hubmake-sig-');
  write(root, 'src.txt', 'v1\n');
  write(root, 't.ts', `export default [{ outputs: ['out.txt'], inputs: ['src.txt'], run: 'echo $$ > pid; echo start > out.txt; sleep 2; cat src.txt >> out.txt' }];\n`);
  const child = cliAsync(root, ['-f', 't.ts']);
  await waitFor(() => fs.existsSync(path.join(root, 'pid')) && read(root, 'pid').trim() !== '', 'the command to start');
  const pid = Number(read(root, 'pid'));
  process.kill(child.pid!, 'SIGKILL');
  await new Promise((r) => child.once('exit', r));
  assert.ok(alive(pid), 'the command outlived its build');
  write(root, 'src.txt', 'v2\n');
  const next = cli(root, ['-f', 't.ts']);
  assert.is(next.code, 0, next.stderr);
  assert.match(next.stderr, new RegExp(`warning: stopped \\d+ command process\\(es\\) \\(pid [^)]*\\b${pid}\\b[^)]*\\) left running by a build of this directory that ended abruptly`));
  assert.not.ok(alive(pid));
  await sleep(2500);
  // The orphan would have appended v2 a second time while the new run was writing.
  assert.is(read(root, 'out.txt'), 'start\nv2\n');
  fs.rmSync(root, { recursive: true, force: true });
});

async function waitFor(p: () => boolean, what: string, ms = 20_000): Promise<void> {
  const t0 = Date.now();
  while (!p()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

for (const fault of ['SIGINT', 'SIGTERM'] as const) {
  test(`${fault} stops a command that ignores SIGTERM (and its child), keeps the finished target, says so, exits 130`, async () => {
    const root = tempRoot('hubmake-sig-');
    write(root, 'targets.ts', `export default [
  { outputs: ['quick.txt'], run: 'echo quick > quick.txt' },
  // Ignores SIGTERM and starts a grandchild that records its pid: both must still be gone.
  { outputs: ['stubborn.txt'], deps: ['quick.txt'], run: "trap '' TERM; echo $$ > pids; (trap '' TERM; sleep 60) & echo $! >> pids; wait; echo never > stubborn.txt" },
];
`);
    const child = cliAsync(root, ['-f', 'targets.ts', '-j', '1']);
    let out = '';
    let err = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const pidsFile = path.join(root, 'pids');
    await waitFor(() => fs.existsSync(pidsFile) && fs.readFileSync(pidsFile, 'utf8').trim().split('\n').length === 2, 'the command to start');
    const pids = fs.readFileSync(pidsFile, 'utf8').trim().split('\n').map(Number);
    const t0 = Date.now();
    process.kill(-child.pid!, fault);
    const [code] = await new Promise<[number | null, string | null]>((res) => child.once('exit', (c, s) => res([c, s])));
    assert.is(code, 130, `exit code; stderr:\n${err}`);
    assert.ok(Date.now() - t0 < 10_000, 'the build stopped within the SIGKILL grace period');
    for (const p of pids) assert.not.ok(alive(p), `process ${p} of the command is still running`);
    assert.match(err, /interrupted; 1 built before the stop, state saved/);
    assert.match(out, /built   quick\.txt/);
    assert.not.ok(fs.existsSync(path.join(root, 'stubborn.txt')));
    // The next build (with the command fixed) reruns only the interrupted target.
    write(root, 'targets.ts', fs.readFileSync(path.join(root, 'targets.ts'), 'utf8').replace(/run: "trap[^"]*"/, `run: 'echo done > stubborn.txt'`));
    const again = cli(root, ['-f', 'targets.ts', '--json']);
    assert.is(again.code, 0, again.stderr);
    assert.equal(again.events.filter((e) => e.type === 'start').map((e) => e.target), ['stubborn.txt']);
    fs.rmSync(root, { recursive: true, force: true });
  });
}

test.run();
