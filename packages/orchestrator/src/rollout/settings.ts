/**
 * The numbers a deployment runs by, derived from its frozen `rollout` section and target count.
 * Derived on every sync (never stored twice), so they cannot drift from the record.
 */
import { parseDuration, type Strategy } from "@edgeplane/core";
import type { DeploymentRecord } from "./types.js";
import { rolloutWaveSize } from "./waves.js";

/** The effective rollout parameters of one deployment, durations in ms. */
export interface RolloutSettings {
  readonly strategy: Strategy;
  /** Run-once job (query, update, config): a node is done when its execution finished OK. */
  readonly runOnce: boolean;
  /** `immediate`: health checks are ignored (a node is done once it runs the version). */
  readonly ignoreHealth: boolean;
  /** Nodes updating at once (rolling phase); every target for immediate. */
  readonly waveSize: number;
  /** The canary set's size (0 unless canary). */
  readonly canaryCount: number;
  readonly autoPromote: boolean;
  /** `health_check.deadline` in ms; undefined = no deadline (only possible for immediate). */
  readonly deadlineMs: number | undefined;
  /** `health_check.min_healthy_time` in ms. */
  readonly minHealthyMs: number;
  /** `health_check.max_error_rate` (0..1). */
  readonly maxErrorRate: number;
  readonly maxFailedNodes: number;
  readonly maxFailedNodesPercent: number;
  /** Roll back on failure (`!no_auto_rollback`, and never for a rollback deployment). */
  readonly autoRollback: boolean;
}

/** Job types whose executions run once (everything but pipelines). */
export function isRunOnce(jobType: DeploymentRecord["jobType"]): boolean {
  return jobType !== "pipeline";
}

/** The settings of a deployment. */
export function rolloutSettings(
  d: Pick<DeploymentRecord, "rollout" | "strategy" | "jobType" | "targets" | "canaries" | "isRollback">,
): RolloutSettings {
  const r = d.rollout;
  const hc = r.health_check;
  const deadline = hc.deadline === undefined ? undefined : parseDuration(hc.deadline);
  return {
    strategy: d.strategy,
    runOnce: isRunOnce(d.jobType),
    ignoreHealth: d.strategy === "immediate",
    waveSize: rolloutWaveSize({ ...r, strategy: d.strategy }, d.targets.length),
    canaryCount: d.canaries.length,
    autoPromote: r.auto_promote,
    deadlineMs: deadline !== undefined && deadline > 0 ? deadline : undefined,
    minHealthyMs: parseDuration(hc.min_healthy_time) ?? 0,
    maxErrorRate: hc.max_error_rate,
    maxFailedNodes: r.max_failed_nodes,
    maxFailedNodesPercent: r.max_failed_nodes_percent,
    autoRollback: !r.no_auto_rollback && !d.isRollback,
  };
}
