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
import { DEFAULT_REJECTED_VIEWS, EVIDENCE, gridsizeOf, type View } from './study.ts';
import { summary } from './summary.ts';
import { settings, training } from './training.ts';

type Job = { dose: number; view: View };

/** The hub's working targets, step by step (everything but the summary and the aliases). */
interface Steps {
  evidence: HubSpec[];
  phaseC: HubSpec[];
  phaseD: HubSpec[];
  jobs: Job[];
  copies: HubSpec[];
  all: HubSpec[];
}

function steps(l: Layout): Steps {
  const { doses } = l.config;
  // E1: test evidence, the gate of training.
  const ev = evidence(l);
  // E2: datasets, per dose (no Phase D target when no trained view needs it).
  const dC = doses.map((d) => phaseC(l, d));
  const dD = doses.map((d) => phaseD(l, d)).filter((s): s is HubSpec => !!s);
  // E3: settings per view, training per (dose, view).
  const jobs = doses.flatMap((dose) => l.trained.map((view) => ({ dose, view })));
  const trainings = jobs.map((j) => training(l, j.dose, j.view, ev.map(specName)));
  // E4: archive and verify.
  const copies = jobs.map((j) => copy(l, j.dose, j.view, names.training(j.dose, j.view)));
  const all = [
    ...ev, ...dC, ...dD, ...l.trained.map((v) => settings(l, v)), ...trainings,
    ...copies, merge(l, jobs), pretty(l), checksums(l, jobs), verify(l, jobs),
  ];
  return { evidence: ev, phaseC: dC, phaseD: dD, jobs, copies, all };
}

/** Short names for people: --list, goals, the gate of Phase G. */
function aliases(l: Layout, s: Steps): HubSpec[] {
  return [
    { name: 'phase-g-ready', deps: [names.verify], description: 'gate of Phase G: every hub bundle matches the training manifest' },
    { name: 'evidence', deps: s.evidence.map(specName), description: 'E1 test evidence logs (green/, collect/)' },
    { name: 'datasets', deps: [...s.phaseC, ...s.phaseD].map(specName), description: 'E2 Phase C/D datasets (kept when present)' },
    { name: 'bundles', deps: s.copies.map(specName), description: 'E3+E4 every trained bundle, copied into the hub' },
    ...l.trained.map((v) => ({
      name: v,
      deps: s.jobs.filter((j) => j.view === v).map((j) => hubBundle(l, j.dose, j.view)),
      description: `the ${v} gs${gridsizeOf(v)} chain: datasets, evidence, training, hub copy`,
    })),
  ];
}

/** E5: the summary, which sees every working target. */
function summaryOf(l: Layout, s: Steps, aliasSpecs: HubSpec[]): HubSpec {
  const bundles = s.jobs.map((j) => ({ path: hubBundle(l, j.dose, j.view), dose: j.dose, view: j.view, gridsize: gridsizeOf(j.view) }));
  const outputsOf = (specs: HubSpec[]) => specs.flatMap((x) => x.outputs!.map((o) => ({ path: o, target: specName(x) })));
  const artifacts = [
    ...outputsOf([...s.evidence, ...s.phaseC, ...s.phaseD]),
    ...s.jobs.flatMap((j) => [
      { path: cliLog(l, j.dose, j.view), target: names.training(j.dose, j.view) },
      { path: hubBundle(l, j.dose, j.view), target: hubBundle(l, j.dose, j.view) },
    ]),
    { path: hubManifest(l), target: names.merge },
    { path: hubSkipSummary(l), target: names.merge },
    { path: prettyManifest(l), target: prettyManifest(l) },
    { path: checksumsFile(l), target: checksumsFile(l) },
    { path: verificationFile(l), target: names.verify },
  ];
  const { doses } = l.config;
  return summary(
    l,
    {
      pending: l.pending.map((v) => ({
        view: v,
        reason:
          `not trained (${DEFAULT_REJECTED_VIEWS[v] ?? 'listed in overlap.skipViews'}); ` +
          `it becomes a training target once Phase D can produce it and it is removed from overlap.skipViews`,
      })),
      evidence: s.evidence.map((x, i) => ({ target: specName(x), title: EVIDENCE[i]!.title, log: x.outputs![0]! })),
      datasets: [
        ...doses.map((d) => ({ target: names.phaseC(d), phase: 'C' as const, dose: d, log: prepLog(l, 'c', d) })),
        ...(s.phaseD.length ? doses.map((d) => ({ target: names.phaseD(d), phase: 'D' as const, dose: d, log: prepLog(l, 'd', d) })) : []),
      ],
      jobs: s.jobs.map((j) => ({
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
          ...s.all,
          { name: 'summary', deps: [names.verify, names.merge], outputs: ['summary.md'], run: 'summary' },
          ...aliasSpecs,
          { name: 'hub', deps: ['summary', 'phase-g-ready'] },
        ],
        l.hub,
      ),
    },
    bundles,
    s.all.map(specName),
    // What the summary reads, so that it is rewritten exactly when one of them changes (deps
    // alone do not enter a fingerprint). The prep/ glob catches a regeneration's new log.
    [
      ...s.evidence.map((x) => x.outputs![0]!),
      ...s.jobs.flatMap((j) => [recordPath(l, j.dose, j.view), cliLog(l, j.dose, j.view)]),
      hubManifest(l),
      hubSkipSummary(l),
      ...bundles.map((b) => b.path),
      `${l.hub}/prep/*.log`,
    ],
  );
}

export function hubTargets(l: Layout): HubSpec[] {
  const s = steps(l);
  const a = aliases(l, s);
  const hub: HubSpec = { name: 'hub', deps: ['summary', 'phase-g-ready'], description: 'the whole Phase E evidence hub (summary + Phase G gate)' };
  // `npx tsx build.ts` with no goal builds the alias `default`.
  const dflt: HubSpec = { name: 'default', deps: ['hub'], description: 'what `npx tsx build.ts` builds without a goal: the hub' };
  return [...s.all, summaryOf(l, s, a), ...a, hub, dflt];
}
