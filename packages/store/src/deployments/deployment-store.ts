/**
 * Persistence of the rollout orchestrator (issue 7): deployments, the job version each node is
 * meant to run (the versions-per-node map), and the leader lease with its fencing epoch.
 *
 * - {@link DeploymentStore}: one record per deployment, written whole by the leader with a
 *   revision guard, a state guard (the planner's transition table, passed in as `allowedFrom`)
 *   and the leader's fencing epoch, all checked in one atomic step. The store does not know what
 *   a deployment means: the record is the planner's JSON, plus a few head fields it indexes (job,
 *   state, active, creation time). A small `summary` (the record without its per-node table) may
 *   be kept next to it for the API, so listing and watching never read a big record; without one,
 *   the record is the summary. The per-node table is kept apart from the record (`nodes`, node
 *   id → entry) and written incrementally: a write lists only the entries that changed, so a sync
 *   of a 10,000-node deployment does not re-send the whole table. The frozen target list
 *   (`targets`) is written once, at create.
 * - {@link NodeVersionStore}: per job, node → the version the rollout assigned it (and the one it
 *   had before, so an assignment that was never started can be withdrawn).
 * - {@link LeaderLease}: who may act. Acquiring the lease when it is free bumps a counter, the
 *   fencing epoch; every orchestrator write carries the epoch it acts under, and is refused
 *   (`failed_precondition`, `metadata.fenced`) unless the lease is held right now with that epoch.
 *
 * Two implementations (memory and Redis) pass one conformance suite
 * (`conformance/deployment-store-suite.ts`). Times are milliseconds since the epoch.
 */
import type { JsonObject } from "../job-store.js";

/** The leader epoch a write acts under. */
export interface Fence {
  /** The epoch of the lease the writer holds (from {@link LeaderLease.acquire}). */
  readonly epoch: number;
}

/** A deployment write: head fields the store indexes, the record, and changed node entries. */
export interface DeploymentWrite {
  readonly id: string;
  readonly jobId: string;
  /** The deployment's state (a planner state name; the store only compares strings). */
  readonly state: string;
  /** Whether it may still change on its own: kept in the active set the leader resumes from. */
  readonly active: boolean;
  readonly createdAt: number;
  readonly now: number;
  /** The full record, without `revision` (the store writes the new revision into it). */
  readonly record: JsonObject;
  /**
   * What the API shows (the record without its big parts), without `revision`. Absent: the record
   * is the summary (an update without one drops the summary stored before).
   */
  readonly summary?: JsonObject;
  /**
   * Node entries (node id → entry) to upsert into the deployment's node table in the same atomic
   * write: on create usually all of them, on update only the ones that changed. Entries not listed
   * stay as they are; when an id is listed twice, the last one wins. At most 100,000.
   */
  readonly nodes?: ReadonlyArray<readonly [string, JsonObject]>;
  /**
   * The deployment's frozen target list (node ids, in order), stored once by `create`; `update`
   * refuses it (`invalid_argument`, field `targets`). At most 100,000.
   */
  readonly targets?: readonly string[];
}

/** The preconditions of a deployment update. */
export interface DeploymentGuard {
  /** Fails `aborted` (with `metadata.current_revision`) on mismatch. */
  readonly expectedRevision: number;
  /**
   * The states the stored deployment may be in for the write to apply; `failed_precondition`
   * otherwise. Omit when the state does not change.
   */
  readonly allowedFrom?: readonly string[];
  /** The writer's leader epoch; `failed_precondition` with `metadata.fenced` when not current. */
  readonly fence?: Fence;
}

/** A deployment as stored (full record). */
export interface StoredDeployment {
  readonly id: string;
  readonly jobId: string;
  readonly state: string;
  /** 1 after create; bumps on every update. Equals `record.revision`. */
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * The record as written, with `revision`. (Deployments stored before the node table was kept
   * apart carry their per-node table in here, and `nodes` is empty.)
   */
  readonly record: JsonObject;
  /** The whole node table (node id → entry); `{}` when none was written. */
  readonly nodes: Record<string, JsonObject>;
  /** The frozen target list, when the deployment was created with one. */
  readonly targets?: readonly string[];
  /** A control a person requested that the orchestrator has not applied yet. */
  readonly control?: string;
  /** The reason the person gave with {@link control} (absent when none was given). */
  readonly controlReason?: string;
}

/** A deployment as the API reads it (summary instead of the full record). */
export interface DeploymentSummary {
  readonly id: string;
  readonly jobId: string;
  readonly state: string;
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** The summary, with `revision` (the record, when it was written without a summary). */
  readonly summary: JsonObject;
  readonly control?: string;
  readonly controlReason?: string;
}

/** Where a page of deployments starts: after this (createdAt, id), newest first. */
export interface DeploymentCursor {
  readonly createdAt: number;
  readonly id: string;
}

/** A page of deployment summaries, newest first. */
export interface DeploymentPage {
  readonly items: DeploymentSummary[];
  /** Absent on the last page. */
  readonly next?: DeploymentCursor;
}

/** One entry of the deployment change stream. */
export interface DeploymentChange {
  /** Stream position; strictly increasing. */
  readonly id: string;
  readonly deploymentId: string;
  readonly jobId: string;
  /** `created`, `updated`, or `control` (a person requested a control). */
  readonly kind: "created" | "updated" | "control";
  readonly revision: number;
  readonly state: string;
}

/** The deployment store. Every method rejects with an `EdgeplaneError`. */
export interface DeploymentStore {
  /**
   * Creates a deployment unless one with this id exists (then returns it, `created: false`:
   * ids are deterministic, so a retried or concurrent create is harmless). Fenced when `fence`.
   */
  create(write: DeploymentWrite, fence?: Fence): Promise<{ deployment: StoredDeployment; created: boolean }>;
  /**
   * Replaces a deployment's record (and summary) and upserts the listed node entries under
   * `guard`, all or nothing; returns the new revision. `not_found` when unknown.
   */
  update(write: DeploymentWrite, guard: DeploymentGuard): Promise<number>;
  /**
   * {@link update}, and in the same atomic write what {@link NodeVersionStore.assign} does for
   * `assign.nodeIds` (version `assign.version` of the deployment's job, assigned by this
   * deployment): a rollout step's record and the dispatch it records are never seen apart, and
   * the step costs one round trip. Refused as a whole, like `update` (nothing assigned either).
   * Resolves the new revision and the nodes whose version changed. Needs the node version store
   * over the same data (the same Redis, or the same {@link MemoryDeploymentData}).
   */
  updateAssigning(
    write: DeploymentWrite,
    guard: DeploymentGuard,
    assign: VersionAssignment,
  ): Promise<{ revision: number; assigned: string[] }>;
  /** The full record, node table and targets; undefined when unknown. */
  get(id: string): Promise<StoredDeployment | undefined>;
  /** The summary; undefined when unknown. */
  getSummary(id: string): Promise<DeploymentSummary | undefined>;
  /** Summaries of one job's deployments (or of all, when `jobId` is empty), newest first. */
  list(query: { jobId?: string; limit: number; cursor?: DeploymentCursor }): Promise<DeploymentPage>;
  /** Ids of the deployments written with `active: true` last. */
  listActive(): Promise<string[]>;
  /**
   * Records a control for the orchestrator to apply (replacing one not applied yet) and appends
   * a `control` change, with the person's `reason` (at most 1,024 characters; kept until the
   * control is cleared). `not_found` when unknown.
   */
  requestControl(id: string, control: string, now: number, reason?: string): Promise<void>;
  /** Removes the pending control if it is still `control` (the orchestrator applied it). */
  clearControl(id: string, control: string): Promise<void>;
  /** Change-stream entries strictly after `after` ("0" = from the start), at most `count`. */
  readChanges(after: string, count: number): Promise<DeploymentChange[]>;
  /** The id of the last change-stream entry ("0" when empty): where a reader that starts now begins. */
  lastChange(): Promise<string>;
  close(): Promise<void>;
}

/** The version the rollout assigned one node, and what it had before. */
export interface NodeVersion {
  /** The job version the node should run (0: none). */
  readonly version: number;
  /** The deployment that assigned it ("" when unknown or not a deployment). */
  readonly deploymentId: string;
  /** The version it had before (0: none): what a withdrawn assignment restores. */
  readonly previousVersion: number;
  readonly previousDeploymentId: string;
}

/** A version to assign to nodes, in a deployment write (the job and deployment are the write's). */
export interface VersionAssignment {
  readonly version: number;
  readonly nodeIds: readonly string[];
}

/** Assigns `version` of a job to nodes. */
export interface AssignVersionCommand {
  readonly jobId: string;
  readonly version: number;
  readonly deploymentId: string;
  readonly nodeIds: readonly string[];
  readonly fence?: Fence;
}

/** Withdraws `version` from nodes that still have it. */
export interface UnassignVersionCommand {
  readonly jobId: string;
  readonly version: number;
  readonly nodeIds: readonly string[];
  readonly fence?: Fence;
}

/** The versions-per-node map. Every method rejects with an `EdgeplaneError`. */
export interface NodeVersionStore {
  /**
   * For every node whose version is not `version` yet: remembers the current one as the previous
   * and sets `version`. Returns the nodes that changed (a repeat changes nothing).
   */
  assign(cmd: AssignVersionCommand): Promise<string[]>;
  /**
   * For every node whose version is still `version`: restores the previous one (removing the
   * entry when there was none). Returns the nodes that changed.
   */
  unassign(cmd: UnassignVersionCommand): Promise<string[]>;
  /** One job's map. */
  load(jobId: string): Promise<Map<string, NodeVersion>>;
  /** Drops a job's map (the job was deleted). */
  drop(jobId: string, fence?: Fence): Promise<void>;
  close(): Promise<void>;
}

/** The lease as read. */
export interface LeaseHolder {
  readonly holder: string;
  readonly epoch: number;
  /** Milliseconds until it expires unless renewed. */
  readonly ttlMs: number;
}

/** The outcome of {@link LeaderLease.acquire}. */
export type LeaseOutcome =
  /** The caller holds the lease with `epoch`; `fresh` when this call acquired it (a new epoch). */
  | { readonly held: true; readonly epoch: number; readonly fresh: boolean }
  /** Someone else holds it. */
  | { readonly held: false; readonly holder: LeaseHolder };

/** The leader lease. Every method rejects with an `EdgeplaneError`. */
export interface LeaderLease {
  /**
   * Takes the lease for `ttlMs` if it is free (bumping the epoch), or extends it if `holder`
   * holds it already (same epoch). One call is both acquire and renew.
   */
  acquire(holder: string, ttlMs: number): Promise<LeaseOutcome>;
  /** Gives the lease up if `holder` holds it with `epoch` (a clean stop lets the next leader start at once). */
  release(holder: string, epoch: number): Promise<void>;
  /** Who holds the lease now; undefined when free. */
  current(): Promise<LeaseHolder | undefined>;
  close(): Promise<void>;
}
