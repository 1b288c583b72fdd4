/**
 * Rolling: a sliding window over the targets in rollout order. At any instant the nodes updating
 * (assigned and not yet done or failed, undelivered ones included) never exceed the wave size; a
 * node of the next wave starts as soon as one in flight is done or failed.
 *
 * Worked example: 10 targets, `max_parallel: 3` → wave size 3, 4 waves (3, 3, 3, 1). At 0:00
 * nodes 1-3 are assigned; node 2 is done at 0:50 → node 4 is assigned at 0:50; nodes 1 and 3 are
 * done at 1:10 → nodes 5 and 6 are assigned; and so on until node 10.
 */
import { assign, inFlight, type PlanContext } from "../context.js";

/** A strategy: decides what to dispatch (and, for canary, when to promote) in a running deployment. */
export type StrategyFn = (ctx: PlanContext) => void;

/** Assigns the next pending nodes of `pool` (in order) until `cap` nodes are in flight. */
export function dispatchWindow(ctx: PlanContext, pool: readonly string[], cap: number): void {
  let room = cap - inFlight(ctx);
  if (room <= 0) return;
  const picked: string[] = [];
  for (const id of pool) {
    if (room === 0) break;
    if (ctx.d.nodes[id]?.state === "pending") {
      picked.push(id);
      room--;
    }
  }
  assign(ctx, picked);
}

/** The rolling strategy. */
export const rolling: StrategyFn = (ctx) => {
  dispatchWindow(ctx, ctx.d.targets, ctx.settings.waveSize);
};
