/**
 * Immediate: every target at once, in one wave. Health checks are ignored: a node is done as soon
 * as it runs the new version (run-once: finished). The failure budget still applies (a node whose
 * execution fails, or that is lost, counts), and so does `deadline` when one is set.
 */
import { dispatchWindow, type StrategyFn } from "./rolling.js";

/** The immediate strategy. */
export const immediate: StrategyFn = (ctx) => {
  dispatchWindow(ctx, ctx.d.targets.length);
};
