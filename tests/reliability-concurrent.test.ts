// Two builds in the same root at the same time: one waits for the other with a message naming the
// holder, then finds the work done (every command runs once in all); the state is never corrupted;
// the lock of a build killed with SIGKILL is taken over without waiting.
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, cliAsync, parseEvents, tempRoot, write } from './lib/cli.ts';
import { buildInProcess, killTree } from './lib/crashGraph.ts';
import { prng } from './lib/prng.ts';

type Events = ReturnType<typeof parseEvents>;

function graphModule(seed: number): string {
  const r = prng(seed);
  const ms = () => (0.1 + r.int(120) / 1000).toFixed(3);
  const cmd = (name: string, inputs: string[]) => JSON.stringify(`echo ${name} >> ran.log && mkdir -p out && sleep ${ms()} && cat ${[...inputs, '/dev/null'].join(' ')} > out/${name} && echo ${name} >> out/${name}`);
  return `export default [
  { name: 'base', outputs: ['out/base'], inputs: ['src.txt'], run: ${cmd('base', ['src.txt'])} },
  { name: 'left', outputs: ['out/left'], inputs: ['out/base'], run: ${cmd('left', ['out/base'])} },
  { name: 'right', outputs: ['out/right'], inputs: ['out/base'], run: ${cmd('right', ['out/base'])} },
  { name: 'top', outputs: ['out/top'], inputs: ['out/left', 'out/right'], run: ${cmd('top', ['out/left', 'out/right'])} },
  { name: 'all', deps: ['top'] },
];
`;
}

function run(root: string, args: string[]): Promise<{ code: number | null; events: Events; stderr: string; pid: number }> {
  const child = cliAsync(root, ['-f', 'targets.ts', '--json', ...args]);
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr!.on('data', (c: Buffer) => (err += c.toString()));
  return new Promise((res) => child.once('close', (code) => res({ code, events: parseEvents(out), stderr: err, pid: child.pid! })));
}

const ranLog = (root: string) => fs.readFileSync(path.join(root, 'ran.log'), 'utf8').split('\n').filter(Boolean);

/** Every line of the state log is whole JSON, and a further build has nothing to do and no warning. */
async function assertStateSound(root: string, why: string, goals = ['all']): Promise<void> {
  const lines = fs.readFileSync(path.join(root, '.hubmake/log.jsonl'), 'utf8').split('\n').filter(Boolean);
  for (const l of lines) JSON.parse(l);
  const before = ranLog(root).length;
  const again = await buildInProcess(root, 2, goals);
  assert.is(again.code, 0, `${why}: ${JSON.stringify(again.events.filter((e) => e.type === 'finish'))}`);
  assert.equal(again.events.filter((e) => e.type === 'warning'), [], why);
  assert.is(ranLog(root).length, before, `${why}: a third build ran commands`);
}

const SEEDS = Array.from({ length: 20 }, (_, i) => 300 + i);
// Same goals for even seeds; overlapping goals ('left' and 'right' share 'base') for odd ones.
const goalsOf = (seed: number): [string[], string[]] => (seed % 2 === 0 ? [['all'], ['all']] : [['left'], ['right']]);

test(`two builds started together in one root (${SEEDS.length} trials, same and overlapping goals): one waits naming the holder, every command runs once, the state stays sound`, async () => {
  let waited = 0;
  const trial = async (seed: number) => {
    const root = tempRoot('hubmake-conc-');
    write(root, 'src.txt', `source ${seed}\n`);
    write(root, 'targets.ts', graphModule(seed));
    const [ga, gb] = goalsOf(seed);
    const [a, b] = await Promise.all([run(root, ga), run(root, gb)]);
    const why = `seed ${seed} (goals ${ga} / ${gb}), root ${root}`;
    assert.is(a.code, 0, `${why}: first build: ${a.stderr}`);
    assert.is(b.code, 0, `${why}: second build: ${b.stderr}`);
    const waits = [a, b].filter((x) => x.events.some((e) => e.type === 'lock-wait'));
    if (waits.length === 0) {
      // Neither waited: then they did not overlap at all (one had ended before the other took the lock).
      const span = (x: typeof a) => [x.events.find((e) => e.type === 'build-start')!.time as number, x.events.find((e) => e.type === 'build-end')!.time as number];
      const [sa, ea] = span(a);
      const [sb, eb] = span(b);
      assert.ok(ea <= sb || eb <= sa, `${why}: the two builds ran at the same time without waiting for each other`);
    } else {
      assert.is(waits.length, 1, `${why}: both builds waited`);
      waited++;
      const waiter = waits[0]!;
      const holder = waiter === a ? b : a;
      const w = waiter.events.find((e) => e.type === 'lock-wait')!;
      assert.is(w.pid, holder.pid, `${why}: the wait names the holder`);
    }
    // Each command ran exactly once between the two builds: the later one found the work done.
    const ran = ranLog(root).sort();
    const want = seed % 2 === 0 ? ['base', 'left', 'right', 'top'] : ['base', 'left', 'right'];
    assert.equal(ran, want, `${why}: commands run`);
    const built = [a, b].flatMap((x) => x.events.filter((e) => e.type === 'finish' && e.status === 'built').map((e) => e.target)).sort();
    assert.equal(built, want, `${why}: targets built`);
    await assertStateSound(root, why, [...new Set([...ga, ...gb])]);
    fs.rmSync(root, { recursive: true, force: true });
  };
  for (let i = 0; i < SEEDS.length; i += 2) await Promise.all(SEEDS.slice(i, i + 2).map(trial));
  // If the builds never overlapped the test would prove nothing about waiting.
  assert.ok(waited >= SEEDS.length / 2, `only ${waited} of ${SEEDS.length} trials had one build wait for the other`);
});

test('the waiting build says which process holds the lock, in plain words', async () => {
  const root = tempRoot('hubmake-conc-');
  write(root, 'src.txt', 'x\n');
  write(root, 'targets.ts', `export default [{ outputs: ['slow.txt'], inputs: ['src.txt'], run: 'sleep 1.5; cp src.txt slow.txt' }];\n`);
  const first = cliAsync(root, ['-f', 'targets.ts']);
  const lock = path.join(root, '.hubmake/lock');
  const t0 = Date.now();
  while (!fs.existsSync(lock) && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 10));
  const second = cli(root, ['-f', 'targets.ts']);
  await new Promise((r) => first.once('close', r));
  assert.is(second.code, 0, second.stderr);
  assert.match(second.stderr, new RegExp(`another build holds the lock \\(pid ${first.pid} on [^,]+, since [0-9T:.Z-]+\\); waiting for it to finish`));
  assert.match(second.stdout, /nothing to do/);
  fs.rmSync(root, { recursive: true, force: true });
});

for (const when of ['while a command runs', 'right after start-up']) {
  test(`the lock of a build killed with SIGKILL (${when}) is taken over at once; the next build completes`, async () => {
    const root = tempRoot('hubmake-conc-');
    write(root, 'src.txt', 'x\n');
    write(root, 'targets.ts', graphModule(7));
    const eventsFile = path.join(root, '.events.jsonl');
    const fd = fs.openSync(eventsFile, 'w');
    const { spawn } = await import('node:child_process');
    const { BUILD_TS } = await import('./lib/cli.ts');
    const child = spawn(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, '-f', 'targets.ts', '--json', 'all'], { cwd: root, stdio: ['ignore', fd, 'ignore'], detached: true });
    fs.closeSync(fd);
    const lock = path.join(root, '.hubmake/lock');
    const t0 = Date.now();
    const ready = when === 'right after start-up' ? () => fs.existsSync(lock) : () => fs.readFileSync(eventsFile, 'utf8').includes('"type":"start"');
    while (!ready() && Date.now() - t0 < 20_000) await new Promise((r) => setTimeout(r, 5));
    killTree(child.pid!);
    await new Promise((r) => child.once('exit', r));
    assert.ok(fs.existsSync(lock), 'the killed build left its lock behind');
    const next = cli(root, ['-f', 'targets.ts', '--json', 'all']);
    assert.is(next.code, 0, next.stderr);
    assert.equal(next.events.filter((e) => e.type === 'lock-wait'), [], 'no waiting for a dead holder');
    assert.is(fs.readFileSync(path.join(root, 'out/top'), 'utf8'), 'x\nbase\nleft\nx\nbase\nright\ntop\n');
    assert.not.ok(fs.existsSync(lock), 'the lock is released at the end');
    await assertStateSound(root, 'after takeover');
    fs.rmSync(root, { recursive: true, force: true });
  });
}

test('a lock naming a recycled pid (a live process that started at another time) is taken over; one naming a live holder is waited for', async () => {
  const root = tempRoot('hubmake-conc-');
  write(root, 'src.txt', 'x\n');
  write(root, 'targets.ts', `export default [{ outputs: ['a.txt'], inputs: ['src.txt'], run: 'cp src.txt a.txt' }];\n`);
  fs.mkdirSync(path.join(root, '.hubmake'));
  const os = await import('node:os');
  // pid 1 is alive, but it did not start at this kernel tick: the holder recorded here is gone.
  fs.writeFileSync(path.join(root, '.hubmake/lock'), JSON.stringify({ pid: 1, host: os.hostname(), started: '2020-01-01T00:00:00.000Z', boot: '-1' }));
  const r = cli(root, ['-f', 'targets.ts', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.events.filter((e) => e.type === 'lock-wait'), []);
  assert.is(fs.readFileSync(path.join(root, 'a.txt'), 'utf8'), 'x\n');
  // A holder that is alive (this test process, with its real start time) is waited for.
  const stat = fs.readFileSync(`/proc/${process.pid}/stat`, 'utf8');
  const boot = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  fs.writeFileSync(path.join(root, '.hubmake/lock'), JSON.stringify({ pid: process.pid, host: os.hostname(), started: new Date().toISOString(), boot }));
  write(root, 'src.txt', 'y\n');
  const child = cliAsync(root, ['-f', 'targets.ts', '--json']);
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
  const closed = new Promise<number | null>((res) => child.once('close', res));
  const t0 = Date.now();
  while (!out.includes('"type":"lock-wait"') && Date.now() - t0 < 30_000) await new Promise((res) => setTimeout(res, 20));
  await new Promise((res) => setTimeout(res, 300));
  assert.is(fs.readFileSync(path.join(root, 'a.txt'), 'utf8'), 'x\n', 'nothing was built while the lock was held');
  fs.rmSync(path.join(root, '.hubmake/lock'));
  assert.is(await closed, 0);
  const wait = parseEvents(out).find((e) => e.type === 'lock-wait');
  assert.ok(wait, 'it said it was waiting');
  assert.is(wait!.pid, process.pid);
  assert.is(fs.readFileSync(path.join(root, 'a.txt'), 'utf8'), 'y\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
