// hub.config.json: the one configuration file of the hub. parseConfig() is pure (text and
// overrides in, normalized config out); loadConfig() adds the file system and environment.
// Errors name the file and the key, and the engine turns a module load error into exit 2.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { arr, ConfigKeyError, int, nullable, num, obj, oneOf, record, str } from './config-schema.ts';
import { DEFAULT_REJECTED_VIEWS, VIEWS, type View } from './study.ts';

export const SIM_FAULTS = ['sha-mismatch', 'train-error'] as const;
export type SimFault = (typeof SIM_FAULTS)[number];

/** One view's training settings: `epochs`, `step_size`, `seed` go to the tool's settings JSON. */
export interface TrainingSettings {
  epochs: number;
  step_size?: number;
  seed?: number;
  /** Extra command-line words for this view's training call (PtychoPINN toolchain). */
  args?: string[];
}

export interface HubConfig {
  initiative: string;
  /** `attempt`: the docs/fix_plan.md attempt number for the ledger line (optional). */
  hub: { timestamp: string; slug: string; attempt?: number };
  doses: number[];
  views: View[];
  /** `auto`: PtychoPINN when `ptychopinn.root` is set, else the reference simulator. */
  toolchain: 'auto' | 'sim' | 'ptychopinn';
  roots: { phaseC: string; phaseD: string; phaseE: string };
  overlap: { skipViews: View[] };
  sim: {
    seed: number;
    patchSize: number;
    positions: number;
    /** null: the simulator picks the smallest object that holds the scan. */
    objectSize: number | null;
    faults: Partial<Record<View, SimFault>>;
  };
  ptychopinn: {
    root: string | null;
    python: string;
    baseNpz: string | null;
    backend: 'tensorflow' | 'pytorch' | null;
    executionFlags: string[];
    /** Flag that carries `epochs` to the real CLI (e.g. `--max_epochs`); null: not passed. */
    epochsFlag: string | null;
    /** Files of the checkout whose change reruns the test evidence (checkout-relative globs). */
    evidenceInputs: string[];
  };
  training: Partial<Record<View, TrainingSettings>>;
  /** Training jobs on a Slurm cluster instead of locally (off by default). Null fields are left to Slurm. */
  slurm: {
    enabled: boolean;
    partition: string | null;
    time: string | null;
    cpus: number | null;
    mem: string | null;
    gres: string | null;
    account: string | null;
    args: string[];
  };
}

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{6}Z$/;
const NAME = /^[A-Za-z0-9_.-]+$/;
const REL_PATH = /^(?!\/)(?!.*(^|\/)\.\.(\/|$))[^\0]+$/;

const schema = obj(
  {
    initiative: str(NAME, 'a plain name'),
    hub: obj(
      { timestamp: str(TIMESTAMP, 'a UTC timestamp like 2025-11-06T090500Z'), slug: str(NAME, 'a plain name'), attempt: int(1) },
      ['attempt'],
    ),
    doses: arr(num(0), { nonEmpty: true, unique: true }),
    views: arr(oneOf(VIEWS), { nonEmpty: true, unique: true }),
    toolchain: oneOf(['auto', 'sim', 'ptychopinn']),
    roots: obj({
      phaseC: str(REL_PATH, 'a relative path inside the root'),
      phaseD: str(REL_PATH, 'a relative path inside the root'),
      phaseE: str(REL_PATH, 'a relative path inside the root'),
    }),
    overlap: obj({ skipViews: arr(oneOf(VIEWS), { unique: true }) }, ['skipViews']),
    sim: obj(
      {
        seed: int(0),
        patchSize: int(8),
        positions: int(4),
        objectSize: nullable(int(8)),
        faults: record(VIEWS, oneOf(SIM_FAULTS)),
      },
      ['seed', 'patchSize', 'positions', 'objectSize', 'faults'],
    ),
    ptychopinn: obj(
      {
        root: nullable(str()),
        python: str(),
        baseNpz: nullable(str()),
        backend: nullable(oneOf(['tensorflow', 'pytorch'])),
        executionFlags: arr(str()),
        epochsFlag: nullable(str(/^--?[A-Za-z0-9_-]+$/, 'a flag like --max_epochs')),
        evidenceInputs: arr(str()),
      },
      ['root', 'python', 'baseNpz', 'backend', 'executionFlags', 'epochsFlag', 'evidenceInputs'],
    ),
    training: record(
      VIEWS,
      // epochs is only type-checked: the training tool owns its range (epochs 0 is a training
      // error the hub must report, not a configuration error).
      obj({ epochs: int(), step_size: num(), seed: int(), args: arr(str()) }, ['step_size', 'seed', 'args']),
    ),
    slurm: obj(
      {
        enabled: (v, key) => {
          if (typeof v !== 'boolean') throw new ConfigKeyError(key, `expected true or false, got ${JSON.stringify(v)}`);
        },
        partition: nullable(str()),
        time: nullable(str()),
        cpus: nullable(int(1)),
        mem: nullable(str()),
        gres: nullable(str()),
        account: nullable(str()),
        args: arr(str()),
      },
      ['enabled', 'partition', 'time', 'cpus', 'mem', 'gres', 'account', 'args'],
    ),
  },
  ['toolchain', 'overlap', 'sim', 'ptychopinn', 'slurm'],
);

/** Defaults for the optional sections (sizes small enough for a laptop run of the simulator). */
const DEFAULTS = {
  toolchain: 'auto',
  overlap: { skipViews: Object.keys(DEFAULT_REJECTED_VIEWS) },
  sim: { seed: 42, patchSize: 32, positions: 160, objectSize: null, faults: {} },
  ptychopinn: {
    root: null,
    python: 'python',
    baseNpz: null,
    backend: null,
    executionFlags: ['--accelerator', 'cpu', '--deterministic', '--num-workers', '0'],
    epochsFlag: null,
    evidenceInputs: [
      'tests/study/test_dose_overlap_training.py',
      'studies/fly64_dose_overlap/**/*.py',
      'ptycho_torch/model_manager.py',
    ],
  },
  slurm: { enabled: false, partition: null, time: null, cpus: null, mem: null, gres: null, account: null, args: [] },
} as const;

/** An override `key.path=value`; value is JSON when it parses, else a plain string. */
export interface Override {
  key: string;
  value: unknown;
  source: string;
}

/** JSON when it parses (numbers, objects, null), else the plain string (timestamps, paths). */
function overrideValue(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return raw;
  }
}

/**
 * Overrides from the environment, so a new hub needs no file edit:
 * `HUB_TIMESTAMP=2025-11-07T000000Z` (shortcut) and
 * `HUBMAKE_SET='hub.timestamp=2025-11-07T000000Z; sim.faults={"dense":"sha-mismatch"}'`
 * (assignments separated by `;` or newlines).
 */
export function overridesFromEnv(env: NodeJS.ProcessEnv): Override[] {
  const out: Override[] = [];
  if (env.HUB_TIMESTAMP) out.push({ key: 'hub.timestamp', value: env.HUB_TIMESTAMP, source: 'HUB_TIMESTAMP' });
  for (const part of (env.HUBMAKE_SET ?? '').split(/[;\n]/)) {
    const text = part.trim();
    if (!text) continue;
    const eq = text.indexOf('=');
    if (eq <= 0) throw new Error(`HUBMAKE_SET: expected key=value, got ${JSON.stringify(text)}`);
    out.push({ key: text.slice(0, eq).trim(), value: overrideValue(text.slice(eq + 1).trim()), source: 'HUBMAKE_SET' });
  }
  return out;
}

/** Overrides from the command line: `npx tsx build.ts hub -D hub.timestamp=2025-11-07T000000Z`. */
export function overridesFromDefines(defines: Record<string, string>): Override[] {
  return Object.entries(defines).map(([key, raw]) => ({ key, value: overrideValue(raw), source: '-D' }));
}

function applyOverride(target: Record<string, unknown>, o: Override): void {
  const parts = o.key.split('.');
  let node: Record<string, unknown> = target;
  for (const p of parts.slice(0, -1)) {
    const next = node[p];
    if (next === undefined) node[p] = {};
    else if (typeof next !== 'object' || next === null || Array.isArray(next))
      throw new Error(`${o.source}: ${o.key}: ${p} is not an object`);
    node = node[p] as Record<string, unknown>;
  }
  node[parts[parts.length - 1]!] = o.value;
}

/** Parse, validate, apply overrides, validate again, fill defaults. Pure. */
export function parseConfig(text: string, file: string, overrides: Override[] = []): HubConfig {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${file}: invalid JSON: ${(e as Error).message}`);
  }
  const check = (value: unknown, where: string) => {
    try {
      schema(value, '');
    } catch (e) {
      if (e instanceof ConfigKeyError) throw new Error(`${where}: key ${e.key}: ${e.problem}`);
      throw e;
    }
  };
  check(raw, file);
  if (overrides.length) {
    const copy = structuredClone(raw) as Record<string, unknown>;
    for (const o of overrides) applyOverride(copy, o);
    check(copy, `${file} with ${[...new Set(overrides.map((o) => o.source))].join(', ')}`);
    raw = copy;
  }
  const c = raw as Partial<HubConfig> & Pick<HubConfig, 'initiative' | 'hub' | 'doses' | 'views' | 'roots' | 'training'>;
  const config: HubConfig = {
    initiative: c.initiative,
    hub: c.hub,
    doses: c.doses,
    views: c.views,
    toolchain: c.toolchain ?? DEFAULTS.toolchain,
    roots: c.roots,
    overlap: { ...DEFAULTS.overlap, ...c.overlap } as HubConfig['overlap'],
    sim: { ...DEFAULTS.sim, ...c.sim } as HubConfig['sim'],
    ptychopinn: { ...DEFAULTS.ptychopinn, ...c.ptychopinn } as HubConfig['ptychopinn'],
    training: c.training,
    slurm: { ...DEFAULTS.slurm, ...c.slurm } as HubConfig['slurm'],
  };
  // Cross-field rules: each trained view needs its settings.
  for (const view of config.views) {
    if (!config.training[view] && !config.overlap.skipViews.includes(view))
      throw new Error(`${file}: key training.${view}: missing (view ${view} is configured in views)`);
  }
  if (config.views.every((v) => config.overlap.skipViews.includes(v)))
    throw new Error(`${file}: key views: no view left to train (all are in overlap.skipViews)`);
  if (config.toolchain === 'ptychopinn' && !config.ptychopinn.root)
    throw new Error(`${file}: key ptychopinn.root: missing (toolchain is ptychopinn)`);
  return config;
}

/** The config file (HUBMAKE_CONFIG if set, relative to the root, else hub.config.json) with its overrides. */
export function loadConfig(
  root: string,
  env: NodeJS.ProcessEnv = process.env,
  defines: Record<string, string> = {},
): { config: HubConfig; file: string } {
  const file = env.HUBMAKE_CONFIG || 'hub.config.json';
  let text: string;
  try {
    text = readFileSync(path.resolve(root, file), 'utf8');
  } catch (e) {
    throw new Error(`${file}: cannot read: ${(e as Error).message}`);
  }
  // Environment first, command line last: the most explicit setting wins.
  return { config: parseConfig(text, file, [...overridesFromEnv(env), ...overridesFromDefines(defines)]), file };
}

/** Which toolchain a config selects. */
export function toolchainOf(config: HubConfig): 'sim' | 'ptychopinn' {
  if (config.toolchain === 'auto') return config.ptychopinn.root ? 'ptychopinn' : 'sim';
  return config.toolchain;
}

/** `plans/active/<initiative>/reports/<timestamp>/<slug>` */
export function hubDir(config: HubConfig): string {
  return `plans/active/${config.initiative}/reports/${config.hub.timestamp}/${config.hub.slug}`;
}
