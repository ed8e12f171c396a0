// The Phase E evidence hub as one list of specs, from a Layout (config + toolchain). Pure: the
// targets module only loads the configuration and calls this.
import { checksums, copy, merge, pretty, verify } from './archive.ts';
import { phaseC, phaseD } from './datasets.ts';
import { evidence } from './evidence.ts';
import { mermaid, specName } from './graph.ts';
import {
  checksumsFile, cliLog, hubBundle, hubManifest, hubSkipSummary, names, prepLog, prettyManifest, recordPath,
  verificationFile, type Layout,
} from './layout.ts';
import type { HubSpec } from './spec.ts';
import { DEFAULT_REJECTED_VIEWS, EVIDENCE, gridsizeOf } from './study.ts';
import { summary } from './summary.ts';
import { settings, training } from './training.ts';

export function hubTargets(l: Layout): HubSpec[] {
  const { doses } = l.config;
  const specs: HubSpec[] = [];
  const add = (...s: Array<HubSpec | null>) => {
    for (const x of s) if (x) specs.push(x);
  };

  // E1: test evidence, the gate of training.
  const ev = evidence(l);
  add(...ev);
  const evidenceNames = ev.map(specName);

  // E2: datasets, per dose.
  const dC = doses.map((d) => phaseC(l, d));
  const dD = doses.map((d) => phaseD(l, d));
  add(...dC, ...dD);

  // E3: settings per view, training per (dose, view).
  add(...l.trained.map((v) => settings(l, v)));
  const jobs = doses.flatMap((dose) => l.trained.map((view) => ({ dose, view })));
  const trainSpecs = jobs.map((j) => training(l, j.dose, j.view, evidenceNames));
  add(...trainSpecs);

  // E4: archive and verify.
  const copies = jobs.map((j) => copy(l, j.dose, j.view, names.training(j.dose, j.view)));
  add(...copies, merge(l, jobs), pretty(l), checksums(l, jobs), verify(l, jobs));

  const core = [...specs];
  // E5: the summary sees every target above.
  const bundles = jobs.map((j) => ({ path: hubBundle(l, j.dose, j.view), dose: j.dose, view: j.view, gridsize: gridsizeOf(j.view) }));
  const artifacts = [
    ...ev.map((s) => ({ path: s.outputs![0]!, target: specName(s) })),
    ...dC.flatMap((s) => s.outputs!.map((o) => ({ path: o, target: specName(s) }))),
    ...dD.flatMap((s) => (s ? s.outputs!.map((o) => ({ path: o, target: specName(s) })) : [])),
    ...jobs.flatMap((j) => [
      { path: cliLog(l, j.dose, j.view), target: names.training(j.dose, j.view) },
      { path: hubBundle(l, j.dose, j.view), target: hubBundle(l, j.dose, j.view) },
    ]),
    { path: hubManifest(l), target: names.merge },
    { path: hubSkipSummary(l), target: names.merge },
    { path: prettyManifest(l), target: prettyManifest(l) },
    { path: checksumsFile(l), target: checksumsFile(l) },
    { path: verificationFile(l), target: names.verify },
  ];

  const aliases: HubSpec[] = [
    { name: 'phase-g-ready', deps: [names.verify], description: 'gate of Phase G: every hub bundle matches the training manifest' },
    { name: 'evidence', deps: evidenceNames, description: 'E1 test evidence logs (green/, collect/)' },
    { name: 'datasets', deps: [...dC, ...dD].filter((s): s is HubSpec => !!s).map(specName), description: 'E2 Phase C/D datasets (kept when present)' },
    { name: 'bundles', deps: copies.map(specName), description: 'E3+E4 every trained bundle, copied into the hub' },
    ...l.trained.map((v) => ({
      name: v,
      deps: jobs.filter((j) => j.view === v).map((j) => hubBundle(l, j.dose, j.view)),
      description: `the ${v} gs${gridsizeOf(v)} chain: datasets, evidence, training, hub copy`,
    })),
  ];
  const summarySpec = summary(
    l,
    {
      pending: l.pending.map((v) => ({
        view: v,
        reason:
          `not trained (${DEFAULT_REJECTED_VIEWS[v] ?? 'listed in overlap.skipViews'}); ` +
          `it becomes a training target once Phase D can produce it and it is removed from overlap.skipViews`,
      })),
      evidence: ev.map((s, i) => ({ target: specName(s), title: EVIDENCE[i]!.title, log: s.outputs![0]! })),
      datasets: [
        ...doses.map((d) => ({ target: names.phaseC(d), phase: 'C' as const, dose: d, log: prepLog(l, 'c', d) })),
        ...(dD.some((s) => s) ? doses.map((d) => ({ target: names.phaseD(d), phase: 'D' as const, dose: d, log: prepLog(l, 'd', d) })) : []),
      ],
      jobs: jobs.map((j) => ({
        target: names.training(j.dose, j.view),
        dose: j.dose,
        view: j.view,
        gridsize: gridsizeOf(j.view),
        record: recordPath(l, j.dose, j.view),
        bundle: hubBundle(l, j.dose, j.view),
        log: cliLog(l, j.dose, j.view),
      })),
      verify: names.verify,
      artifacts,
      // The summary reads every target; drawn as the hub's last step rather than with ~20 edges.
      mermaid: mermaid(
        [
          ...core,
          { name: 'summary', deps: [names.verify, names.merge], outputs: ['summary.md'], run: 'summary' },
          ...aliases,
          { name: 'hub', deps: ['summary', 'phase-g-ready'] },
        ],
        l.hub,
      ),
    },
    bundles,
    core.map(specName),
    // What the summary reads, so that it is rewritten exactly when one of them changes (deps
    // alone do not enter a fingerprint). The prep/ glob catches a regeneration's new log.
    [
      ...ev.map((s) => s.outputs![0]!),
      ...jobs.flatMap((j) => [recordPath(l, j.dose, j.view), cliLog(l, j.dose, j.view)]),
      hubManifest(l),
      hubSkipSummary(l),
      ...bundles.map((b) => b.path),
      `${l.hub}/prep/*.log`,
    ],
  );
  const hubAlias: HubSpec = { name: 'hub', deps: ['summary', 'phase-g-ready'], description: 'the whole Phase E evidence hub (summary + Phase G gate)' };
  return [...core, summarySpec, ...aliases, hubAlias];
}

