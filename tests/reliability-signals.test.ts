// Clean shutdown on SIGINT (Ctrl-C) and SIGTERM: the build stops its commands (their process
// groups, also a command that ignores SIGTERM), exits 130, keeps what finished, and the next build
// completes the work, rerunning only what was running or not yet built.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliAsync, tempRoot, write } from './lib/cli.ts';
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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
