// The fixture shared by the artifact-cache tests: a training-like target whose outputs are random
// bytes (so equal bytes prove a restore), its downstream eval, and small readers of the results.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { read, tempRoot, write, type CliResult } from './cli.ts';

export const sha = (b: string | Buffer) => crypto.createHash('sha256').update(b).digest('hex');

/**
 * A training-like target: params from $LR; 2000 random bytes, so equal bytes prove a restore.
 * Both targets say `cache: true` (as the rules' training does): their commands take a few
 * milliseconds, which the default policy would not store (tests/cache-policy.test.ts tests that).
 */
export function module(opts: { cache?: boolean; rebuild?: 'missing' } = {}): string {
  const extra = [opts.cache === false ? 'cache: false,' : 'cache: true,', opts.rebuild ? `rebuild: '${opts.rebuild}',` : ''].join(' ');
  return `
const lr = process.env.LR ?? '0.1';
export default [
  {
    name: 'train',
    outputs: ['out/model.bin', 'out/bundle/'],
    params: { lr },
    log: 'logs/train.log',
    ${extra}
    run: 'echo train >> ran.txt; mkdir -p out/bundle; head -c 2000 /dev/urandom > out/model.bin; echo "lr ' + lr + '" > out/bundle/params.txt',
  },
  { name: 'eval', outputs: ['out/eval.txt'], inputs: ['out/model.bin'], cache: true, run: 'echo eval >> ran.txt; sha256sum out/model.bin > out/eval.txt' },
];
`;
}

export function ranCount(root: string, what: string): number {
  if (!fs.existsSync(path.join(root, 'ran.txt'))) return 0;
  return read(root, 'ran.txt').split('\n').filter((l) => l === what).length;
}

export const modelSha = (root: string) => sha(fs.readFileSync(path.join(root, 'out/model.bin')));
export const buildIdOf = (r: CliResult) => String(r.events.find((e) => e.type === 'build-start')!.buildId);
export const starts = (r: CliResult) => r.events.filter((e) => e.type === 'start').map((e) => String(e.target));

export function root(mod = module()): string {
  const r = tempRoot('hubmake-cache-');
  write(r, 'targets/index.ts', mod);
  return r;
}
