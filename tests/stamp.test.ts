// The settled stamp (engine/stamp.ts): a build after a build that left every target fresh is
// answered without per-target decisions. Through the real command line: it must say what a full
// no-op says, and every kind of change must fall back to the rebuilder and run what it runs.
// The property test (seed 67, no glob) checks the same on random graphs and edits.
// Every test runs twice: as the build checks a stamp of this size (it stats the paths itself), and
// with the native probe (engine/stamp-probe.c) answering every check (HUBMAKE_STAMP_PROBE=0).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { cli as runCli, read, started, tempRoot, write } from './lib/cli.ts';
import { Disk } from '../engine/disk.ts';
import type { BuildEvent } from '../engine/events.ts';
import { resolveGoals } from '../engine/graph.ts';
import { importTargets, validateImported } from '../engine/load.ts';
import { runBuild } from '../engine/session.ts';
import { Hasher } from '../engine/hash.ts';
import { checkStamp, readStamp, recordsOf, stampKey, stampText, writeStamp, type StampCheck, type Tracked } from '../engine/stamp.ts';

const OFF = { HUBMAKE_NOOP_SHORTCUT: 'off' };

const stats = suite('stamp, stats by the build');
const probed = suite('stamp, stats by the native probe');
/** The environment of the test running now (uvu runs one test at a time). */
let suiteEnv: NodeJS.ProcessEnv = {};
function test(name: string, fn: () => unknown): void {
  const under = (env: NodeJS.ProcessEnv) => async () => {
    suiteEnv = env;
    try {
      await fn();
    } finally {
      suiteEnv = {};
    }
  };
  stats(name, under({ HUBMAKE_STAMP_PROBE: 'off' }));
  probed(name, under({ HUBMAKE_STAMP_PROBE: '0' }));
}

function cli(root: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(root, args, { ...suiteEnv, ...env });
}

const MODULE = `import fs from 'node:fs';
export default ({ root, defines }) => {
  const cfg = JSON.parse(fs.readFileSync(root + '/cfg.json', 'utf8'));
  return [
    { outputs: ['out/a.txt'], inputs: ['src/a.txt'], run: 'mkdir -p out && cp src/a.txt out/a.txt' },
    { outputs: ['out/b.txt'], inputs: ['out/a.txt', 'src/b.txt'], env: ['STAMP_VAR'], run: 'cat out/a.txt src/b.txt > out/b.txt' },
    { outputs: ['out/c.txt'], inputs: ['src/c.txt'], params: { level: defines.level ?? '1' }, run: 'mkdir -p out && cp src/c.txt out/c.txt' + cfg.suffix },
    { name: 'all', deps: ['out/b.txt', 'out/c.txt'] },
    // Values JSON cannot tell from valid ones: validation refuses NaN and a Date in params.
    { outputs: ['out/d.txt'], params: { v: cfg.nan ? NaN : null, when: cfg.date ? new Date(0) : new Date(0).toISOString() }, run: 'mkdir -p out && echo d > out/d.txt' },
    ...(cfg.extra ?? []),
  ];
};
`;

function project(): string {
  const root = tempRoot('hubmake-stamp-');
  write(root, 'targets/index.ts', MODULE);
  write(root, 'cfg.json', '{"suffix": ""}');
  for (const f of ['a', 'b', 'c']) write(root, `src/${f}.txt`, `${f} v1\n`);
  return root;
}

interface Built { ran: string[]; settled: boolean; stdout: string; stderr: string; decisions: string[] }

function build(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): Built {
  // --no-cache: a restore from the artifact cache would stand in for a run the test expects.
  const r = cli(root, ['--json', '--no-cache', '-j', '1', ...args], env);
  assert.is(r.code, 0, r.stderr);
  const end = r.events.find((e) => e.type === 'build-end')!;
  const decisions = r.events.filter((e) => e.type === 'decision').map((e) => `${String(e.target)} ${String(e.action)}`).sort();
  return { ran: started(r), settled: end.settled === true, stdout: r.stdout, stderr: r.stderr, decisions };
}

/** Builds until the stamp answers; the second build after any change at the latest. */
function settle(root: string, args: string[] = [], env: NodeJS.ProcessEnv = {}): void {
  for (let i = 0; i < 2; i++) {
    const b = build(root, args, env);
    if (b.settled) return;
    assert.equal(b.ran, [], `build ${i + 1} of settle() ran commands`);
  }
  assert.ok(build(root, args, env).settled, 'the third build was not answered by the settled stamp');
}

/** The stamp's key for the root's module (no goals, no -D) and what the stamp says now, as the command line would compute them before taking the lock. */
async function checkNow(root: string): Promise<{ key: string; check: StampCheck | undefined }> {
  const imported = await importTargets(root, 'targets/index.ts');
  const key = stampKey({ root, specs: imported.specs, moduleHash: imported.moduleHash, goals: [], defines: {}, env: process.env })!;
  return { key, check: checkStamp(path.join(root, '.hubmake'), new Disk(root), key) };
}

/** A whole build in this process, handed a stamp check made earlier (as if read before the lock). */
async function buildWithCheck(root: string, key: string, check: StampCheck): Promise<{ code: number; events: BuildEvent[]; ran: string[] }> {
  const loaded = validateImported(root, await importTargets(root, 'targets/index.ts'));
  const goals = resolveGoals(loaded.graph, []);
  const events: BuildEvent[] = [];
  const code = await runBuild({ root, loaded, goals: goals.goals, closure: goals.closure, always: false, jobs: 1, keepGoing: true, dryRun: false, emit: (e) => events.push(e), stampKey: key, stampCheck: check });
  if (code === 'stale') throw new Error('only a narrowed build can be stale');
  return { code, events, ran: events.filter((e) => e.type === 'start').map((e) => (e as { target: string }).target).sort() };
}

test('a no-op after a no-op is answered by the stamp and says what a full no-op says', () => {
  const root = project();
  assert.equal(build(root).ran, ['out/a.txt', 'out/b.txt', 'out/c.txt', 'out/d.txt']);
  settle(root);
  assert.ok(fs.existsSync(path.join(root, '.hubmake/settled.stamp')));
  const fast = build(root);
  // The plain reporter and the metrics logger.
  const plain = cli(root, ['-j', '1'], { HUBMAKE_TIMING: '1' });
  const full = build(root, [], OFF);
  const plainFull = cli(root, ['-j', '1'], { ...OFF, HUBMAKE_TIMING: '1' });
  assert.ok(fast.settled);
  assert.not.ok(full.settled);
  assert.equal(fast.decisions, full.decisions);
  assert.equal(fast.decisions, ['out/a.txt fresh', 'out/b.txt fresh', 'out/c.txt fresh', 'out/d.txt fresh']);
  assert.is(plain.stdout, plainFull.stdout);
  assert.match(plain.stdout, /nothing to do \(4 targets up to date\)/);
  assert.match(plain.stderr, /^hubmake-decided-by: settled stamp$/m);
  assert.match(plainFull.stderr, /^hubmake-decided-by: per-target rebuilder$/m);
  // Under the probe's suite it confirmed every path of the stamp a stat can vouch for (not those
  // written too recently: they are compared by content), under the other it was not asked.
  const records = recordsOf(readStamp(path.join(root, '.hubmake'))!)!;
  assert.is(records.length, 7);
  if (suiteEnv.HUBMAKE_STAMP_PROBE === '0') assert.match(plain.stderr, new RegExp(`^hubmake-stamp-probe-confirmed: ${records.filter((r) => r.sig.startsWith('f:')).length}$`, 'm'));
  else assert.not.match(plain.stderr, /stamp-probe/);
  // HUBMAKE_NOOP_SHORTCUT=off neither reads, writes nor removes the stamp.
  assert.match(cli(root, ['-j', '1'], { HUBMAKE_TIMING: '1' }).stderr, /^hubmake-decided-by: settled stamp$/m);
  // --explain says who answered, and how to have every target decided.
  assert.match(cli(root, ['-j', '1', '--explain']).stdout, /^explain: answered by the settled stamp .*HUBMAKE_NOOP_SHORTCUT=off/m);
  assert.not.match(cli(root, ['-j', '1', '--explain'], OFF).stdout, /settled stamp/);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a clean build of more outputs than the stamp compares by content still leaves a stamp the next build uses', () => {
  const root = tempRoot('hubmake-stamp-many-');
  const n = 300; // more than the 256 racy files a stamp may hold
  write(root, 'targets/index.ts', `export default Array.from({ length: ${n} }, (_, i) => ({ outputs: [\`out/\${i}.txt\`], inputs: ['src.txt'], run: \`cp src.txt out/\${i}.txt\` }));\n`);
  write(root, 'src.txt', 'x\n');
  fs.mkdirSync(path.join(root, 'out'));
  assert.is(build(root).ran.length, n);
  const next = build(root);
  assert.ok(next.settled, 'outputs written during the build were confirmed by content at its end');
  assert.equal(next.ran, []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('every kind of change falls back to the per-target rebuilder and runs what it runs', () => {
  const root = project();
  const abs = (f: string) => path.join(root, f);
  const env: NodeJS.ProcessEnv = { STAMP_VAR: '1' };
  let args: string[] = [];
  build(root, args, env);
  const changes: Array<[string, () => void, string[]]> = [
    ['content edit of a source', () => write(root, 'src/a.txt', 'a v2\n'), ['out/a.txt', 'out/b.txt']],
    ['touch of a source, same bytes', () => fs.utimesSync(abs('src/c.txt'), new Date(), new Date(Date.now() + 5000)), []],
    ['rewrite of a source through a new inode, same bytes', () => {
      write(root, 'src/c.txt.swp', read(root, 'src/c.txt'));
      fs.renameSync(abs('src/c.txt.swp'), abs('src/c.txt'));
    }, []],
    ['same-size edit with the old mtime put back', () => {
      const st = fs.statSync(abs('src/c.txt'));
      write(root, 'src/c.txt', 'c v3\n');
      fs.utimesSync(abs('src/c.txt'), st.atime, st.mtime);
    }, ['out/c.txt']],
    ['hand edit of an output', () => write(root, 'out/c.txt', 'by hand\n'), ['out/c.txt']],
    ['output deleted', () => fs.rmSync(abs('out/b.txt')), ['out/b.txt']],
    ['command changed in the configuration the module reads', () => write(root, 'cfg.json', '{"suffix": " && true"}'), ['out/c.txt']],
    ['declared environment variable changed', () => { env.STAMP_VAR = '2'; }, ['out/b.txt']],
    ['-D definition changes params', () => { args = ['-D', 'level=2']; }, ['out/c.txt']],
    ['state log deleted', () => fs.rmSync(abs('.hubmake/log.jsonl')), ['out/a.txt', 'out/b.txt', 'out/c.txt', 'out/d.txt']],
    ['stamp of another format', () => write(root, '.hubmake/settled.stamp', '{"v": 0, "decl": "x"}'), []],
    ['stamp that is not JSON', () => write(root, '.hubmake/settled.stamp', '{"v": 1, "de'), []],
    ['stamp whose records are cut short', () => {
      const f = path.join(root, '.hubmake/settled.stamp');
      fs.writeFileSync(f, fs.readFileSync(f).subarray(0, -4));
    }, []],
    ['stamp of format 6 (settled.json) in place of this one', () => {
      fs.renameSync(path.join(root, '.hubmake/settled.stamp'), path.join(root, '.hubmake/settled.json'));
    }, []],
  ];
  for (const [what, change, expected] of changes) {
    settle(root, args, env);
    change();
    const b = build(root, args, env);
    // Same bytes may still be answered by the stamp: a file written too recently for its stat to
    // be trusted (the touch above set a future mtime) is compared by content.
    if (expected.length || what.startsWith('stamp')) assert.not.ok(b.settled, `${what}: answered by the stamp`);
    assert.equal(b.ran, expected, what);
    assert.not.ok(fs.existsSync(path.join(root, '.hubmake/settled.json')), `${what}: a stamp of format 6 was left behind`);
  }
  assert.is(read(root, 'out/b.txt'), 'a v2\nb v1\n');
  assert.is(read(root, 'out/c.txt'), 'c v3\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('specs that validation would refuse are refused even when a stamp exists (the stamp skips validation only for identical specs)', () => {
  const root = project();
  build(root);
  const refusals: Array<[string, string, RegExp]> = [
    ['an output declared twice', '{"suffix": "", "extra": [{"outputs": ["out/a.txt"], "run": "true"}]}', /also declared by target/],
    ['NaN where params held null', '{"suffix": "", "nan": true}', /NaN/],
    ['a Date where params held its ISO string', '{"suffix": "", "date": true}', /params/],
  ];
  for (const [what, cfg, message] of refusals) {
    write(root, 'cfg.json', '{"suffix": ""}');
    settle(root);
    write(root, 'cfg.json', cfg);
    const r = cli(root, ['-j', '1']);
    assert.is(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, message, what);
  }
  fs.rmSync(root, { recursive: true, force: true });
});

test('the directories outputs are written through are watched too; a cache limit is enforced by a full build', () => {
  const root = project();
  build(root);
  settle(root);
  // Same inodes behind a symlink: every file's stat is unchanged, the path to it is not.
  fs.renameSync(path.join(root, 'out'), path.join(root, 'out-real'));
  fs.symlinkSync('out-real', path.join(root, 'out'));
  assert.not.ok(build(root).settled);
  fs.rmSync(path.join(root, 'out'));
  fs.renameSync(path.join(root, 'out-real'), path.join(root, 'out'));
  settle(root);
  const limited = build(root, ['--cache-limit', '1G']);
  assert.not.ok(limited.settled);
  assert.equal(limited.ran, []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a stamp speaks for its own goals only', () => {
  const root = project();
  build(root);
  settle(root);
  const sub = build(root, ['out/c.txt']);
  assert.not.ok(sub.settled, 'another set of goals is decided per target');
  assert.equal(sub.ran, []);
  settle(root, ['out/c.txt']);
  write(root, 'src/a.txt', 'a v2\n');
  // out/a.txt is outside the stamped goals: a whole build still sees the edit.
  const whole = build(root);
  assert.not.ok(whole.settled);
  assert.equal(whole.ran, ['out/a.txt', 'out/b.txt']);
  fs.rmSync(root, { recursive: true, force: true });
});

/**
 * A module that writes src/gen.txt (when its bytes are not 'gen $GEN') where the build runs its
 * code: while the module is evaluated, or in a getter of a spec, which the key reads.
 */
function generating(where: 'module' | 'getter'): string {
  const root = tempRoot('hubmake-stamp-gen-');
  write(root, 'targets/index.ts', `import fs from 'node:fs';
const gen = (root) => {
  const want = 'gen ' + (process.env.GEN ?? '1') + '\\n';
  let have;
  try { have = fs.readFileSync(root + '/src/gen.txt', 'utf8'); } catch {}
  if (have !== want) { fs.mkdirSync(root + '/src', { recursive: true }); fs.writeFileSync(root + '/src/gen.txt', want); }
};
export default ({ root }) => {
  ${where === 'module' ? 'gen(root);' : ''}
  return [{ outputs: ['out/gen.txt'], ${where === 'getter' ? "get inputs() { gen(root); return ['src/gen.txt']; }" : "inputs: ['src/gen.txt']"}, run: 'mkdir -p out && cp src/gen.txt out/gen.txt' }];
};
`);
  return root;
}

for (const where of ['module', 'getter'] as const) {
  test(`a file the targets module writes while its code runs (${where === 'module' ? 'its evaluation' : 'a getter the key reads'}) is seen by the check: the probe stats after both`, async () => {
    const root = generating(where);
    assert.equal(build(root).ran, ['out/gen.txt']);
    // A stamp whose record of src/gen.txt is a stat signature (not one compared by content):
    // written by a build that hashed the file once its timestamps were old enough.
    await new Promise((r) => setTimeout(r, 200));
    fs.rmSync(path.join(root, '.hubmake/settled.stamp'), { force: true });
    assert.equal(build(root).ran, []);
    assert.match(recordsOf(readStamp(path.join(root, '.hubmake'))!)!.find((r) => r.path === 'src/gen.txt')!.sig, /^f:/);
    assert.ok(build(root).settled);
    const b = build(root, [], { GEN: '2' });
    assert.not.ok(b.settled, 'answered by the stamp although the module rewrote src/gen.txt');
    assert.equal(b.ran, ['out/gen.txt']);
    assert.is(read(root, 'out/gen.txt'), 'gen 2\n');
    fs.rmSync(root, { recursive: true, force: true });
  });
}

test('a FIFO in the stamp\'s place is no stamp: the build neither hangs nor reads it', () => {
  const root = project();
  build(root);
  settle(root);
  fs.rmSync(path.join(root, '.hubmake/settled.stamp'));
  assert.is(spawnSync('mkfifo', [path.join(root, '.hubmake/settled.stamp')]).status, 0);
  const b = build(root);
  assert.not.ok(b.settled);
  assert.equal(b.ran, []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a write by a later command into a file already hashed this build is seen by the next build', () => {
  const root = tempRoot('hubmake-stamp-undeclared-');
  // 'late' runs after 'early' hashed src/s.txt, and appends to it without declaring it.
  write(root, 'targets/index.ts', `export default [
  { outputs: ['early.txt'], inputs: ['src/s.txt'], run: 'cp src/s.txt early.txt' },
  { outputs: ['late.txt'], deps: ['early.txt'], run: 'echo more >> src/s.txt; echo done > late.txt' },
];
`);
  write(root, 'src/s.txt', 'one\n');
  // An old mtime, so its stat is trusted (not a racy entry checked by content).
  const old = new Date(Date.now() - 60_000);
  fs.utimesSync(path.join(root, 'src/s.txt'), old, old);
  for (const env of [{}, OFF]) {
    fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
    write(root, 'src/s.txt', 'one\n');
    fs.utimesSync(path.join(root, 'src/s.txt'), old, old);
    assert.equal(build(root, [], env).ran, ['early.txt', 'late.txt']);
    const next = build(root, [], env);
    assert.not.ok(next.settled);
    assert.equal(next.ran, ['early.txt'], `with ${JSON.stringify(env)}`);
  }
  fs.rmSync(root, { recursive: true, force: true });
});

test('an output rewritten by a later command after it was hashed is not confirmed at the end of the build', () => {
  // gen writes gen.txt (hashed the moment it ends: not trusted yet); early reads it; late, after
  // early, appends to it without declaring it and waits until its mtime is old enough to confirm.
  const module = `export default [
  { outputs: ['gen.txt'], run: 'echo one > gen.txt' },
  { outputs: ['early.txt'], inputs: ['gen.txt'], run: 'cp gen.txt early.txt' },
  { outputs: ['late.txt'], deps: ['early.txt'], run: 'echo more >> gen.txt; sleep 0.3; echo done > late.txt' },
];
`;
  const ran: string[][] = [];
  for (const env of [{}, OFF]) {
    const root = tempRoot('hubmake-stamp-confirm-');
    write(root, 'targets/index.ts', module);
    assert.equal(build(root, [], env).ran, ['early.txt', 'gen.txt', 'late.txt']);
    const next = build(root, [], env);
    assert.not.ok(next.settled);
    ran.push(next.ran);
    fs.rmSync(root, { recursive: true, force: true });
  }
  assert.equal(ran[0], ran[1], 'the stamp decides what deciding every target decides');
  // gen.txt no longer holds what gen wrote: gen reruns, writes it back, and early is cut off.
  assert.equal(ran[0], ['gen.txt']);
});

test('no stamp for a directory output (a glob beside it changes nothing), and none is consulted with -B or -n', () => {
  const root = tempRoot('hubmake-stamp-glob-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['list.txt'], inputs: ['src/*.txt'], run: 'cat src/*.txt > list.txt' },
  { outputs: ['d/'], run: 'mkdir -p d && echo x > d/x' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  for (let i = 0; i < 3; i++) assert.not.ok(build(root).settled);
  assert.not.ok(fs.existsSync(path.join(root, '.hubmake/settled.stamp')));
  write(root, 'src/b.txt', 'b\n');
  assert.equal(build(root).ran, ['list.txt']);

  const p = project();
  build(p);
  settle(p);
  const forced = build(p, ['-B']);
  assert.not.ok(forced.settled);
  assert.equal(forced.ran, ['out/a.txt', 'out/b.txt', 'out/c.txt', 'out/d.txt']);
  settle(p);
  // A dry run reports every target's decision itself, and writes nothing.
  const dry = cli(p, ['-n', '--json', '-j', '1']);
  assert.is(dry.code, 0);
  assert.is(dry.events.filter((e) => e.type === 'decision' && e.action === 'fresh').length, 4);
  assert.not.ok(dry.events.find((e) => e.type === 'build-end')!.settled);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(p, { recursive: true, force: true });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Builds until the stamp answers, waiting out the racy window of the directories a glob's stamp watches. */
async function settleGlobs(root: string): Promise<void> {
  await sleep(150);
  settle(root);
}

test('a glob input is stamped: a new, removed or edited match, in any directory under its prefix, is seen', async () => {
  const root = tempRoot('hubmake-stamp-globs-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['all.txt'], inputs: ['src/**/*.txt'], run: "find src -name '*.txt' | sort | xargs cat > all.txt" },
  { outputs: ['other.txt'], inputs: ['other-src.txt'], run: 'cp other-src.txt other.txt' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  write(root, 'src/sub/b.txt', 'b\n');
  write(root, 'other-src.txt', 'o\n');
  build(root);
  await settleGlobs(root);
  const stamp = readStamp(path.join(root, '.hubmake'))!;
  assert.equal(stamp.head.dirs, ['src', 'src/sub']);
  assert.ok(recordsOf(stamp)!.some((r) => r.path === 'src/sub/b.txt'));
  const steps: Array<[string, () => void, string[]]> = [
    ['a new match in a subdirectory', () => write(root, 'src/sub/deeper/c.txt', 'c\n'), ['all.txt']],
    ['an edited match', () => write(root, 'src/a.txt', 'a2\n'), ['all.txt']],
    ['a file the pattern does not match', () => write(root, 'src/notes.md', 'n\n'), []],
    ['a removed match', () => fs.rmSync(path.join(root, 'src/sub/b.txt')), ['all.txt']],
    ['a change elsewhere', () => write(root, 'other-src.txt', 'o2\n'), ['other.txt']],
  ];
  for (const [what, change, runs] of steps) {
    change();
    const b = build(root);
    assert.not.ok(b.settled, what);
    assert.equal(b.ran, runs, what);
    await settleGlobs(root);
  }
  assert.is(read(root, 'all.txt'), 'a2\nc\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('a match added by a later command of the same build, long enough before its end, leaves no stamp', async () => {
  const root = tempRoot('hubmake-stamp-globs-late-');
  // late adds a match of early's glob after early listed it, then waits out the racy window: only
  // listing the glob again at the end of the build can see that early decided on an old match set.
  write(root, 'targets/index.ts', `export default [
  { name: 'early', outputs: ['list.txt'], inputs: ['src/*.txt'], run: 'cat src/*.txt > list.txt' },
  { name: 'late', outputs: ['late.txt'], deps: ['early'], run: '[ -f src/late.txt ] || echo late > src/late.txt; sleep 0.3; echo done > late.txt' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  await sleep(150);
  assert.equal(build(root).ran, ['early', 'late']);
  assert.not.ok(fs.existsSync(path.join(root, '.hubmake/settled.stamp')), 'a stamp was written over a match set that changed during the build');
  const next = build(root);
  assert.not.ok(next.settled);
  assert.equal(next.ran, ['early']);
  assert.is(read(root, 'list.txt'), 'a\nlate\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('globs the stamp cannot watch get none: a symlink under the prefix (even dangling), a `..` inside braces', async () => {
  const linked = tempRoot('hubmake-stamp-globs-links-');
  write(linked, 'targets/index.ts', `export default [{ outputs: ['deep.txt'], inputs: ['src/**/*.txt'], run: "find -L src -name '*.txt' | sort | xargs cat > deep.txt" }];\n`);
  write(linked, 'src/a/a.txt', 'a\n');
  fs.symlinkSync('../ext', path.join(linked, 'src/link'));
  const braces = tempRoot('hubmake-stamp-globs-braces-');
  write(braces, 'targets/index.ts', `export default [{ outputs: ['up.txt'], inputs: ['src/{a,../other}/*.txt'], run: 'cat src/a/*.txt other/*.txt > up.txt' }];\n`);
  write(braces, 'src/a/a.txt', 'a\n');
  write(braces, 'other/o.txt', 'o\n');
  for (const root of [linked, braces]) {
    build(root);
    await sleep(150);
    for (let i = 0; i < 2; i++) assert.not.ok(build(root).settled, root);
  }
  // The dangling link comes to lead somewhere; a file appears where the braces reach.
  write(linked, 'ext/n.txt', 'n\n');
  assert.equal(build(linked).ran, ['deep.txt']);
  assert.is(read(linked, 'deep.txt'), 'a\nn\n');
  write(braces, 'other/p.txt', 'p\n');
  assert.equal(build(braces).ran, ['up.txt']);
  // Without the link, the same glob is stamped.
  fs.rmSync(path.join(linked, 'src/link'));
  fs.rmSync(path.join(linked, 'ext'), { recursive: true });
  build(linked);
  await settleGlobs(linked);
  for (const root of [linked, braces]) fs.rmSync(root, { recursive: true, force: true });
});

test('a glob without ** watches only the levels it can reach', async () => {
  const root = tempRoot('hubmake-stamp-globs-depth-');
  write(root, 'targets/index.ts', `export default [{ outputs: ['list.txt'], inputs: ['top/*.txt'], run: 'cat top/*.txt > list.txt' }];\n`);
  write(root, 'top/a.txt', 'a\n');
  write(root, 'top/sub/deep.txt', 'd\n');
  build(root);
  await settleGlobs(root);
  assert.equal(readStamp(path.join(root, '.hubmake'))!.head.dirs, ['top']);
  write(root, 'top/sub/more.txt', 'm\n');
  assert.ok(build(root).settled, 'a file the pattern cannot reach moved the stamp');
  write(root, 'top/b.txt', 'b\n');
  assert.equal(build(root).ran, ['list.txt']);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a directory created while the stamp walks the tree is seen by the next check', () => {
  const root = tempRoot('hubmake-stamp-globs-race-');
  fs.mkdirSync(path.join(root, 'src/a'), { recursive: true });
  fs.mkdirSync(path.join(root, '.hubmake'));
  const old = new Date(Date.now() - 10_000);
  fs.utimesSync(path.join(root, 'src/a'), old, old);
  fs.utimesSync(path.join(root, 'src'), old, old);
  // A writer creates src/new just after src was read, and the walk then takes longer than the racy window.
  class SlowDisk extends Disk {
    override entries(rel: string) {
      const e = super.entries(rel);
      if (rel === 'src') {
        fs.mkdirSync(path.join(root, 'src/new'));
        for (const t = Date.now(); Date.now() - t < 150; );
      }
      return e;
    }
  }
  const disk = new SlowDisk(root);
  const hasher = new Hasher(disk, new Map());
  hasher.expandGlob('src/**/*.txt');
  const tracked: Tracked = { paths: [], outputs: [], guarded: [], names: ['t'], targets: 1, globs: [{ pattern: 'src/**/*.txt', base: 'src', depth: undefined }] };
  writeStamp(path.join(root, '.hubmake'), disk, hasher, 'K', [], tracked);
  write(root, 'src/new/x.txt', 'x\n');
  const check = checkStamp(path.join(root, '.hubmake'), new Disk(root), 'K');
  assert.ok(check === undefined || check.changed.length > 0, 'the stamp answered although src/new/x.txt now matches');
  fs.rmSync(root, { recursive: true, force: true });
});

test('a build that waited for the lock does not trust what the stamp said before it waited', async () => {
  const root = tempRoot('hubmake-stamp-wait-');
  // a's output differs on every run, so a forced rebuild of a makes c stale.
  write(root, 'targets/index.ts', `export default [
  { outputs: ['a.txt'], inputs: ['src/a.txt'], run: 'cat src/a.txt /proc/sys/kernel/random/uuid > a.txt' },
  { outputs: ['b.txt'], inputs: ['src/b.txt'], run: 'cp src/b.txt b.txt' },
  { outputs: ['c.txt'], inputs: ['a.txt'], run: 'cp a.txt c.txt' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  write(root, 'src/b.txt', 'b\n');
  build(root);
  settle(root);
  write(root, 'src/b.txt', 'b2\n');
  const { key, check } = await checkNow(root);
  assert.equal(check?.changed, ['src/b.txt'], 'the stamp names the edited source');
  // Meanwhile another build holds the lock and reruns a: c is stale now, whatever the check said.
  assert.equal(build(root, ['-B', 'a.txt']).ran, ['a.txt']);
  const after = await buildWithCheck(root, key, check!);
  assert.is(after.code, 0);
  assert.equal(after.ran, ['b.txt', 'c.txt']);
  assert.is(read(root, 'c.txt'), read(root, 'a.txt'));
  fs.rmSync(root, { recursive: true, force: true });
});

test('specs JSON cannot show whole (class instances, hidden fields, array holes) get no stamp, so a -D that changes them is seen', () => {
  const root = tempRoot('hubmake-stamp-unfaithful-');
  write(root, 'targets/index.ts', `class T { constructor(o) { Object.assign(this, o); } }
export default ({ defines }) => {
  const msg = defines.msg ?? 'hi';
  if (defines.kind === 'hidden') {
    const spec = { outputs: ['out.txt'] };
    Object.defineProperty(spec, 'run', { value: \`echo \${msg} > out.txt\`, enumerable: false });
    return [spec];
  }
  if (defines.kind === 'hole') {
    const specs = new Array(2);
    specs[1] = { outputs: ['out.txt'], run: \`echo \${msg} > out.txt\` };
    if (defines.bad) specs[0] = undefined;
    return specs;
  }
  return [new T({ outputs: ['out.txt'], run: \`echo \${msg} > out.txt\` })];
};
`);
  for (const kind of ['instance', 'hidden', 'hole']) {
    fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
    const args = ['-D', `kind=${kind}`];
    for (let i = 0; i < 3; i++) build(root, args);
    if (kind !== 'hole') {
      assert.not.ok(fs.existsSync(path.join(root, '.hubmake/settled.stamp')), `${kind}: no stamp`);
      assert.equal(build(root, [...args, '-D', 'msg=bye']).ran, ['out.txt'], kind);
      assert.is(read(root, 'out.txt'), 'bye\n');
    } else {
      // A hole is not an undefined entry: validation skips the one and refuses the other.
      assert.ok(build(root, args).settled, 'an array with a hole is serialised faithfully');
      const bad = cli(root, [...args, '-D', 'bad=1']);
      assert.is(bad.code, 2, bad.stdout + bad.stderr);
    }
  }
  fs.rmSync(root, { recursive: true, force: true });
});

test('an output that is a symlink gets no stamp (validation checks where it leads); an input turned into a symlink loop is named, not a crash', () => {
  const root = tempRoot('hubmake-stamp-links-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['out.txt'], inputs: ['src.txt'], run: 'mkdir -p d && cp src.txt d/real.txt && ln -sf d/real.txt out.txt' },
  { outputs: ['copy.txt'], inputs: ['loop.txt'], run: 'cp loop.txt copy.txt' },
];
`);
  write(root, 'src.txt', 'hello\n');
  write(root, 'loop.txt', 'l\n');
  for (let i = 0; i < 3; i++) assert.not.ok(build(root).settled);
  const outside = fs.mkdtempSync(path.join(path.dirname(root), 'hubmake-outside-'));
  fs.renameSync(path.join(root, 'd'), path.join(outside, 'd'));
  fs.symlinkSync(path.join(outside, 'd'), path.join(root, 'd'));
  const escaped = cli(root, ['-j', '1']);
  assert.is(escaped.code, 2, escaped.stdout + escaped.stderr);
  assert.match(escaped.stderr, /outside the root/);
  fs.rmSync(path.join(root, 'd'));
  fs.renameSync(path.join(outside, 'd'), path.join(root, 'd'));
  // Without the symlinked output, the stamp is written; then the input becomes a loop.
  write(root, 'targets/index.ts', `export default [{ outputs: ['copy.txt'], inputs: ['loop.txt'], run: 'cp loop.txt copy.txt' }];\n`);
  settle(root);
  fs.rmSync(path.join(root, 'loop.txt'));
  fs.symlinkSync('loop.txt', path.join(root, 'loop.txt'));
  const loop = cli(root, ['-j', '1']);
  assert.is(loop.code, 2, loop.stdout + loop.stderr);
  assert.match(loop.stderr, /loop\.txt/);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('an output that became a symlink is never answered for, even when what it leads to has the stamped signature', () => {
  const root = tempRoot('hubmake-stamp-outlink-');
  write(root, 'targets/index.ts', `export default [{ outputs: ['out.txt'], inputs: ['src.txt'], run: 'cp src.txt out.txt' }];\n`);
  write(root, 'src.txt', 'hello\n');
  build(root);
  settle(root);
  const outside = fs.mkdtempSync(path.join(path.dirname(root), 'hubmake-outside-'));
  fs.copyFileSync(path.join(root, 'out.txt'), path.join(outside, 'out.txt'));
  fs.rmSync(path.join(root, 'out.txt'));
  fs.symlinkSync(path.join(outside, 'out.txt'), path.join(root, 'out.txt'));
  // A file system that kept the inode's ctime through such a swap would show the stamp the very
  // signature it recorded: the stamp is given that signature here, and must still not answer.
  const file = path.join(root, '.hubmake', 'settled.stamp');
  const stamp = readStamp(path.join(root, '.hubmake'))!;
  const records = recordsOf(stamp)!;
  const st = fs.statSync(path.join(outside, 'out.txt'), { bigint: true });
  records.find((r) => r.path === 'out.txt')!.sig = `f:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  fs.writeFileSync(file, stampText(stamp.head, records));
  const r = cli(root, ['-j', '1']);
  assert.is(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /outside the root/);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('a build the stamp vouched for writes no stamp when one of its commands turned an output into a symlink', () => {
  const root = tempRoot('hubmake-stamp-madelink-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['out.txt'], inputs: ['src.txt'], run: 'if grep -q link src.txt; then mkdir -p d && cp src.txt d/real.txt && ln -sfn d/real.txt out.txt; else cp src.txt out.txt; fi' },
  { outputs: ['other.txt'], inputs: ['other-src.txt'], run: 'cp other-src.txt other.txt' },
];
`);
  write(root, 'src.txt', 'plain\n');
  write(root, 'other-src.txt', 'o\n');
  build(root);
  settle(root);
  write(root, 'src.txt', 'link\n');
  const b = build(root);
  assert.equal(b.ran, ['out.txt']);
  assert.ok(fs.lstatSync(path.join(root, 'out.txt')).isSymbolicLink());
  assert.not.ok(fs.existsSync(path.join(root, '.hubmake', 'settled.stamp')), 'a stamp was written over a symlinked output');
  assert.not.ok(build(root).settled);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a command that makes another target\'s output a symlink, undeclared, is caught by the next check', () => {
  const root = tempRoot('hubmake-stamp-sidelink-');
  const outside = fs.mkdtempSync(path.join(path.dirname(root), 'hubmake-outside-'));
  write(root, 'targets/index.ts', `export default [
  { name: 'a', outputs: ['out/a.txt'], inputs: ['src/a.txt'], run: 'mkdir -p out && cp src/a.txt out/a.txt' },
  { name: 'b', outputs: ['out/b.txt'], inputs: ['src/b.txt'], run: 'mkdir -p out && cp src/b.txt out/b.txt; if grep -q link src/b.txt; then cp out/a.txt ${outside}/a.txt && rm out/a.txt && ln -s ${outside}/a.txt out/a.txt; fi' },
];
`);
  write(root, 'src/a.txt', 'a\n');
  write(root, 'src/b.txt', 'b\n');
  build(root);
  settle(root);
  write(root, 'src/b.txt', 'link\n');
  // The stamp vouches for a; b's command swaps a's output for a link the build does not look at.
  assert.equal(build(root).ran, ['b']);
  assert.ok(fs.lstatSync(path.join(root, 'out/a.txt')).isSymbolicLink());
  const r = cli(root, ['-j', '1']);
  assert.is(r.code, 2, r.stdout + r.stderr);
  assert.match(r.stderr, /outside the root/);
  fs.rmSync(root, { recursive: true, force: true });
  fs.rmSync(outside, { recursive: true, force: true });
});

test('what the stamp said before the lock is dropped when a build recorded meanwhile or the lock had to be waited for', async () => {
  const root = tempRoot('hubmake-stamp-lock-');
  write(root, 'targets/index.ts', `export default [
  { outputs: ['o1.txt'], inputs: ['in1.txt'], run: 'cp in1.txt o1.txt' },
  { outputs: ['o2.txt'], inputs: ['in2.txt'], run: '[ -z "$FAIL" ] && cp in2.txt o2.txt' },
];
`);
  write(root, 'in1.txt', 'one\n');
  write(root, 'in2.txt', 'two\n');
  build(root);
  settle(root);
  const stateDir = path.join(root, '.hubmake');

  // A build that does not use the stamp records a failure of o2 between the check and the lock.
  write(root, 'in1.txt', 'one v2\n');
  const { key, check } = await checkNow(root);
  assert.equal(check?.changed, ['in1.txt']);
  const failing = cli(root, ['-j', '1', '-B', 'o2.txt'], { ...OFF, FAIL: '1' });
  assert.is(failing.code, 1);
  const after = await buildWithCheck(root, key, check!);
  assert.is(after.code, 0);
  assert.equal(after.ran, ['o1.txt', 'o2.txt'], 'o2 failed last time: it runs');
  settle(root);

  // A build that waits for the lock: a file edited during the wait is seen.
  write(root, 'in1.txt', 'one v3\n');
  const { check: check2 } = await checkNow(root);
  assert.equal(check2?.changed, ['in1.txt']);
  const holder = spawn('sleep', ['1.5'], { stdio: 'ignore' });
  fs.writeFileSync(path.join(stateDir, 'lock'), JSON.stringify({ pid: holder.pid, host: os.hostname(), started: new Date().toISOString() }));
  const waiting = buildWithCheck(root, key, check2!);
  await new Promise((r) => setTimeout(r, 500));
  write(root, 'in2.txt', 'two v3\n');
  const waited = await waiting;
  assert.ok(waited.events.some((e) => e.type === 'lock-wait'), 'the build waited for the lock');
  assert.equal(waited.ran, ['o1.txt', 'o2.txt']);
  assert.is(read(root, 'o2.txt'), 'two v3\n');
  fs.rmSync(root, { recursive: true, force: true });
});

stats.run();
probed.run();
