// A small argparse-like parser shared by the CLIs. Unknown flags, missing values and bad
// numbers are usage errors (exit 2) whose message names the flag, like argparse.

export class UsageError extends Error {
  override name = 'UsageError';
}

export type FlagKind = 'string' | 'number' | 'int' | 'bool' | 'list';

export interface FlagSpec {
  kind: FlagKind;
  /** 'list' flags take one or more values (nargs='+'); 'repeat' collects repeated flags. */
  repeat?: boolean;
  required?: boolean;
  choices?: readonly string[];
  help: string;
  metavar?: string;
  /** element type of a 'list' flag */
  items?: 'number' | 'string';
}

export type Parsed = Record<string, string | number | boolean | string[] | number[] | undefined>;

export function usageText(prog: string, specs: Record<string, FlagSpec>): string {
  const lines = [`usage: ${prog} [options]`, '', 'options:'];
  for (const [name, s] of Object.entries(specs)) {
    const mv = s.kind === 'bool' ? '' : ` ${s.metavar ?? (s.choices ? `{${s.choices.join(',')}}` : name.toUpperCase().replace(/-/g, '_'))}`;
    const tail = s.kind === 'list' ? ' ...' : '';
    lines.push(`  --${name}${mv}${tail}`.padEnd(44) + ` ${s.help}${s.required ? ' (required)' : ''}`);
  }
  return lines.join('\n');
}

function convert(name: string, s: FlagSpec, raw: string): string | number {
  if (s.choices && !s.choices.includes(raw)) {
    throw new UsageError(`argument --${name}: invalid choice: '${raw}' (choose from ${s.choices.map((c) => `'${c}'`).join(', ')})`);
  }
  if (s.kind === 'string' || (s.kind === 'list' && s.items !== 'number')) return raw;
  const v = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(v)) throw new UsageError(`argument --${name}: invalid number: '${raw}'`);
  if (s.kind === 'int' && !Number.isInteger(v)) throw new UsageError(`argument --${name}: invalid int value: '${raw}'`);
  return v;
}

/** Parse argv (without node and script). Returns values keyed by flag name. */
export function parseArgs(argv: string[], specs: Record<string, FlagSpec>): Parsed {
  const out: Parsed = {};
  for (let i = 0; i < argv.length; i++) {
    let tok = argv[i]!;
    if (!tok.startsWith('--')) throw new UsageError(`unrecognized argument: '${tok}'`);
    let inline: string | undefined;
    const eq = tok.indexOf('=');
    if (eq > 0) {
      inline = tok.slice(eq + 1);
      tok = tok.slice(0, eq);
    }
    const name = tok.slice(2);
    const s = specs[name];
    if (!s) throw new UsageError(`unrecognized argument: '${tok}'`);
    if (s.kind === 'bool') {
      if (inline !== undefined) throw new UsageError(`argument --${name}: ignored explicit argument '${inline}'`);
      out[name] = true;
      continue;
    }
    if (s.kind === 'list') {
      const vals: string[] = inline !== undefined ? [inline] : [];
      while (i + 1 < argv.length && !argv[i + 1]!.startsWith('--')) vals.push(argv[++i]!);
      if (vals.length === 0) throw new UsageError(`argument --${name}: expected at least one argument`);
      const conv = vals.map((v) => convert(name, s, v));
      out[name] = conv as string[] | number[];
      continue;
    }
    const raw = inline ?? argv[++i];
    if (raw === undefined || (inline === undefined && raw.startsWith('--'))) throw new UsageError(`argument --${name}: expected one argument`);
    const v = convert(name, s, raw);
    if (s.repeat) {
      const prev = (out[name] as Array<string | number> | undefined) ?? [];
      out[name] = [...prev, v] as string[] | number[];
    } else {
      if (out[name] !== undefined) throw new UsageError(`argument --${name}: given more than once`);
      out[name] = v;
    }
  }
  for (const [name, s] of Object.entries(specs)) {
    if (s.required && out[name] === undefined) throw new UsageError(`the following arguments are required: --${name}`);
  }
  return out;
}
