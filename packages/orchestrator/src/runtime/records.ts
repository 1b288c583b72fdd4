/**
 * Deployment records ⇄ what the store keeps: deterministic ids, the write, and the record read
 * back.
 *
 * Stored layout: the record's head (everything but the node table and the targets; it is also
 * what the API shows) is written whole on every sync; the per-node table is written entry by
 * entry, only the entries that changed since the record the write starts from; the target list
 * (frozen) is written once, at creation. A sync of a 10,000-node rolling deployment so sends the
 * few hundred nodes it moved, not the 1 MB table.
 *
 * Records written before that layout (the table and targets inside the record) are still read;
 * they keep that layout until they end (a write of one sends the whole record, as before), so a
 * rollout an older control plane started finishes the way it started.
 */
import { EdgeplaneError } from "@edgeplane/core";
import type { DeploymentWrite, JsonObject, StoredDeployment } from "@edgeplane/store";
import { isActiveDeployment } from "../rollout/states.js";
import type { DeploymentRecord, NodeRollout } from "../rollout/types.js";

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

/** Records read in the layout from before the node table was split out (see the module header). */
const legacyRecords = new WeakSet<DeploymentRecord>();

function head(d: DeploymentRecord, now: number) {
  return {
    id: d.id,
    jobId: d.jobId,
    state: d.state,
    active: isActiveDeployment(d.state),
    createdAt: d.createdAt,
    now,
  };
}

/** The table entries of the nodes at `positions`. */
function entries(d: DeploymentRecord, positions: Iterable<number>): Array<readonly [string, JsonObject]> {
  const out: Array<readonly [string, JsonObject]> = [];
  for (const i of positions) out.push([d.targets[i] as string, d.nodes[i] as unknown as JsonObject]);
  return out;
}

/** The store write creating `d`: its head, every node entry, and the targets. */
export function createWriteOf(d: DeploymentRecord, now: number): DeploymentWrite {
  return {
    ...head(d, now),
    record: summaryOf(d) as unknown as JsonObject,
    nodes: entries(d, d.nodes.keys()),
    targets: d.targets,
  };
}

/**
 * The store write updating `before` to `next`: the head, and the node entries that changed (an
 * identity check per entry: the planner replaces the object of a node it changes).
 */
export function updateWriteOf(
  before: DeploymentRecord,
  next: DeploymentRecord,
  now: number,
): DeploymentWrite {
  if (legacyRecords.has(before)) {
    legacyRecords.add(next);
    return {
      ...head(next, now),
      record: {
        ...next,
        nodes: Object.fromEntries(entries(next, next.nodes.keys())),
      } as unknown as JsonObject,
      summary: summaryOf(next) as unknown as JsonObject,
    };
  }
  const changed: number[] = [];
  if (before.nodes !== next.nodes) {
    for (let i = 0; i < next.nodes.length; i++) if (before.nodes[i] !== next.nodes[i]) changed.push(i);
  }
  return {
    ...head(next, now),
    record: summaryOf(next) as unknown as JsonObject,
    nodes: entries(next, changed),
  };
}

/** Marks `next` as kept in the same layout as `before` (a write derived from it). */
export function sameLayout(before: DeploymentRecord, next: DeploymentRecord): DeploymentRecord {
  if (legacyRecords.has(before)) legacyRecords.add(next);
  return next;
}

function corrupt(id: string, why: string): EdgeplaneError {
  return new EdgeplaneError("internal", `stored deployment ${id} cannot be read: ${why}`);
}

/** A stored record as the planner's type (the leader wrote it; the revision is the store's). */
export function recordOf(stored: StoredDeployment): DeploymentRecord {
  const rec = stored.record as unknown as Omit<DeploymentRecord, "nodes" | "targets"> & {
    nodes?: Record<string, NodeRollout>;
    targets?: readonly string[];
  };
  if (stored.targets === undefined) {
    // The earlier layout: the table (keyed by node id) and the targets inside the record.
    const targets = rec.targets ?? [];
    const table = rec.nodes ?? {};
    const nodes = targets.map((id) => {
      const n = table[id];
      if (n === undefined) throw corrupt(stored.id, `no entry for target ${id}`);
      return n;
    });
    const record: DeploymentRecord = { ...rec, targets, nodes, revision: stored.revision };
    legacyRecords.add(record);
    return record;
  }
  const table = stored.nodes as unknown as Record<string, NodeRollout>;
  const nodes = stored.targets.map((id) => {
    const n = table[id];
    if (n === undefined) throw corrupt(stored.id, `no entry for target ${id}`);
    return n;
  });
  const { nodes: _n, targets: _t, ...restOfHead } = rec;
  return { ...restOfHead, targets: stored.targets, nodes, revision: stored.revision };
}

/** The record a create answered: the draft as written, or the deployment that existed already. */
export function createdRecord(
  draft: DeploymentRecord,
  created: { readonly created: boolean; readonly deployment: StoredDeployment },
): DeploymentRecord {
  return created.created ? { ...draft, revision: created.deployment.revision } : recordOf(created.deployment);
}
