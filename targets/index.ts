// The Phase E evidence hub of the PtychoPINN fly64 study, read from hub.config.json at the root
// (overrides: HUB_TIMESTAMP, HUBMAKE_SET, HUBMAKE_CONFIG; see docs/hub.md). All study knowledge
// is in rules/; this module only loads the configuration and says which toolchain it uses.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../rules/config.ts';
import { hubTargets } from '../rules/hub.ts';
import { makeLayout } from '../rules/layout.ts';
import type { HubSpec } from '../rules/spec.ts';

// The root is the directory above targets/ (the engine does not chdir for -C, and passes no
// root to the targets function).
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));

export default function hub(): HubSpec[] {
  const { config } = loadConfig(root);
  const layout = makeLayout(config, root);
  // Every build says which toolchain produced its artifacts (the summary records it too).
  process.stderr.write(`toolchain: ${layout.tool.banner}\n`);
  return hubTargets(layout);
}
