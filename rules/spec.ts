// The spec type the rules produce: the engine's TargetSpec, plus `pool` until engine/types.ts
// declares it (targets naming the same pool never run at the same time).
import type { TargetSpec } from '../engine/types.ts';

export type HubSpec = TargetSpec & { pool?: string };
export type { ActionContext, TargetOutcome } from '../engine/types.ts';
