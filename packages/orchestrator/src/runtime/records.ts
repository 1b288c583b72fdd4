/**
 * Deployment records ⇄ what the store keeps: deterministic ids, the write (head fields, the
 * record, the summary the API reads), and the record read back.
 */
import type { DeploymentWrite, JsonObject, StoredDeployment } from "@edgeplane/store";
import { isActiveDeployment } from "../rollout/states.js";
import type { DeploymentRecord } from "../rollout/types.js";

/**
 * The id of the deployment of one job version: deterministic, so a retried or concurrent create
 * (a restarted leader, a second replica) names the same deployment and creates it once.
 * Example: job `job-01jd3k5m7n9q2r4s6t8v0w2x4y`, version 3 → `dep-01jd3k5m7n9q2r4s6t8v0w2x4y-3`.
 */
export function deploymentIdFor(jobId: string, version: number): string {
  return `dep-${jobId.startsWith("job-") ? jobId.slice(4) : jobId}-${version}`;
}

/** The API's view of a record: everything but the per-node table and the target list. */
export type DeploymentView = Omit<DeploymentRecord, "nodes" | "targets">;

/** The summary kept next to a record (what the API lists, gets and watches). */
export function summaryOf(d: DeploymentRecord): DeploymentView {
  const { nodes: _nodes, targets: _targets, ...rest } = d;
  return rest;
}

/** The store write of a record. */
export function writeOf(d: DeploymentRecord, now: number): DeploymentWrite {
  return {
    id: d.id,
    jobId: d.jobId,
    state: d.state,
    active: isActiveDeployment(d.state),
    createdAt: d.createdAt,
    now,
    record: d as unknown as JsonObject,
    summary: summaryOf(d) as unknown as JsonObject,
  };
}

/** A stored record as the planner's type (the leader wrote it; the revision is the store's). */
export function recordOf(stored: StoredDeployment): DeploymentRecord {
  return { ...(stored.record as unknown as DeploymentRecord), revision: stored.revision };
}
