// The Phase E evidence hub of the PtychoPINN fly64 study, read from hub.config.json at the root.
// Overrides without editing the file: `-D key=value` on the command line, or HUB_TIMESTAMP /
// HUBMAKE_SET / HUBMAKE_CONFIG in the environment (see docs/hub.md). All study knowledge is in
// rules/; this module only loads the configuration and says which toolchain it uses.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TargetsContext } from '../engine/types.ts';
import { loadConfig } from '../rules/config.ts';
import { hubTargets } from '../rules/hub.ts';
import { makeLayout } from '../rules/layout.ts';
import type { HubSpec } from '../rules/spec.ts';

export default function hub(ctx?: TargetsContext): HubSpec[] {
  // The engine passes the -C root; the directory above targets/ is the fallback.
  const root = ctx?.root ?? path.dirname(path.dirname(fileURLToPath(import.meta.url)));
  const { config } = loadConfig(root, process.env, ctx?.defines ?? {});
  const layout = makeLayout(config, root);
  // Every build says which toolchain produced its artifacts (the summary records it too).
  process.stderr.write(`toolchain: ${layout.tool.banner}\n`);
  return hubTargets(layout);
}
