// The command launcher (engine/launcher.ts): commands are started by a small long-lived helper
// instead of the build's node process, the native one (engine/launcher.c) or the bash script. What
// a command sees and what the user sees must be what a direct spawn gives (HUBMAKE_LAUNCHER=off
// still spawns directly, so the two are compared side by side), and a launcher that dies must not
// lose the build. launcher.test.ts runs these tests for the native launcher, launcher-bash.test.ts
// for the bash one.
import { spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { BUILD_TS, cli, cliAsync as startBuild, read, tempRoot, write } from './cli.ts';
import { FrameReader, LauncherPool, launcherFor, SCRIPT, type LauncherProgram } from '../../engine/launcher.ts';
import { alive, buildInProcess } from './crashGraph.ts';

/**
 * The launcher's tests, for one launcher: 'native' (engine/launcher.c, which `npm install`
 * compiles where a C compiler is) or 'bash' (the script in engine/launcher.ts, the fallback).
 */
export function launcherSuite(mode: LauncherProgram['kind']): void {
  const test = suite(`launcher (${mode})`);
  // Builds started in the background: a test that fails before its build ends would otherwise
  // leave it running (waiting for a file the test never writes) and hold this process open.
  const started = new Set<ChildProcess>();
  const cliAsync = (...a: Parameters<typeof startBuild>) => {
    const c = startBuild(...a);
    started.add(c);
    c.once('close', () => started.delete(c));
    return c;
  };
  test.after.each(() => {
    for (const c of started) {
      // The build, then what it left: its launcher (the mark is in its argv) and the commands
      // (the mark, HUBMAKE_RUN=<build pid>:..., in their environment), each in a group of its own.
      const mark = `${c.pid}:`;
      try {
        process.kill(-c.pid!, 'SIGKILL');
      } catch { /* gone */ }
      for (const p of fs.readdirSync('/proc').filter((x) => /^\d+$/.test(x))) {
        try {
          const argv = fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
          const env = fs.readFileSync(`/proc/${p}/environ`, 'utf8');
          if (argv.some((a) => a.startsWith(mark)) || env.includes(`\0HUBMAKE_RUN=${mark}`) || env.startsWith(`HUBMAKE_RUN=${mark}`)) process.kill(Number(p), 'SIGKILL');
        } catch { /* gone, or not ours to read */ }
      }
    }
    started.clear();
  });
  // The environment that selects this launcher: the native one is the default where it is built.
  const L: Record<string, string> = mode === 'bash' ? { HUBMAKE_LAUNCHER: 'bash' } : {};
  /** process.env as a build in this process sees it with this launcher, for the length of `f`. */
  async function withLauncher<T>(f: () => Promise<T>): Promise<T> {
    const was = process.env.HUBMAKE_LAUNCHER;
    Object.assign(process.env, L);
    try {
      return await f();
    } finally {
      if (was === undefined) delete process.env.HUBMAKE_LAUNCHER;
      else process.env.HUBMAKE_LAUNCHER = was;
    }
  }

  const OFF = { HUBMAKE_LAUNCHER: 'off' };
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

  async function waitFor(p: () => boolean, what: string, ms = 20_000): Promise<void> {
    const t0 = Date.now();
    while (!p()) {
      if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
      await sleep(10);
    }
  }

  function statFields(pid: number): string[] {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  }
  const ppidOf = (pid: number) => Number(statFields(pid)[1]);
  const cmdline = (pid: number) => fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');

  // What a command can observe of how it was started: its own environment block, cwd, stdin,
  // process group, signal dispositions, and what its children inherit.
  const PROBE = [
    // `_` (bash's last argument) is the one variable a bash `exec` cannot pass on: the command's own
    // bash starts without the value the build's caller had left there; its children see `_` as before.
    "tr '\\0' '\\n' < /proc/$$/environ | grep -v '^HUBMAKE_RUN=\\|^_=' | sort > probe/environ",
    'env | grep -v "^HUBMAKE_RUN=\\|^_=" | sort > probe/child-env',
    'pwd > probe/cwd',
    'readlink /proc/$$/fd/0 > probe/stdin',
    'echo "$(ps -o pgid= $$ | tr -d " ") $$" > probe/pgid',
    // Of the command's own bash, only ignored signals: bash catches SIGINT and blocks SIGCHLD around
    // its forks and waits, so what grep reads of SigCgt and SigBlk depends on who runs first after
    // the fork (each about half the time in a bare bash loop here, launcher or not). What a process
    // inherits, blocked mask included, is what the child (grep itself) sees: 'child-signals'.
    'grep -E "^SigIgn" /proc/$$/status > probe/signals',
    'grep -E "^Sig(Ign|Blk)" /proc/self/status > probe/child-signals',
    'tr "\\0" "\\n" < /proc/$$/environ | grep "^HUBMAKE_RUN=" > probe/mark',
    'echo "$PPID" > probe/ppid',
    'echo $SHELLOPTS > probe/shellopts',
    'touch probe.txt',
  ].join('; ');

  function probe(root: string, env: NodeJS.ProcessEnv): Record<string, string> {
    fs.rmSync(path.join(root, 'probe'), { recursive: true, force: true });
    fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
    fs.mkdirSync(path.join(root, 'probe'));
    const r = cli(root, ['-f', 'probe.ts'], env);
    assert.is(r.code, 0, r.stderr);
    const out: Record<string, string> = {};
    for (const f of fs.readdirSync(path.join(root, 'probe'))) out[f] = read(root, `probe/${f}`);
    return out;
  }

  test('a command sees the same environment, cwd, stdin, process group and signals as when spawned directly; its parent is the launcher, which carries no orphan mark', () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 'probe.ts', `export default [{ outputs: ['probe.txt'], run: ${JSON.stringify(PROBE)} }];\n`);
    // Sourced by every non-interactive bash: by the command's own bash, not by the launcher.
    write(root, 'bashenv.sh', 'export SOURCED="$SOURCED+"\n');
    for (const env of [{}, { SHLVL: undefined, LC_ALL: 'C.UTF-8', SOME_VAR: 'a b\tc', PWD: '/nonexistent', OLDPWD: '/tmp' }, { BASH_ENV: 'bashenv.sh', SHLVL: '7' }]) {
      const via = probe(root, { ...L, ...env });
      const direct = probe(root, { ...env, ...OFF });
      // The setting of the launcher is the only difference.
      for (const side of [via, direct]) for (const k of ['environ', 'child-env']) side[k] = side[k]!.replace(/^HUBMAKE_LAUNCHER=\w+\n/m, '');
      for (const k of ['environ', 'child-env', 'cwd', 'stdin', 'signals', 'child-signals', 'shellopts']) assert.is(via[k], direct[k], `${k} with env ${JSON.stringify(env)}`);
      assert.is(via.cwd, `${fs.realpathSync(root)}\n`);
      assert.is(via.stdin, '/dev/null\n');
      const [pgid, pid] = via.pgid!.trim().split(' ');
      assert.is(pgid, pid, 'the command leads its own process group');
      assert.match(via.mark!, new RegExp(`^HUBMAKE_RUN=\\d+:\\d*:${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n$`));
      if (env.SOME_VAR) assert.match(via.environ!, /^SOME_VAR=a b\tc$/m);
      if (env.LC_ALL) assert.match(via['child-env']!, /^LC_ALL=C\.UTF-8$/m);
      if (env.BASH_ENV) assert.match(via['child-env']!, /^SOURCED=\+$/m);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a simple command whose program is missing, not executable or a directory fails with bash\'s own message and status, as when spawned directly', () => {
    const root = tempRoot('hubmake-launch-missing-');
    write(root, 'noexec.sh', 'echo never\n');
    fs.mkdirSync(path.join(root, 'dir'));
    write(root, 'targets/index.ts', `export default [
  { outputs: ['a.txt'], log: 'logs/a.log', run: 'nosuchprog a b' },
  { outputs: ['b.txt'], log: 'logs/b.log', run: './noexec.sh x' },
  { outputs: ['c.txt'], log: 'logs/c.log', run: './dir x' },
  { outputs: ['d.txt'], log: 'logs/d.log', run: 'touch d.txt' },
];
`);
    const seen: Record<string, string>[] = [];
    for (const env of [L, OFF]) {
      fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
      fs.rmSync(path.join(root, 'd.txt'), { force: true });
      const r = cli(root, ['-k', '-j', '1', '--json'], env);
      assert.is(r.code, 1);
      const out: Record<string, string> = {};
      for (const e of r.events) if (e.type === 'finish') out[String(e.target)] = `${String(e.status)} ${String(e.exitCode)}`;
      for (const f of ['a', 'b', 'c']) out[`log ${f}`] = read(root, `logs/${f}.log`);
      seen.push(out);
    }
    assert.equal(seen[0], seen[1]);
    assert.is(seen[0]!['a.txt'], 'failed 127');
    assert.match(seen[0]!['log a']!, /nosuchprog: command not found/);
    assert.is(seen[0]!['b.txt'], 'failed 126');
    assert.is(seen[0]!['d.txt'], 'built 0');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a simple command (one program and plain words) is exec\'d by the launcher itself and sees what a direct spawn gives it', () => {
    const root = tempRoot('hubmake-launch-simple-');
    // The program is a script, so it can look at its own environment block and process. `_` is left
    // out: bash -c sets it to the program's path, the launcher's exec does not.
    write(root, 'probe.sh', `#!/bin/bash
tr '\\0' '\\n' < /proc/$$/environ | grep -v '^HUBMAKE_RUN=\\|^HUBMAKE_LAUNCHER=\\|^_=' | sort > probe/environ
pwd > probe/cwd
readlink /proc/$$/fd/0 > probe/stdin
echo "$(ps -o pgid= $$ | tr -d ' ') $$" > probe/pgid
grep -E '^SigIgn' /proc/$$/status > probe/signals
echo "$1 $2" > probe/args
tr '\\0' ' ' < /proc/$PPID/cmdline > probe/parent
touch probe.txt
exit "$3"
`);
    fs.chmodSync(path.join(root, 'probe.sh'), 0o755);
    write(root, 'probe.ts', `export default [{ outputs: ['probe.txt'], run: './probe.sh a=1 --b 0' }];\n`);
    write(root, 'fail.ts', `export default [{ outputs: ['probe.txt'], run: './probe.sh x y 7' }];\n`);
    write(root, 'bashenv.sh', 'export SOURCED="$SOURCED+"\n');
    // The last ones are environments in which bash -c does more than exec the program as it is
    // (it reads SHLVL its own way, drops or replaces PWD/OLDPWD, resets its own variables, sources
    // BASH_ENV): the launcher then starts it through bash -c too (execsSimple).
    for (const env of [{}, { SHLVL: undefined, SOME_VAR: 'a b' }, { SHLVL: '7', PWD: '/nonexistent' }, { SHLVL: 'odd', PWD: root },
      { SHLVL: '0007' }, { SHLVL: '999' }, { OLDPWD: '/nonexistent' }, { OLDPWD: '' }, { PWD: '.' }, { IFS: 'x', OPTIND: '9', PPID: '1', RANDOM: '4' }, { BASH_ENV: 'bashenv.sh' }]) {
      const via = probe(root, { ...L, ...env });
      const direct = probe(root, { ...env, ...OFF });
      for (const k of ['environ', 'cwd', 'stdin', 'signals', 'args']) assert.is(via[k], direct[k], `${k} with env ${JSON.stringify(env)}`);
      assert.is(via.args, 'a=1 --b\n');
      const [pgid, pid] = via.pgid!.trim().split(' ');
      assert.is(pgid, pid, 'the program leads its own process group');
      assert.match(via.parent!, /hubmake-launcher/, 'exec\'d by the launcher\'s fork, no bash in between');
      assert.not.match(direct.parent!, /hubmake-launcher/);
    }
    // Its exit status is the target's, as with a direct spawn.
    const a = cli(root, ['-f', 'fail.ts', '--json'], L);
    const b = cli(root, ['-f', 'fail.ts', '--json'], OFF);
    const fin = (r: ReturnType<typeof cli>) => r.events.find((e) => e.type === 'finish');
    assert.is(a.code, 1);
    assert.is(fin(a)!.exitCode, 7);
    assert.is(fin(a)!.error, fin(b)!.error);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a simple command with its stdout redirected (`> f`, `>> f`, `> f 2>&1`) writes what bash writes, sees what bash\'s fork gives it, and fails as bash does when its file cannot be opened', () => {
    const root = tempRoot('hubmake-launch-redirect-');
    write(root, 'probe.sh', `#!/bin/bash
tr '\\0' '\\n' < /proc/$$/environ | grep -v '^HUBMAKE_RUN=\\|^HUBMAKE_LAUNCHER=\\|^_=' | sort > probe/$1.environ
pwd > probe/$1.cwd
readlink /proc/$$/fd/0 > probe/$1.stdin
grep -E '^SigIgn' /proc/$$/status > probe/$1.signals
tr '\\0' ' ' < /proc/$PPID/cmdline > probe/$1.parent
grep '^flags' /proc/$$/fdinfo/1 > probe/$1.flags
[ "$(ps -o pgid= $$ | tr -d ' ')" = "$$" ] && echo leads its group > probe/$1.group || echo in its parent\\'s group > probe/$1.group
echo "out $1"
echo "err $1" >&2
exit "$2"
`);
    fs.chmodSync(path.join(root, 'probe.sh'), 0o755);
    // setsid(1) forks only when its caller leads its process group: under bash, which forks a
    // redirected command, it does not, and the command's output is whole when it ends.
    write(root, 'late.sh', '#!/bin/bash\nsleep 0.3\necho late\n');
    fs.chmodSync(path.join(root, 'late.sh'), 0o755);
    write(root, 'targets/index.ts', `export default [
  { outputs: ['out/one.txt'], log: 'logs/one.log', run: './probe.sh one 0 > out/one.txt' },
  { outputs: ['out/app.txt'], log: 'logs/app.log', run: './probe.sh app 0 >> out/app.txt' },
  { outputs: ['out/both.txt'], log: 'logs/both.log', run: './probe.sh both 0 > out/both.txt 2>&1' },
  { outputs: ['out/fail.txt'], log: 'logs/fail.log', run: './probe.sh fail 3 > out/fail.txt' },
  { outputs: ['nodir/x.txt'], log: 'logs/nodir.log', run: './probe.sh nodir 0 > nodir/x.txt' },
  { outputs: ['out/none.txt'], log: 'logs/none.log', run: 'nosuchprog a > out/none.txt' },
  { outputs: ['probe/devnull.cwd'], log: 'logs/devnull.log', run: './probe.sh devnull 0 > /dev/null' },
  { outputs: ['out/setsid.txt'], run: 'setsid ./late.sh > out/setsid.txt' },
];
`);
    for (const env of [{}, { SHLVL: undefined, SOME_VAR: 'a b' }, { SHLVL: '7', PWD: '/nonexistent' }]) {
      const seen: Record<string, string>[] = [];
      for (const how of [L, OFF]) {
        for (const d of ['out', 'logs', 'probe', '.hubmake']) fs.rmSync(path.join(root, d), { recursive: true, force: true });
        fs.mkdirSync(path.join(root, 'out'));
        fs.mkdirSync(path.join(root, 'probe'));
        write(root, 'out/app.txt', 'old\n');
        const r = cli(root, ['-k', '-j', '1', '--json'], { ...env, ...how });
        assert.is(r.code, 1, r.stderr);
        const out: Record<string, string> = {};
        for (const e of r.events) if (e.type === 'finish') out[`finish ${String(e.target)}`] = `${String(e.status)} ${String(e.exitCode)} ${String(e.error ?? '')}`;
        for (const f of fs.readdirSync(path.join(root, 'out'))) out[`out/${f}`] = read(root, `out/${f}`);
        for (const f of fs.readdirSync(path.join(root, 'logs'))) out[`logs/${f}`] = read(root, `logs/${f}`);
        for (const f of fs.readdirSync(path.join(root, 'probe'))) if (!f.endsWith('.parent')) out[`probe/${f}`] = read(root, `probe/${f}`);
        out.parent = read(root, 'probe/one.parent');
        out.devnullParent = read(root, 'probe/devnull.parent');
        seen.push(out);
      }
      const [via, direct] = seen as [Record<string, string>, Record<string, string>];
      if (mode === 'native') assert.match(via.parent!, /hubmake-launcher/, 'spawned by the launcher, no bash in between');
      assert.not.match(direct.parent!, /hubmake-launcher/);
      assert.not.match(via.devnullParent!, /hubmake-launcher/, 'a redirection into a device goes through bash');
      for (const side of [via, direct]) {
        delete side.parent;
        delete side.devnullParent;
      }
      assert.equal(via, direct, `with env ${JSON.stringify(env)}`);
      assert.is(via['out/one.txt'], 'out one\n');
      assert.is(via['probe/one.group'], "in its parent's group\n", 'bash forks a redirected command: it does not lead its group');
      assert.is(via['out/setsid.txt'], 'late\n');
      assert.is(via['logs/one.log'], 'err one\n');
      assert.is(via['out/app.txt'], 'old\nout app\n');
      assert.is(via['out/both.txt'], 'out both\nerr both\n');
      assert.is(via['logs/both.log'], '');
      assert.match(via['finish out/fail.txt']!, /^failed 3 /);
      assert.match(via['finish out/none.txt']!, /^failed 127 /);
      assert.match(via['logs/none.log']!, /nosuchprog: command not found/);
      assert.match(via['finish nodir/x.txt']!, /^failed 1 /);
      assert.match(via['logs/nodir.log']!, /nodir\/x\.txt: No such file or directory/);
      // Not a regular file (a device here; a FIFO would block the launcher's open): through bash.
      assert.is(via['logs/devnull.log'], 'err devnull\n');
      assert.match(via['finish probe/devnull.cwd']!, /^built 0 /);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('frames: output and frames come apart at every split of the stream, and an empty jobs report (J then K at once) does not swallow the end frame', () => {
    const tok = '\x01hubmake-test:';
    const stream = [
      `${tok}B\n`, 'hello\n', `${tok}P123\n`, 'partial line', `${tok}J[1]+ 123 Exit 3  ( cmd )\n${tok}K\n`, `${tok}E3\n`,
      `${tok}B\n`, `${tok}P124\n`, `${tok}J${tok}K\n`, `${tok}E0\n`,
      `${tok}B\n`, `${tok}J[1]+ 125 Killed ( a )\n[2]- 99 Done ( b )\n${tok}K\n`, `${tok}E137\n`,
    ].join('');
    const bytes = Buffer.from(stream);
    const expect = ['B:', 'out:hello\n', 'P:123', 'out:partial line', 'J:[1]+ 123 Exit 3  ( cmd )', 'E:3', 'B:', 'P:124', 'J:', 'E:0', 'B:', 'J:[1]+ 125 Killed ( a )', 'E:137'];
    for (let cut = 0; cut <= bytes.length; cut++) {
      for (const step of [1, 7, bytes.length]) {
        const got: string[] = [];
        let out = '';
        const flush = () => { if (out) { got.push(`out:${out}`); out = ''; } };
        const r = new FrameReader(Buffer.from(tok), (b) => { out += b.toString(); }, (k, text) => { flush(); got.push(`${String.fromCharCode(k)}:${text}`); });
        const parts = [bytes.subarray(0, cut), ...Array.from({ length: Math.ceil((bytes.length - cut) / step) }, (_, i) => bytes.subarray(cut + i * step, cut + (i + 1) * step))];
        for (const p of parts) if (p.length) r.feed(p);
        flush();
        assert.equal(got, expect, `cut at ${cut}, then steps of ${step}`);
      }
    }
  });

  test('600 quick commands in a row all end, through the launcher, with the right outputs', () => {
    // A smoke test at volume: bash's `jobs -l` in the SIGCHLD trap printed nothing for about 1 quick
    // command in 300 (the job already dropped), and the end frame that followed was read as part of
    // it, so the build waited forever (seen once in a 2,000-command build). The race itself is
    // checked deterministically by the frame test above; here the whole path runs at volume.
    const root = tempRoot('hubmake-launch-many-');
    write(root, 'src.txt', 'x\n');
    fs.mkdirSync(path.join(root, 'out'));
    write(root, 'targets/index.ts', `export default Array.from({ length: 600 }, (_, i) => ({ outputs: [\`out/f\${i}\`], inputs: ['src.txt'], run: i % 10 ? \`cp src.txt out/f\${i}\` : \`cat src.txt > out/f\${i}\` }));\n`);
    const r = cli(root, ['-j', '2'], L);
    assert.is(r.code, 0, r.stderr);
    assert.match(r.stdout, /600 built/);
    assert.is(fs.readdirSync(path.join(root, 'out')).length, 600);
    assert.is(read(root, 'out/f599'), 'x\n');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the launcher is the command\'s parent, has no orphan mark, and is gone when the build ends', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [{ outputs: ['out.txt'], run: 'echo $$ > pid; while [ ! -f go ]; do sleep 0.02; done; echo done > out.txt' }];\n`);
    const child = cliAsync(root, ['-f', 't.ts'], L);
    await waitFor(() => fs.existsSync(path.join(root, 'pid')) && read(root, 'pid').endsWith('\n'), 'the command to start');
    const pid = Number(read(root, 'pid'));
    const launcher = ppidOf(pid);
    assert.ok(cmdline(launcher).includes('hubmake-launcher'), `the command's parent is ${cmdline(launcher).join(' ')}`);
    // The launcher this suite is about: the compiled program, or bash running the script.
    assert.match(fs.readlinkSync(`/proc/${launcher}/exe`), mode === 'native' ? /\/dist\/engine\/hubmake-launcher$/ : /\/bash$/);
    assert.is(ppidOf(launcher), child.pid, 'the launcher is a child of the build');
    assert.not.ok(fs.readFileSync(`/proc/${launcher}/environ`).includes('HUBMAKE_RUN='), 'the launcher carries no orphan mark');
    write(root, 'go', '');
    const [code] = await new Promise<[number | null]>((r) => child.once('close', (c) => r([c])));
    assert.is(code, 0);
    await sleep(50);
    assert.not.ok(alive(launcher), 'the launcher outlived its build');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('output streams while the command runs; stdout and stderr, a last line without newline, and a log file arrive whole', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [
  { outputs: ['a.txt'], run: 'echo first; echo to-stderr >&2; while [ ! -f go ]; do sleep 0.02; done; seq 1 3000 | sed s/^/n/; printf "no newline"; echo a > a.txt' },
  { outputs: ['b.txt'], log: 'logs/b.log', run: 'echo one; echo two >&2; head -c 300000 /dev/zero | tr "\\\\0" x; printf "tail"; echo b > b.txt' },
];
`);
    const child = cliAsync(root, ['-f', 't.ts', '--json', '-j', '2'], L);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    // The command waits for 'go', written only once its first line has been reported.
    await waitFor(() => out.includes('"line":"first"'), 'the first line while the command still runs');
    write(root, 'go', '');
    const [code] = await new Promise<[number | null]>((r) => child.once('close', (c) => r([c])));
    assert.is(code, 0);
    const lines = out.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { type: string; target?: string; line?: string }).filter((e) => e.type === 'output' && e.target === 'a.txt').map((e) => e.line);
    assert.equal(lines, ['first', 'to-stderr', ...Array.from({ length: 3000 }, (_, i) => `n${i + 1}`), 'no newline']);
    assert.is(read(root, 'logs/b.log'), `one\ntwo\n${'x'.repeat(300000)}tail`);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('exit codes and deaths by signal are reported as a direct spawn reports them', () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [
  { outputs: ['a.txt'], run: 'exit 3' },
  { outputs: ['b.txt'], run: 'exit 137' },
  { outputs: ['c.txt'], run: 'kill -9 $$' },
  { outputs: ['d.txt'], run: 'kill -TERM $$' },
  { outputs: ['e.txt'], run: 'sleep 5 & kill -SEGV $!; wait $!' },
  { outputs: ['f.txt'], run: 'false | cat' },
  { outputs: ['g.txt'], run: 'true' },
  { outputs: ['h.txt'], run: 'kill -34 $$' },
];
`);
    const outcome = (env: NodeJS.ProcessEnv) => {
      fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
      const r = cli(root, ['-f', 't.ts', '-k', '--json', '-j', '2'], env);
      assert.is(r.code, 1, r.stderr);
      return r.events.filter((e) => e.type === 'finish').map((e) => `${e.target} ${e.status} ${e.exitCode} ${e.error ?? ''}`).sort();
    };
    const via = outcome(L);
    // Node reports a direct spawn killed by a real-time signal as exit code 0 ('close' gives
    // [0, null]: signal 34 has no name in node), so that one is compared without h.txt.
    assert.equal(via.filter((l) => !l.startsWith('h.txt')), outcome(OFF).filter((l) => !l.startsWith('h.txt')));
    assert.equal(via, [
      'a.txt failed 3 command failed (exit code 3)',
      'b.txt failed 137 command failed (exit code 137)',
      'c.txt failed null command failed (killed by SIGKILL)',
      'd.txt failed null command failed (killed by SIGTERM)',
      'e.txt failed 139 command failed (exit code 139)',
      'f.txt failed 1 command failed (exit code 1)',
      "g.txt failed 0 declared output 'g.txt' was not created",
      'h.txt failed null command failed (killed by signal 34)',
    ]);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a command that is stopped (SIGSTOP) and continued ends with its own exit code, as with a direct spawn', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [{ outputs: ['s.txt'], run: 'echo $$ > pid; kill -STOP $$; echo resumed; echo ok > s.txt; exit 4' }];\n`);
    for (const env of [L, OFF]) {
      fs.rmSync(path.join(root, 'pid'), { force: true });
      const child = cliAsync(root, ['-f', 't.ts', '--json'], env);
      let out = '';
      child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
      await waitFor(() => fs.existsSync(path.join(root, 'pid')) && read(root, 'pid').endsWith('\n'), 'the command to start');
      const pid = Number(read(root, 'pid'));
      await waitFor(() => statFields(pid)[0] === 'T', 'the command to stop');
      await sleep(300);
      assert.not.match(out, /"type":"finish"/, 'the target ended while its command was stopped');
      process.kill(pid, 'SIGCONT');
      const [code] = await new Promise<[number | null]>((r) => child.once('close', (c) => r([c])));
      assert.is(code, 1);
      assert.match(out, /"line":"resumed"/);
      assert.match(out, /command failed \(exit code 4\)/);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('SIGINT stops the running command\'s whole group; no command, child of it or launcher is left', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [
  { outputs: ['a.txt'], run: "echo $$ > pids; (trap '' TERM; sleep 60) & echo $! >> pids; sleep 60" },
  { outputs: ['b.txt'], run: 'sleep 60' },
];
`);
    const child = cliAsync(root, ['-f', 't.ts', '-j', '2'], L);
    await waitFor(() => fs.existsSync(path.join(root, 'pids')) && read(root, 'pids').trim().split('\n').length === 2, 'the command to start');
    await sleep(200);
    const pids = read(root, 'pids').trim().split('\n').map(Number);
    const launcher = ppidOf(pids[0]!);
    process.kill(-child.pid!, 'SIGINT');
    const [code] = await new Promise<[number | null]>((r) => child.once('close', (c) => r([c])));
    assert.is(code, 130);
    await sleep(50);
    for (const p of [...pids, launcher]) assert.not.ok(alive(p), `pid ${p} still running`);
    fs.rmSync(root, { recursive: true, force: true });
  });

  /**
   * `-f t.ts -j 1` in the background, once its first command has written its pid to `pids` (0.3 s
   * in: by then the launcher has long reported it; a launcher killed between its fork and that
   * report leaves a command the build cannot name, see README): that pid, its launcher, and the end.
   */
  async function startedBuild(root: string): Promise<{ first: number; launcher: number; done: () => Promise<{ code: number | null; out: string }> }> {
    const child = cliAsync(root, ['-f', 't.ts', '-j', '1'], L);
    let out = '';
    child.stdout!.on('data', (c: Buffer) => (out += c.toString()));
    const closed = new Promise<number | null>((r) => child.once('close', (c) => r(c)));
    await waitFor(() => fs.existsSync(path.join(root, 'pids')) && read(root, 'pids').endsWith('\n'), 'the command to start');
    const first = Number(read(root, 'pids'));
    const launcher = ppidOf(first);
    assert.ok(cmdline(launcher).includes('hubmake-launcher'));
    return { first, launcher, done: async () => ({ code: await closed, out }) };
  }

  test('a launcher killed mid-build: its command is stopped and run again directly, and the build completes', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [
  { outputs: ['slow.txt'], run: 'sleep 0.3; echo $$ >> pids; echo started; sleep 1; echo slow > slow.txt' },
  ...Array.from({ length: 6 }, (_, i) => ({ outputs: [\`q\${i}.txt\`], deps: ['slow.txt'], run: \`echo \${i} > q\${i}.txt\` })),
];
`);
    const run = await startedBuild(root);
    process.kill(run.launcher, 'SIGKILL');
    const { code, out } = await run.done();
    const first = run.first;
    assert.is(code, 0, out);
    assert.is(read(root, 'slow.txt'), 'slow\n');
    for (let i = 0; i < 6; i++) assert.is(read(root, `q${i}.txt`), `${i}\n`);
    const runs = read(root, 'pids').trim().split('\n').map(Number);
    assert.is(runs.length, 2, 'the interrupted command ran once more');
    assert.not.ok(alive(first), 'the first run was stopped');
    assert.match(out, /the command launcher died while this command ran; running it again/);
    // Nothing was lost: the next build has nothing to do.
    const again = cli(root, ['-f', 't.ts'], L);
    assert.is(again.code, 0, again.stderr);
    assert.match(again.stdout, /nothing to do/);
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a launcher that stops reporting (SIGSTOP) while its command ends: the watchdog kills it and the command runs again directly', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [
  { outputs: ['a.txt'], run: 'sleep 0.3; echo $$ >> pids; sleep 0.3; echo a > a.txt' },
  { outputs: ['b.txt'], inputs: ['a.txt'], run: 'cp a.txt b.txt' },
];
`);
    const { launcher, done } = await startedBuild(root);
    process.kill(launcher, 'SIGSTOP'); // its command goes on and ends; its end is never reported
    const { code, out } = await done();
    assert.is(code, 0, out);
    assert.not.ok(alive(launcher), 'the stopped launcher was killed');
    assert.match(out, /the command launcher died while this command ran; running it again/);
    assert.is(read(root, 'pids').trim().split('\n').length, 2, 'run again once, directly');
    assert.is(read(root, 'b.txt'), 'a\n');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test(mode === 'bash'
    ? 'an environment with exported bash functions or SHELLOPTS is not given to the bash launcher: such commands are spawned directly, and still see them'
    : 'an environment with exported bash functions or SHELLOPTS goes through the native launcher, which runs no bash of its own: the commands see them', () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 't.ts', `export default [{ outputs: ['out.txt'], run: 'greet > out.txt; cat /proc/$PPID/cmdline | tr "\\\\0" " " >> out.txt' }];\n`);
    // A simple command whose program an exported function shadows: bash runs the function.
    write(root, 'src.txt', 'the file\n');
    write(root, 'cp.ts', `export default [{ outputs: ['copy.txt'], run: 'cp src.txt copy.txt' }];\n`);
    for (const env of [L, OFF]) {
      fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
      fs.rmSync(path.join(root, 'copy.txt'), { force: true });
      const r = cli(root, ['-f', 'cp.ts'], { ...env, 'BASH_FUNC_cp%%': '() {  echo from the function > "$2"\n}' });
      assert.is(r.code, 0, r.stderr);
      assert.is(read(root, 'copy.txt'), 'from the function\n', JSON.stringify(env));
    }
    for (const env of [{ 'BASH_FUNC_greet%%': '() {  echo hello from a function\n}' }, { 'BASH_FUNC_greet%%': '() {  echo hello from a function\n}', SHELLOPTS: 'braceexpand:hashall:interactive-comments:xtrace' }]) {
      fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
      const r = cli(root, ['-f', 't.ts'], { ...L, ...env });
      assert.is(r.code, 0, r.stderr);
      const out = read(root, 'out.txt');
      assert.match(out, /^hello from a function\n/);
      if (mode === 'bash') assert.not.match(out, /hubmake-launcher/);
      else assert.match(out, /hubmake-launcher/);
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('in one process, a build after process.env changed gives its commands the new environment', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 'in.txt', '1\n');
    write(root, 'targets.ts', `export default [{ outputs: ['out.txt'], inputs: ['in.txt'], run: 'echo "$HUBMAKE_TEST_VALUE $(cat /proc/$PPID/cmdline | tr "\\\\0" " ")" > out.txt' }];\n`);
    process.env.HUBMAKE_TEST_VALUE = 'one';
    assert.is((await withLauncher(() => buildInProcess(root, 1))).code, 0);
    assert.match(read(root, 'out.txt'), /^one [\s\S]*hubmake-launcher/, read(root, 'out.txt'));
    process.env.HUBMAKE_TEST_VALUE = 'two';
    write(root, 'in.txt', '2\n'); // (a changed env value alone would be restored from the cache)
    assert.is((await withLauncher(() => buildInProcess(root, 1))).code, 0);
    assert.match(read(root, 'out.txt'), /^two [\s\S]*hubmake-launcher/, read(root, 'out.txt'));
    delete process.env.HUBMAKE_TEST_VALUE;
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a no-op build starts no launcher; idle launchers of an in-process build are closed and reaped', async () => {
    const root = tempRoot('hubmake-launch-');
    write(root, 'targets.ts', `export default [{ outputs: ['out.txt'], run: 'echo $PPID > out.txt' }];\n`);
    const launchers = () => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).filter((p) => {
      try {
        return ppidOf(Number(p)) === process.pid && cmdline(Number(p)).includes('hubmake-launcher');
      } catch {
        return false;
      }
    });
    assert.is((await withLauncher(() => buildInProcess(root, 1))).code, 0);
    const launcher = read(root, 'out.txt').trim();
    assert.ok(launchers().includes(launcher), 'the command ran through a launcher of this process');
    // Idle for half a second, it is closed; this process reaps it (no zombie is left).
    await waitFor(() => !fs.existsSync(`/proc/${launcher}`), 'the idle launcher to be gone', 5000);
    const noop = await withLauncher(() => buildInProcess(root, 1));
    assert.is(noop.code, 0);
    assert.equal(noop.events.filter((e) => e.type === 'start'), []);
    assert.equal(launchers(), [], 'a no-op build started a launcher');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('the pid a command reports names its process group already: a SIGTERM sent to the group at once reaches every command, redirected ones too', async () => {
    const root = tempRoot('hubmake-launch-group-');
    const program = launcherFor(L);
    const pool = new LauncherPool(root, process.env, 'test', undefined, program);
    for (let i = 0; i < 30; i++) {
      const t0 = Date.now();
      let missed = false;
      const res = await pool.run({
        cmd: i % 2 ? 'sleep 2 > out.txt' : 'sleep 2',
        onOutput: () => {},
        onPid: (pid) => {
          try {
            process.kill(-pid, 'SIGTERM');
          } catch {
            missed = true;
          }
        },
      });
      assert.not.ok(missed, `round ${i}: no process group yet`);
      assert.is(res?.signal, 'SIGTERM', `round ${i}`);
      assert.ok(Date.now() - t0 < 1500, `round ${i}: the command ran its course`);
    }
    pool.close();
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a redirected command that handles SIGINT to its group ends as it chooses; one that writes, closes and runs a script in its output can run it (as under bash)', async () => {
    const root = tempRoot('hubmake-launch-int-');
    write(root, 'intok.sh', `#!/bin/bash
trap 'echo caught; kill $!; exit 0' INT
ps -o pgid= $$ | tr -d ' ' > pgid.tmp && mv pgid.tmp pgid
sleep 5 & wait
`);
    write(root, 'gen.sh', `#!/bin/bash
echo '#!/bin/sh'
echo 'echo generated ran'
exec 1>&-
chmod +x out/gen
./out/gen > out/ran
`);
    for (const f of ['intok.sh', 'gen.sh']) fs.chmodSync(path.join(root, f), 0o755);
    write(root, 'targets/index.ts', `export default [
  { outputs: ['out/int'], run: './intok.sh > out/int' },
  { outputs: ['out/gen', 'out/ran'], run: './gen.sh > out/gen' },
];
`);
    for (const env of [L, OFF]) {
      for (const d of ['out', '.hubmake']) fs.rmSync(path.join(root, d), { recursive: true, force: true });
      fs.rmSync(path.join(root, 'pgid'), { force: true });
      fs.mkdirSync(path.join(root, 'out'));
      const b = cliAsync(root, ['-j', '2', '--json'], env);
      // What the build said, for the message of a failure (seen once in CI, not reproduced since).
      let said = '';
      b.stdout!.on('data', (c: Buffer) => (said += c.toString()));
      b.stderr!.on('data', (c: Buffer) => (said += c.toString()));
      await waitFor(() => fs.existsSync(path.join(root, 'pgid')), 'the command\'s process group');
      process.kill(-Number(read(root, 'pgid').trim()), 'SIGINT');
      const code = await new Promise<number | null>((r) => b.once('close', r));
      assert.is(code, 0, `${JSON.stringify(env)}\n${said.slice(-3000)}`);
      assert.is(read(root, 'out/int'), 'caught\n', JSON.stringify(env));
      assert.is(read(root, 'out/ran'), 'generated ran\n', JSON.stringify(env));
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a launcher that cannot start is not waited for: the commands are spawned directly', async () => {
    // The in-process API with a LauncherPool whose launcher cannot start (its directory is missing): run() answers undefined.
    const program = launcherFor(L);
    assert.is(program?.kind, mode);
    const pool = new LauncherPool('/nonexistent-dir-for-hubmake', process.env, 'test', undefined, program);
    const res = await pool.run({ cmd: 'true', onOutput: () => {}, onPid: () => {} });
    assert.is(res, undefined);
    assert.ok(pool.broken);
  });

  if (mode === 'native') {
    // (The bash launcher keeps its jobs in its own session, where these signals do stop them:
    // such a command waits for a SIGCONT there, see README.)
    test('a command that stops itself with SIGTSTP, SIGTTIN or SIGTTOU goes on, as when spawned directly (its own session, an orphaned process group)', () => {
      const root = tempRoot('hubmake-launch-');
      write(root, 't.ts', `export default [{ outputs: ['out.txt'], run: 'kill -TSTP $$; kill -TTIN 0; kill -TTOU $$; echo "$$ $(ps -o sid= $$ | tr -d " ")" > out.txt' }];\n`);
      for (const env of [L, OFF]) {
        fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
        const r = spawnSync(process.execPath, ['--import', 'tsx', BUILD_TS, '-C', root, '-f', 't.ts'], { cwd: root, env: { ...process.env, ...env }, encoding: 'utf8', timeout: 20_000 });
        assert.is(r.status, 0, `${JSON.stringify(env)}: ${r.error?.message ?? r.stderr}`);
        const [pid, sid] = read(root, 'out.txt').trim().split(' ');
        assert.is(sid, pid, 'the command leads its own session');
      }
      fs.rmSync(root, { recursive: true, force: true });
    });
  }

  test('a command that leaves a child behind holding its output ends when that child is done, as with a direct spawn: the late output is in the log', () => {
    const root = tempRoot('hubmake-launch-held-');
    write(root, 'targets/index.ts', `export default [{ outputs: ['a.txt'], log: 'logs/a.log', run: '{ sleep 0.4; echo late; } & echo early > a.txt; echo early' }];\n`);
    for (const env of [L, OFF]) {
      fs.rmSync(path.join(root, '.hubmake'), { recursive: true, force: true });
      const r = cli(root, [], env);
      assert.is(r.code, 0, r.stderr);
      assert.is(read(root, 'logs/a.log'), 'early\nlate\n', JSON.stringify(env));
    }
    fs.rmSync(root, { recursive: true, force: true });
  });

  test('a command whose closing NUL never arrived (the build died while writing it) is not run', () => {
    const root = tempRoot('hubmake-launch-');
    const program = launcherFor(L)!;
    const [file, args] = program.kind === 'native' ? [program.path, ['mark']] : ['/bin/bash', ['--norc', '--noprofile', '-c', SCRIPT, 'hubmake-launcher', 'mark', 'u', 'u', 'u', 'u', 'u']];
    const r = spawnSync(file, args, { cwd: root, input: 'T:\0becho ran > whole.txt\0becho ran > cut.txt', encoding: 'utf8', timeout: 10_000 });
    // The C launcher adds ' gone' when the command's group is empty; the bash launcher never does.
    assert.match(r.stdout, mode === 'native' ? /T:E0 gone\n$/ : /T:E0\n$/);
    assert.ok(fs.existsSync(path.join(root, 'whole.txt')), 'the whole command ran');
    assert.not.ok(fs.existsSync(path.join(root, 'cut.txt')), 'the cut-off command ran');
    fs.rmSync(root, { recursive: true, force: true });
  });

  test.run();
}
