// The spec type the rules produce: the engine's public TargetSpec (rules know the engine's
// declaration API, never its internals).
export type { TargetSpec as HubSpec, ActionContext, TargetOutcome } from '../engine/types.ts';
