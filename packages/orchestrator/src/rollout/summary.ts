/**
 * What a deployment shows: counters, progress, the status message and next_steps, all derived
 * from the node table (so they can never disagree with it), and when to look again.
 */

import { failureBudget } from "./budget.js";
import { nodesIn, type PlanContext, waveCount } from "./context.js";
import { nextNodeWake } from "./nodes.js";
import type { DeploymentCounters, DeploymentRecord } from "./types.js";

/** Counters of a record (`unhealthy` comes from the latest evaluation): one walk of the table. */
export function countersOf(
  d: Pick<DeploymentRecord, "nodes" | "targets" | "canaries">,
  unhealthy = 0,
): DeploymentCounters {
  let updated = 0;
  let healthy = 0;
  let failed = 0;
  let currentWave = 0;
  for (const n of d.nodes) {
    if (n.assignedAt !== undefined) {
      updated++;
      currentWave = Math.max(currentWave, n.wave);
    }
    if (n.state === "done") healthy++;
    if (n.state === "failed") failed++;
  }
  return {
    targets: d.targets.length,
    waves: waveCount(d),
    currentWave,
    updated,
    healthy,
    unhealthy,
    failed,
    canaries: d.canaries.length,
  };
}

/** The same counters from a plan call's index (no walk of the table). */
export function countersOfIndex(ctx: PlanContext, unhealthy = 0): DeploymentCounters {
  const { d, index } = ctx;
  return {
    targets: d.targets.length,
    waves: index.waves,
    currentWave: index.currentWave,
    updated: index.updated,
    healthy: index.count.done,
    unhealthy,
    failed: index.count.failed,
    canaries: d.canaries.length,
  };
}

/** Done nodes over targets; 1 for a deployment with no targets. */
export function progressOf(c: DeploymentCounters): number {
  return c.targets === 0 ? 1 : c.healthy / c.targets;
}

/** The status line of an active deployment (terminal ones keep the message set when they ended). */
export function activeMessage(ctx: PlanContext, c: DeploymentCounters): string {
  const { d, settings } = ctx;
  const budget = failureBudget(c.targets, d.rollout);
  const tally = `${c.healthy}/${c.targets} done, ${c.failed} failed (budget ${budget})`;
  const updating = ctx.index.count.assigned;
  switch (d.state) {
    case "pending":
      return `created: version ${d.jobVersion} to ${c.targets} nodes (${d.strategy})`;
    case "running":
    case "paused": {
      const phase =
        d.strategy === "canary" && !d.promoted && d.canaries.length > 0
          ? `canary wave: ${nodesIn(ctx, "done", d.canaries).length}/${d.canaries.length} canaries done`
          : `wave ${c.currentWave} of ${c.waves}, ${updating} updating (wave size ${settings.waveSize})`;
      return `${d.state === "paused" ? "paused by a user; " : ""}${phase}; ${tally}`;
    }
    case "awaiting_promotion":
      return `awaiting promotion: all ${d.canaries.length} canaries done; ${tally}`;
    default:
      return d.message;
  }
}

/** The earliest future instant at which some node can change on its own, as a delay from now. */
export function requeueAfter(ctx: PlanContext): number | undefined {
  const { d, settings, now } = ctx;
  if (d.state !== "running" && d.state !== "paused" && d.state !== "awaiting_promotion") return undefined;
  let next: number | undefined;
  // Only assigned nodes have a clock (nextNodeWake).
  for (const i of ctx.index.assigned) {
    const node = d.nodes[i];
    if (node === undefined) continue;
    const t = nextNodeWake(node, settings, now);
    if (t !== undefined && (next === undefined || t < next)) next = t;
  }
  return next === undefined ? undefined : next - now;
}
