// Never lose an artifact: the engine does not delete or overwrite a file that no target declares
// (a build next to unrelated files, a failing target, an action writing where it should not), a
// `rebuild: 'missing'` output that exists is never touched, and an unwritable output directory or
// a full disk fails the target with the OS error named while the state stays consistent.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, read, tempRoot, write } from './lib/cli.ts';

/** Bytes, inode and mtime of each file: "untouched" means all three are unchanged. */
function fingerprintFiles(root: string, files: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of files) {
    const abs = path.join(root, f);
    const st = fs.statSync(abs, { bigint: true });
    out[f] = `${fs.readFileSync(abs).toString('base64')} ino=${st.ino} mtime=${st.mtimeNs}`;
  }
  return out;
}

/** A tiny tmpfs to make a disk full; false (with a note) where mounting is not permitted. */
function mountSmallTmpfs(dir: string, size: string): boolean {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
    return true;
  } catch {
    console.log('  (skipped: mounting a small tmpfs is not permitted here, so a full disk cannot be simulated)');
    return false;
  }
}

const UNRELATED = ['notes.txt', 'out/keep.me', 'out/a.txt.bak', 'out/a.txt.tmp-1-abcdef', 'out/d-sibling.txt', 'data/raw.bin'];
const ran = (root: string) => (fs.existsSync(path.join(root, 'ran.log')) ? read(root, 'ran.log').split('\n').filter(Boolean) : []);

test('a build next to unrelated files, then a failing one: the unrelated files are untouched (bytes, inode, mtime)', () => {
  const root = tempRoot('hubmake-art-');
  for (const f of UNRELATED) write(root, f, `precious ${f}\n`);
  write(root, 'src.txt', 'v1\n');
  write(root, 't.ts', `export default [
  { outputs: ['out/a.txt'], inputs: ['src.txt'], run: 'echo a >> ran.log; cp src.txt out/a.txt' },
  { outputs: ['out/b.txt'], inputs: ['out/a.txt'], run: async (ctx) => { await ctx.writeFile('out/b.txt', 'b'); } },
  { outputs: ['out/d/'], inputs: ['src.txt'], run: 'echo d >> ran.log; mkdir -p out/d && cp src.txt out/d/one && cp src.txt out/d/two' },
  { outputs: ['out/c.txt'], inputs: ['src.txt'], log: 'out/c.log', run: 'echo c >> ran.log; echo partial > out/c.txt; grep -q v1 src.txt' },
];
`);
  const before = fingerprintFiles(root, UNRELATED);
  const first = cli(root, ['-f', 't.ts', '-j', '1']);
  assert.is(first.code, 0, first.stderr);
  assert.equal(fingerprintFiles(root, UNRELATED), before, 'after a successful build');
  write(root, 'src.txt', 'v2\n');
  const second = cli(root, ['-f', 't.ts', '-j', '1', '-k']);
  assert.is(second.code, 1, 'the c target fails on v2');
  assert.match(second.stderr, /FAILED  out\/c\.txt: command failed \(exit code 1\)/);
  assert.match(second.stderr, /log: out\/c\.log/);
  assert.equal(fingerprintFiles(root, UNRELATED), before, 'after a failing build');
  // The failing target's log is kept, and its partial output is left for inspection, not deleted.
  assert.ok(fs.existsSync(path.join(root, 'out/c.log')));
  assert.is(read(root, 'out/c.txt'), 'partial\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('an action whose ctx.writeFile names an undeclared file (or one outside the root) fails, and writes nothing', () => {
  const root = tempRoot('hubmake-art-');
  write(root, 'notes.txt', 'precious\n');
  write(root, 't.ts', `export default [
  { outputs: ['mine.txt'], run: async (ctx) => { await ctx.writeFile('notes.txt', 'clobbered'); } },
  { outputs: ['mine2.txt'], run: async (ctx) => { await ctx.writeFile('../escaped.txt', 'out'); } },
  { outputs: ['dir/'], run: async (ctx) => { await ctx.writeFile('dir/inside.txt', 'ok'); } },
];
`);
  const before = fingerprintFiles(root, ['notes.txt']);
  const r = cli(root, ['-f', 't.ts', '-k']);
  assert.is(r.code, 1, r.stderr);
  assert.match(r.stderr, /FAILED  mine\.txt: ctx\.writeFile\('notes\.txt'\): 'notes\.txt' is not an output of target 'mine\.txt'/);
  assert.match(r.stderr, /FAILED  mine2\.txt: ctx\.writeFile\('\.\.\/escaped\.txt'\): '\.\.\/escaped\.txt' is not an output/);
  assert.equal(fingerprintFiles(root, ['notes.txt']), before);
  assert.not.ok(fs.existsSync(path.join(path.dirname(root), 'escaped.txt')));
  assert.is(read(root, 'dir/inside.txt'), 'ok', 'writing inside its own directory output is allowed');
  fs.rmSync(root, { recursive: true, force: true });
});

test("a rebuild: 'missing' output that exists is never touched, whatever changed; it is rebuilt only when absent", () => {
  const root = tempRoot('hubmake-art-');
  write(root, 'data.txt', 'v1\n');
  const module = (cmd: string) => `export default [
  { outputs: ['model.bin'], inputs: ['data.txt'], params: { epochs: ${cmd === 'v1' ? 1 : 2} }, rebuild: 'missing', run: 'echo train >> ran.log; cat data.txt > model.bin; echo ${cmd} >> model.bin' },
  { outputs: ['report.txt'], inputs: ['model.bin'], run: 'echo report >> ran.log; wc -c model.bin > report.txt' },
];
`;
  write(root, 't.ts', module('v1'));
  assert.is(cli(root, ['-f', 't.ts', '--no-cache']).code, 0);
  const kept = fingerprintFiles(root, ['model.bin']);
  fs.writeFileSync(path.join(root, 'ran.log'), '');
  // Input, params and command all change: the model is kept, and says so.
  write(root, 'data.txt', 'v2\n');
  write(root, 't.ts', module('v2'));
  const r = cli(root, ['-f', 't.ts', '--no-cache', '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.equal(fingerprintFiles(root, ['model.bin']), kept);
  assert.equal(ran(root), []);
  const d = r.events.find((e) => e.type === 'decision' && e.target === 'model.bin')!;
  assert.is(d.action, 'keep');
  // Absent: rebuilt (and the report follows).
  fs.rmSync(path.join(root, 'model.bin'));
  const again = cli(root, ['-f', 't.ts', '--no-cache']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(ran(root), ['train', 'report']);
  assert.is(read(root, 'model.bin'), 'v2\nv2\n');
  fs.rmSync(root, { recursive: true, force: true });
});

test('an output directory that is a regular file (ENOTDIR): each target fails naming the error, the file is kept, and the state recovers', () => {
  const root = tempRoot('hubmake-art-');
  write(root, 'out', 'I am a file, not a directory\n');
  write(root, 't.ts', `export default [
  { outputs: ['out/cmd.txt'], run: 'echo cmd >> ran.log; mkdir -p out && echo x > out/cmd.txt' },
  { outputs: ['out/act.txt'], run: async (ctx) => { await ctx.writeFile('out/act.txt', 'x'); } },
  { outputs: ['logged.txt'], log: 'out/logged.log', run: 'echo logged >> ran.log; echo x > logged.txt' },
  { outputs: ['fine.txt'], run: 'echo fine >> ran.log; echo x > fine.txt' },
];
`);
  const r = cli(root, ['-f', 't.ts', '-k', '--no-cache']);
  assert.is(r.code, 1, r.stderr);
  // Checking the outputs before running already meets the obstacle: the target fails with it, named.
  assert.match(r.stderr, /FAILED  out\/cmd\.txt: [^\n]*ENOTDIR: not a directory[^\n]*out\/cmd\.txt/);
  assert.match(r.stderr, /FAILED  out\/act\.txt: [^\n]*ENOTDIR: not a directory[^\n]*out\/act\.txt/);
  assert.match(r.stderr, /FAILED  logged\.txt: cannot open its log 'out\/logged\.log': (ENOTDIR|EEXIST)/);
  assert.is(read(root, 'out'), 'I am a file, not a directory\n', 'the obstacle is never deleted');
  assert.equal(ran(root).sort(), ['fine']);
  // Consistent state: once the obstacle is moved away, exactly the failed targets run.
  fs.renameSync(path.join(root, 'out'), path.join(root, 'out.moved'));
  fs.writeFileSync(path.join(root, 'ran.log'), '');
  const again = cli(root, ['-f', 't.ts', '--no-cache', '--json']);
  assert.is(again.code, 0, again.stderr + JSON.stringify(again.events.filter((e) => e.type === 'finish' || e.type === 'error')));
  assert.equal(again.events.filter((e) => e.type === 'start').map((e) => e.target).sort(), ['logged.txt', 'out/act.txt', 'out/cmd.txt']);
  assert.equal(again.events.filter((e) => e.type === 'warning'), []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a full disk (a 64 KiB tmpfs): command, action and log each fail naming ENOSPC, no temp file is left, the state recovers', (ctx) => {
  const root = tempRoot('hubmake-art-');
  const full = path.join(root, 'full');
  fs.mkdirSync(full);
  if (!mountSmallTmpfs(full, '64k')) {
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  try {
    write(root, 't.ts', `export default [
  { outputs: ['full/cmd.bin'], run: 'head -c 200000 /dev/zero > full/cmd.bin' },
  { outputs: ['full/act.bin'], run: async (ctx) => { await ctx.writeFile('full/act.bin', new Uint8Array(200000)); } },
  { outputs: ['small.txt'], log: 'full/noisy.log', run: 'head -c 200000 /dev/zero | tr "\\\\0" x | fold -w 100; echo > small.txt' },
  { outputs: ['fine.txt'], run: 'echo x > fine.txt' },
];
`);
    const r = cli(root, ['-f', 't.ts', '-k', '-j', '1', '--no-cache']);
    assert.is(r.code, 1, r.stderr.slice(0, 2000));
    assert.match(r.stderr, /FAILED  full\/cmd\.bin: command failed[^\n]*\n(.*\n)*?.*No space left on device/);
    assert.match(r.stderr, /FAILED  full\/act\.bin: cannot write 'full\/act\.bin': ENOSPC: no space left on device/);
    assert.match(r.stderr, /FAILED  small\.txt: cannot write its log 'full\/noisy\.log': ENOSPC: no space left on device/);
    assert.equal(fs.readdirSync(full).filter((f) => f.includes('.tmp-')), [], 'no temp file of the atomic write is left');
    assert.is(read(root, 'fine.txt'), 'x\n');
  } finally {
    execFileSync('umount', [full]);
  }
  // With space again, exactly the three failed targets run, and the state has no damage.
  const again = cli(root, ['-f', 't.ts', '--no-cache', '--json']);
  assert.is(again.code, 0, again.stderr);
  assert.equal(again.events.filter((e) => e.type === 'start').map((e) => e.target).sort(), ['full/act.bin', 'full/cmd.bin', 'small.txt']);
  assert.equal(again.events.filter((e) => e.type === 'warning'), []);
  fs.rmSync(root, { recursive: true, force: true });
});

test('a full disk under the state directory: a clear error (no stack), targets that cannot be recorded fail naming the state file, and the next build recovers', () => {
  const root = tempRoot('hubmake-art-');
  const state = path.join(root, '.hubmake');
  fs.mkdirSync(state);
  if (!mountSmallTmpfs(state, '16k')) {
    fs.rmSync(root, { recursive: true, force: true });
    return;
  }
  try {
    write(root, 't.ts', `export default [
  { outputs: ['a.txt'], run: 'echo a > a.txt' },
  { outputs: ['b.txt'], inputs: ['a.txt'], run: async (ctx) => { await ctx.writeFile('b.txt', 'b'); } },
];
`);
    // Completely full: not even the lock fits.
    fs.writeFileSync(path.join(state, 'filler'), Buffer.alloc(16 * 1024));
    const full = cli(root, ['-f', 't.ts', '--no-cache']);
    assert.is(full.code, 1, full.stderr);
    assert.match(full.stderr, /hubmake: error: field '\.hubmake': cannot use the build state: cannot write the build lock .*lock: ENOSPC/);
    assert.not.match(full.stderr, /\n\s+at /, 'no stack trace');
    assert.not.ok(fs.existsSync(path.join(root, 'a.txt')), 'nothing was built without a lock');
    assert.equal(fs.readdirSync(state), ['filler'], 'no half-written lock is left');
    // Room for the lock but not for the records: the target fails naming the state file.
    fs.writeFileSync(path.join(state, 'filler'), Buffer.alloc(12 * 1024));
    const nearly = cli(root, ['-f', 't.ts', '--no-cache']);
    assert.is(nearly.code, 1, nearly.stderr);
    assert.match(nearly.stderr, /FAILED  a\.txt: .*cannot record to the build state \.hubmake\/log\.jsonl: ENOSPC/);
    // Space again: everything builds, then nothing is left to do.
    fs.rmSync(path.join(state, 'filler'));
    const again = cli(root, ['-f', 't.ts', '--no-cache']);
    assert.is(again.code, 0, again.stderr);
    assert.match(cli(root, ['-f', 't.ts', '--no-cache']).stdout, /nothing to do/);
  } finally {
    execFileSync('umount', [state]);
  }
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
