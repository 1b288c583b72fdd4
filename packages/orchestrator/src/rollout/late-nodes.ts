/**
 * Nodes that start matching a job's selector while it rolls out are not added to the running
 * deployment (its targets are frozen): they wait for it to end, then get the job's stable version
 * (the new version if the deployment succeeded; the version rolled back to otherwise).
 */
import { isTerminalDeployment } from "./states.js";
import type { DeploymentRecord } from "./types.js";

/** What to do with a node that newly matches a job's selector. */
export type LateNodeDecision =
  /** A deployment of the job is active: leave the node alone; decide again when it ends. */
  | { readonly kind: "wait"; readonly deploymentId: string }
  /** Assign this version (the job's stable version). */
  | { readonly kind: "assign"; readonly version: number }
  /** No version of the job was ever stable: nothing to run. */
  | { readonly kind: "none" };

/**
 * The decision for a newly matching node, given the job's active deployment (if any) and its
 * stable version (0 or undefined when none). The runtime re-asks when the deployment ends.
 */
export function lateNodeVersion(
  active: Pick<DeploymentRecord, "id" | "state"> | undefined,
  stableVersion: number | undefined,
): LateNodeDecision {
  if (active !== undefined && !isTerminalDeployment(active.state))
    return { kind: "wait", deploymentId: active.id };
  if (stableVersion !== undefined && stableVersion > 0) return { kind: "assign", version: stableVersion };
  return { kind: "none" };
}
