/**
 * Persistence of the node registry and of each node's desired state.
 *
 * - {@link NodeStore}: the registry's records. The registry keeps the live picture in memory and
 *   writes changed records in coalesced batches (one round trip per batch, never one write per
 *   heartbeat); it loads every record once at start.
 * - {@link DesiredStateStore}: per node, the assignment set the control plane wants it to run and
 *   a revision that bumps on every change. Writes are atomic per node, guarded by the expected
 *   revision, and the revision never goes down (there is no delete), so an agent that ignores
 *   revisions older than the one it applied never ignores a real change, across restarts too.
 *
 * Two implementations of each (memory and Redis) pass one conformance suite
 * (`conformance/node-store-suite.ts`). Times are milliseconds since the epoch.
 */
import type { EdgeplaneError } from "@edgeplane/core";
import type { JsonObject } from "../job-store.js";
import type { NodeStateType } from "./node-state.js";

/** Labels: key → value (validated by the registry with core's label rules). */
export type LabelMap = Readonly<Record<string, string>>;

/** A node as persisted. The effective labels are derived: `{...agentLabels, ...operatorLabels}`. */
export interface NodeRecord {
  readonly id: string;
  /** The agent's own labels, including discovered `edgeplane.io/` labels. */
  readonly agentLabels: LabelMap;
  /** Labels set by operators through the API (never `edgeplane.io/` keys). */
  readonly operatorLabels: LabelMap;
  readonly state: NodeStateType;
  /** Why the node is in its state ("missed 3 heartbeats", "drained by operator: ..."). */
  readonly message: string;
  /** Drained by an operator (persists until undrained, whatever the liveness). */
  readonly drained: boolean;
  /** The last heartbeat seen, persisted coarsely (the registry may hold a newer one in memory). */
  readonly lastHeartbeat: number;
  readonly agentVersion: string;
  /** Executors the agent enabled (pipeline, exec, config). */
  readonly executors: readonly string[];
  /** The agent process instance that registered last. */
  readonly instanceId: string;
  /** First registration. */
  readonly registeredAt: number;
  /** The desired-state revision the node last reported as applied. */
  readonly appliedRevision: number;
  readonly updatedAt: number;
}

/** The node registry's persistence. Every method rejects with an `EdgeplaneError`. */
export interface NodeStore {
  /** Every stored node (read once at start). Unreadable entries are skipped and reported to `onCorrupt`. */
  loadAll(): Promise<NodeRecord[]>;
  /** One node; undefined when unknown. */
  get(id: string): Promise<NodeRecord | undefined>;
  /**
   * Writes these records (insert or replace) as one batch: validated first (a bad record fails
   * the whole batch with `invalid_argument`, nothing written), then one atomic write.
   */
  saveMany(records: readonly NodeRecord[]): Promise<void>;
  /** Releases connections the store opened itself. */
  close(): Promise<void>;
}

/** Timeouts of an assignment, in seconds (0 = none). */
export interface AssignmentTimeouts {
  readonly executionTimeout: number;
  readonly queueTimeout: number;
  readonly totalTimeout: number;
}

/** What an assignment asks of the agent. */
export type AssignmentDesiredState = "running" | "stopped";

/** One job version assigned to one node (the `Assignment` message of agent.proto, as stored). */
export interface AssignmentRecord {
  /** The execution id this assignment runs as (deterministic per job × version × node). */
  readonly executionId: string;
  readonly jobId: string;
  readonly jobVersion: number;
  readonly namespace: string;
  readonly jobName: string;
  /** pipeline | query | update | config. */
  readonly type: string;
  readonly config: JsonObject;
  readonly desiredState: AssignmentDesiredState;
  readonly timeouts: AssignmentTimeouts;
  readonly restartPolicy: string;
  readonly maxErrorRate: number;
  /** The deployment that placed it ("" for simple placement). */
  readonly deploymentId: string;
}

/** A node's desired state. */
export interface DesiredStateRecord {
  readonly nodeId: string;
  /** Bumps on every change of the set; never goes down. 0 = nothing was ever assigned. */
  readonly revision: number;
  readonly assignments: readonly AssignmentRecord[];
  readonly updatedAt: number;
}

/** A write of one node's desired state. */
export interface PutDesiredCommand {
  readonly nodeId: string;
  readonly assignments: readonly AssignmentRecord[];
  readonly now: number;
  /**
   * Check-and-set on the current revision (0 = "none stored yet"); fails `aborted` with
   * `metadata.current_revision` on mismatch. Omit to write unconditionally.
   */
  readonly expectedRevision?: number;
  /**
   * The new revision is at least this: used when an agent reports an applied revision above the
   * stored one (a restored Redis), so that the agent, which ignores older revisions, takes it.
   */
  readonly minRevision?: number;
}

/**
 * The outcome of one write of {@link DesiredStateStore.putMany}: the stored record, or why this
 * write was refused (`invalid_argument`, `aborted` with `metadata.current_revision`,
 * `out_of_range`: what `put` would reject with).
 */
export type PutDesiredResult =
  | { readonly ok: true; readonly record: DesiredStateRecord }
  | { readonly ok: false; readonly error: EdgeplaneError };

/** The largest revision (the proto field is a uint32). */
export const MAX_DESIRED_REVISION = 4_294_967_295;

/** Per-node desired state. Every method rejects with an `EdgeplaneError`. */
export interface DesiredStateStore {
  /** A node's desired state; undefined when none was ever written. */
  get(nodeId: string): Promise<DesiredStateRecord | undefined>;
  /** Every node's desired state (read once at start by the placement controller). */
  loadAll(): Promise<DesiredStateRecord[]>;
  /** Every node's desired revision, without the sets (read once at start by the registry). */
  revisions(): Promise<Map<string, number>>;
  /**
   * Writes a node's set atomically: revision = max(current + 1, minRevision). Returns the stored
   * record. `out_of_range` past {@link MAX_DESIRED_REVISION}.
   */
  put(cmd: PutDesiredCommand): Promise<DesiredStateRecord>;
  /**
   * Many `put`s in one round trip (placement writes a batch of nodes this way). Each write is
   * checked and applied on its own, in order, exactly as `put` would (a later write of the same
   * node sees the earlier one): `results[i]` is the outcome of `cmds[i]`, and a refused write
   * does not stop the others. Rejects (an `EdgeplaneError`) only when the store cannot be reached;
   * then, as with `put`, any of the writes may or may not have been applied.
   */
  putMany(cmds: readonly PutDesiredCommand[]): Promise<PutDesiredResult[]>;
  /** Releases connections the store opened itself. */
  close(): Promise<void>;
}
