/**
 * Canary: the canary set (wave 1) is dispatched at once; when every canary is done, the deployment
 * either continues as rolling over the other targets (`auto_promote`) or waits in
 * `awaiting_promotion` for a person (`promote` or `rollback`). A failed canary fails the whole
 * deployment (checked by the planner before any dispatch).
 *
 * Worked example: 25 targets, `canary_percent: 10` → 3 canaries; `max_parallel: 4`. At 0:00 the
 * 3 canaries are assigned; they are done by 1:30; without auto_promote the deployment waits; a
 * person promotes at 2:00 → the first 4 of the other 22 nodes are assigned at 2:00.
 */

import { formatDuration } from "@edgeplane/core";
import { emit, setState, targetPositions } from "../context.js";
import { plural } from "../plural.js";
import { dispatchWindow, type StrategyFn } from "./rolling.js";

/** The canary strategy. */
export const canary: StrategyFn = (ctx) => {
  const { d, settings, index } = ctx;
  const at = targetPositions(d.targets);
  const canaries = d.canaries.map((id) => at.get(id) ?? -1).filter((i) => i >= 0);
  const skip = new Set(canaries);
  if (!d.promoted && d.canaries.length > 0) {
    dispatchWindow(ctx, d.canaries.length, { among: canaries });
    const done = canaries.filter((i) => d.nodes[i]?.state === "done").length;
    if (done < d.canaries.length) return;
    // Every canary is done: the pending nodes are all among the others.
    const remaining = index.count.pending;
    const healthy = settings.runOnce ? "finished" : `healthy for ${formatDuration(settings.minHealthyMs)}`;
    const waves = Math.ceil(remaining / Math.max(1, settings.waveSize));
    if (!settings.autoPromote) {
      setState(ctx, "awaiting_promotion");
      emit(
        ctx,
        "awaiting_promotion",
        `all ${plural(d.canaries.length, "canary", "canaries")} done (${healthy}); promote to continue with ${plural(remaining, "node")} in ${plural(waves, "wave")} of up to ${settings.waveSize}, or roll back`,
        d.canaries,
        { canaries: String(d.canaries.length), remaining: String(remaining) },
      );
      return;
    }
    d.promoted = true;
    emit(
      ctx,
      "promoted",
      `auto_promote: all ${plural(d.canaries.length, "canary", "canaries")} done (${healthy}); continuing with ${plural(remaining, "node")} in ${plural(waves, "wave")} of up to ${settings.waveSize}`,
      d.canaries,
      { by: "auto_promote" },
    );
  }
  dispatchWindow(ctx, settings.waveSize, { skip });
};
