// The native stamp probe (engine/stamp-probe.c, engine/stamp-probe.ts): it stats the settled
// stamp's paths while the build imports its targets module, and only ever confirms. A check given
// its answer must say exactly what the build's own check says (the stamp tests run through both,
// see stamp.test.ts); here on random edits of every kind, on stamps it must refuse, and through the
// command line at the size where the build uses it by default.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cli, started, tempRoot, write } from './lib/cli.ts';
import { prng } from './lib/prng.ts';
import { Disk } from '../engine/disk.ts';
import { nativeProgram } from '../engine/native.ts';
import { checkStamp, readStamp, recordsOf, stampText, type StampCheck, type StampFile } from '../engine/stamp.ts';
import { probeStamp } from '../engine/stamp-probe.ts';

const ALWAYS = { HUBMAKE_STAMP_PROBE: '0' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

if (!nativeProgram('hubmake-stamp-probe', 'stamp-probe.c')) {
  // `npm ci` compiles it wherever a C compiler is; CI has one. Say so rather than pass silently.
  test('the native stamp probe is built (npm run bundle, with a C compiler)', () => {
    assert.unreachable('dist/engine/hubmake-stamp-probe is missing or from another source: run npm run bundle');
  });
}

/** What a check says, in a form two checks can be compared by. */
function said(c: StampCheck | undefined): unknown {
  return c && { changed: [...c.changed].sort(), carried: [...c.carried()].sort(([a], [b]) => (a < b ? -1 : 1)) };
}

async function probeAnswer(root: string, stamp: StampFile): Promise<Set<number> | undefined> {
  const probe = probeStamp(root, stamp, ALWAYS);
  assert.ok(probe, 'the probe was not started');
  return probe!.answer;
}

const NAMES = ['plain', 'with space', 'ünïcödé', 'tab\there', 'semi;colon', "quote'd", 'dash-ed'];

function project(n: number): string {
  const root = tempRoot('hubmake-probe-');
  const specs: string[] = [];
  for (let i = 0; i < n; i++) {
    const src = `src/${NAMES[i % NAMES.length]}-${i}.txt`;
    write(root, src, `source ${i}\n`);
    specs.push(`{ outputs: ['out/c${i}.txt'], inputs: [${JSON.stringify(src)}], run: ${JSON.stringify(`mkdir -p out && cp '${src.replace(/'/g, "'\\''")}' out/c${i}.txt`)} }`);
    if (i % 3 === 2) specs.push(`{ outputs: ['out/m${i}.txt'], inputs: ['out/c${i - 1}.txt', 'out/c${i}.txt'], run: 'cat out/c${i - 1}.txt out/c${i}.txt > out/m${i}.txt' }`);
  }
  write(root, 'targets/index.ts', `export default [\n${specs.join(',\n')}\n];\n`);
  return root;
}

/** Builds until the stamp answers, with the files older than the racy window so that most records are stats. */
async function settle(root: string): Promise<void> {
  for (let i = 0; i < 3; i++) {
    await sleep(150);
    const r = cli(root, ['--json', '--no-cache', '-j', '2']);
    assert.is(r.code, 0, r.stderr);
    if (r.events.find((e) => e.type === 'build-end')?.settled) return;
  }
  assert.unreachable('the stamp never answered');
}

test('random edits: a check given the probe\'s answer says what the build\'s own check says', async () => {
  const root = project(30);
  const stateDir = path.join(root, '.hubmake');
  const disk = new Disk(root);
  const rnd = prng(29);
  const srcs = () => fs.readdirSync(path.join(root, 'src')).map((f) => `src/${f}`);
  const outs = () => fs.readdirSync(path.join(root, 'out')).map((f) => `out/${f}`);
  const abs = (p: string) => path.join(root, p);
  // Each edit is one a user or a stray command makes; each leaves the stamp's file alone.
  const edits: Array<[string, () => void]> = [
    ['edit a source', () => fs.appendFileSync(abs(rnd.pick(srcs())), 'more\n')],
    ['rewrite a source, same bytes', () => {
      const p = abs(rnd.pick(srcs()));
      fs.writeFileSync(p, fs.readFileSync(p));
    }],
    ['chmod a source', () => fs.chmodSync(abs(rnd.pick(srcs())), 0o600)],
    ['delete an output', () => fs.rmSync(abs(rnd.pick(outs())), { force: true })],
    ['an output replaced by a copy (new inode, same bytes)', () => {
      const p = abs(rnd.pick(outs()));
      if (!fs.existsSync(p) || fs.lstatSync(p).isSymbolicLink()) return;
      fs.copyFileSync(p, `${p}.tmp`);
      fs.renameSync(`${p}.tmp`, p);
    }],
    ['an output replaced by a symlink to its copy', () => {
      const p = abs(rnd.pick(outs()));
      if (!fs.existsSync(p) || fs.lstatSync(p).isSymbolicLink()) return;
      fs.copyFileSync(p, `${p}.real`);
      fs.rmSync(p);
      fs.symlinkSync(`${p}.real`, p);
    }],
    ['a source replaced by a symlink to its copy', () => {
      const p = abs(rnd.pick(srcs()));
      if (fs.lstatSync(p).isSymbolicLink()) return;
      fs.copyFileSync(p, path.join(root, path.basename(p)));
      fs.rmSync(p);
      fs.symlinkSync(path.join(root, path.basename(p)), p);
    }],
    ['a source replaced by a directory', () => {
      const p = abs(rnd.pick(srcs()));
      fs.rmSync(p, { force: true });
      fs.mkdirSync(p, { recursive: true });
    }],
    ['a source replaced by a FIFO', () => {
      const p = abs(rnd.pick(srcs()));
      fs.rmSync(p, { recursive: true, force: true });
      assert.is(spawnSync('mkfifo', [p]).status, 0, `mkfifo ${p}`);
    }],
    ['nothing', () => {}],
  ];
  let answered = 0;
  let rounds = 0;
  const outcomes = { refused: 0, moved: 0, settled: 0 };
  for (let epoch = 0; epoch < 4; epoch++) {
    // A fresh start each epoch: sources back to plain files, a build, a stamp.
    fs.rmSync(path.join(root, 'src'), { recursive: true, force: true });
    for (let i = 0; i < 30; i++) write(root, `src/${NAMES[i % NAMES.length]}-${i}.txt`, `source ${i} epoch ${epoch}\n`);
    for (const f of epoch ? fs.readdirSync(path.join(root, 'out'), { withFileTypes: true }) : []) if (f.isSymbolicLink()) fs.rmSync(path.join(root, 'out', f.name));
    await settle(root);
    // Round 0 of each epoch edits nothing: the check right after a settled build must settle too.
    // (Random edits settle only by timing: a copy of an output whose record is compared by content.)
    for (let round = 0; round < 9; round++) {
      const [what, edit] = round === 0 ? (['nothing yet', () => {}] as const) : rnd.pick(edits);
      edit();
      const stamp = readStamp(stateDir);
      assert.ok(stamp, 'no stamp to check');
      const answer = await probeAnswer(root, stamp!);
      if (answer) answered++;
      rounds++;
      const own = checkStamp(stateDir, disk, stamp!.head.key, stamp);
      const helped = checkStamp(stateDir, disk, stamp!.head.key, stamp, answer);
      assert.equal(said(helped), said(own), `epoch ${epoch} round ${round}, after: ${what}`);
      outcomes[!own ? 'refused' : own.changed.length ? 'moved' : 'settled']++;
      // The probe confirms only what the stamp says word for word: every changed path is left to the build.
      if (answer && own) for (const p of own.changed) assert.ok(answer.has(recordsOf(stamp!)!.findIndex((r) => r.path === p)), `${p} changed, and the probe confirmed it`);
    }
  }
  assert.is(answered, rounds, 'the probe gave no answer to a stamp it should have read');
  // The seed reaches all three answers a check can give; every epoch's first check settles.
  assert.ok(outcomes.refused && outcomes.moved && outcomes.settled >= 4, JSON.stringify(outcomes));
  fs.rmSync(root, { recursive: true, force: true });
});

test('the probe refuses a stamp replaced since it was read, a record cut short and a count its head does not give', async () => {
  const root = project(6);
  const stateDir = path.join(root, '.hubmake');
  await settle(root);
  const stamp = readStamp(stateDir)!;
  const records = recordsOf(stamp)!;
  assert.ok((await probeAnswer(root, stamp)) !== undefined, 'the intact stamp was refused');
  const file = path.join(stateDir, 'settled.stamp');
  const text = fs.readFileSync(file, 'utf8');
  // Another stamp renamed into place after the build read this one: same bytes, another inode.
  fs.writeFileSync(`${file}.new`, text);
  fs.renameSync(`${file}.new`, file);
  assert.is(await probeAnswer(root, stamp), undefined, 'a replaced stamp was answered for');
  const reread = (t: string) => {
    fs.writeFileSync(file, t);
    return readStamp(stateDir)!;
  };
  assert.is(await probeAnswer(root, reread(text.slice(0, -3))), undefined, 'a cut record was answered for');
  // A FIFO put in the stamp's place after the build read it: the probe opens it without blocking,
  // refuses it, and answers nothing at once.
  const read = reread(text);
  fs.rmSync(file);
  assert.is(spawnSync('mkfifo', [file]).status, 0);
  const t0 = Date.now();
  assert.is(await probeAnswer(root, read), undefined, 'a FIFO was answered for');
  assert.ok(Date.now() - t0 < 4000, `the probe took ${Date.now() - t0} ms on a FIFO (its 5 s limit, not its own refusal)`);
  fs.rmSync(file);
  const fewer = stampText(stamp.head, records.slice(0, -1));
  assert.is(await probeAnswer(root, reread(fewer.replace(/"count":\d+/, `"count":${records.length}`))), undefined, 'fewer records than the head says were answered for');
  fs.rmSync(root, { recursive: true, force: true });
});

test('the probe confirms only plain relative paths with a stat signature, whatever their characters', async () => {
  const root = project(3);
  const stateDir = path.join(root, '.hubmake');
  await settle(root);
  const stamp = readStamp(stateDir)!;
  const sigOf = (p: string) => {
    const st = fs.statSync(path.join(root, p), { bigint: true });
    return `f:${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;
  };
  write(root, 'odd/new\nline é.txt', 'x');
  write(root, 'plain.txt', 'p');
  const rows = [
    { kind: 'i', sig: sigOf('plain.txt'), path: 'plain.txt' }, // 0 confirmed
    { kind: 'i', sig: sigOf('odd/new\nline é.txt'), path: 'odd/new\nline é.txt' }, // 1 confirmed
    { kind: 'i', sig: sigOf('plain.txt'), path: './plain.txt' }, // 2 not plain
    { kind: 'i', sig: sigOf('plain.txt'), path: 'odd/../plain.txt' }, // 3 not plain
    { kind: 'i', sig: 'absent', path: 'nowhere.txt' }, // 4 absent: the build looks
    { kind: 'i', sig: `racy:${'0'.repeat(64)}`, path: 'plain.txt' }, // 5 compared by content
    { kind: 'i', sig: sigOf('plain.txt').replace(/:(\d+)$/, (_, c: string) => `:${BigInt(c) + 1n}`), path: 'plain.txt' }, // 6 another ctime
    { kind: 'x', sig: sigOf('plain.txt'), path: 'plain.txt' }, // 7 an unknown kind
    { kind: 'o', sig: sigOf('plain.txt'), path: 'plain.txt' }, // 8 an output, as itself
  ];
  fs.symlinkSync('plain.txt', path.join(root, 'link.txt'));
  rows.push({ kind: 'o', sig: sigOf('plain.txt'), path: 'link.txt' }); // 9 an output that is a symlink
  rows.push({ kind: 'i', sig: sigOf('plain.txt'), path: 'link.txt' }); // 10 an input, through its link
  // 11: a name that is not UTF-8 (0xff): the build would decode it to U+FFFD, another path.
  const raw = Buffer.concat([Buffer.from('bad'), Buffer.from([0xff]), Buffer.from('name')]);
  fs.writeFileSync(Buffer.concat([Buffer.from(`${root}/`), raw]), 'r');
  const rawSt = fs.statSync(Buffer.concat([Buffer.from(`${root}/`), raw]), { bigint: true });
  rows.push({ kind: 'i', sig: `f:${rawSt.dev}:${rawSt.ino}:${rawSt.size}:${rawSt.mtimeNs}:${rawSt.ctimeNs}`, path: 'RAW-NAME' });
  const text = Buffer.from(stampText(stamp.head, rows));
  const at = text.indexOf('RAW-NAME');
  fs.writeFileSync(path.join(stateDir, 'settled.stamp'), Buffer.concat([text.subarray(0, at), raw, text.subarray(at + 'RAW-NAME'.length)]));
  const answer = await probeAnswer(root, readStamp(stateDir)!);
  assert.equal(answer && [...answer].sort((a, b) => a - b), [2, 3, 4, 5, 6, 7, 9, 11]);
  fs.rmSync(root, { recursive: true, force: true });
});

test('through the command line: a stamp of 2,000 paths is checked by the probe, and an edit runs what it reaches', async () => {
  const root = tempRoot('hubmake-probe-cli-');
  write(root, 'targets/index.ts', `const specs = [];
for (let i = 0; i < 1000; i++) specs.push({ outputs: [\`out/\${i}.txt\`], inputs: [\`src/\${i}.txt\`], run: \`mkdir -p out && cp src/\${i}.txt out/\${i}.txt\` });
export default specs;
`);
  for (let i = 0; i < 1000; i++) write(root, `src/${i}.txt`, `${i}\n`);
  await settle(root);
  const noop = cli(root, ['--json', '-j', '2']);
  const start = noop.events.find((e) => e.type === 'build-start')!;
  assert.ok(noop.events.find((e) => e.type === 'build-end')?.settled, 'the no-op was not answered by the stamp');
  const records = recordsOf(readStamp(path.join(root, '.hubmake'))!)!;
  assert.is(records.length, 2000);
  assert.is(start.probed, records.filter((r) => r.sig.startsWith('f:')).length, 'the probe did not confirm the stamp\'s stats');
  write(root, 'src/17.txt', 'seventeen\n');
  fs.rmSync(path.join(root, 'out/512.txt'));
  const edit = cli(root, ['--json', '--no-cache', '-j', '2']);
  assert.is(edit.code, 0, edit.stderr);
  assert.equal(started(edit), ['out/17.txt', 'out/512.txt']);
  assert.is(fs.readFileSync(path.join(root, 'out/17.txt'), 'utf8'), 'seventeen\n');
  assert.ok(Number(edit.events.find((e) => e.type === 'build-start')!.probed) >= 1998 - records.filter((r) => !r.sig.startsWith('f:')).length);
  // HUBMAKE_STAMP_PROBE=off: the build stats the paths itself, with the same answer.
  await settle(root);
  const off = cli(root, ['--json', '-j', '2'], { HUBMAKE_STAMP_PROBE: 'off' });
  assert.ok(off.events.find((e) => e.type === 'build-end')?.settled);
  assert.is(off.events.find((e) => e.type === 'build-start')!.probed, undefined);
  fs.rmSync(root, { recursive: true, force: true });
});

test.run();
