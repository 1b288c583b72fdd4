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

/**
 * Assigns the next pending nodes in rollout order until `cap` nodes are in flight: among the
 * positions `among` (in order) when given, else among every target but those in `skip`.
 */
export function dispatchWindow(
  ctx: PlanContext,
  cap: number,
  pool: { readonly among?: readonly number[]; readonly skip?: ReadonlySet<number> } = {},
): void {
  const room = cap - inFlight(ctx);
  if (room <= 0) return;
  const nodes = ctx.d.nodes;
  const picked: number[] = [];
  if (pool.among !== undefined) {
    for (const i of pool.among) {
      if (picked.length === room) break;
      if (nodes[i]?.state === "pending") picked.push(i);
    }
  } else {
    const index = ctx.index;
    for (let i = index.pendingFrom; i < nodes.length && picked.length < room; i++) {
      if (nodes[i]?.state === "pending" && !pool.skip?.has(i)) picked.push(i);
    }
  }
  assign(ctx, picked);
  const index = ctx.index;
  while (index.pendingFrom < nodes.length && nodes[index.pendingFrom]?.state !== "pending")
    index.pendingFrom++;
}

/** The rolling strategy. */
export const rolling: StrategyFn = (ctx) => {
  dispatchWindow(ctx, ctx.settings.waveSize);
};
