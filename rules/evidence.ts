// Step E1: one target per pytest selector; its log in the hub is its output. The inputs are the
// test file and the code under test, so the evidence reruns when that code changes and only then.
// A red selector fails its target (the log is kept) and blocks training, as in the plan.
import type { Layout } from './layout.ts';
import type { HubSpec } from './spec.ts';
import { EVIDENCE } from './study.ts';

export function evidence(l: Layout): HubSpec[] {
  return EVIDENCE.map((e) => {
    const log = `${l.hub}/${e.log}`;
    return {
      name: log,
      description: `E1 test evidence: ${e.title}`,
      inputs: l.tool.evidenceInputs,
      outputs: [log],
      log,
      run: l.tool.evidence(e.id),
    };
  });
}
