/**
 * The planner's input (a {@link Snapshot}) and output (a {@link Plan}), and the deployment record
 * it maintains. Every time is milliseconds since the epoch (virtual time in tests); deadlines are
 * absolute, so whoever loads the record next (a new leader) resumes exactly where it stopped.
 */
import type { JobSpec, JobStateType, JobType, Strategy } from "@edgeplane/core";
import type { Control, DeploymentState, NodeRolloutState } from "./states.js";

/** The deployment section of a job spec (defaults applied), frozen into each deployment. */
export type RolloutSpec = JobSpec["deployment"];

/** How many timeline entries a deployment keeps (oldest dropped first). */
export const MAX_EVENTS = 200;
/** How many node ids one event lists (the rest are counted in `details.nodes_total`). */
export const MAX_EVENT_NODES = 100;

/** The kinds of timeline entries (the proto's `DeploymentEvent.kind`, plus `rolled_back`). */
export const EVENT_KINDS = [
  "started",
  "dispatched",
  "node_healthy",
  "node_failed",
  "halted",
  "awaiting_promotion",
  "promoted",
  "paused",
  "resumed",
  "succeeded",
  "failed",
  "rollback_started",
  "rollback_skipped",
  "rolled_back",
  "cancelled",
  "superseded",
] as const;

/** A timeline entry kind. */
export type DeploymentEventKind = (typeof EVENT_KINDS)[number];

/** One entry of a deployment's timeline; every halt, promotion and rollback explains itself. */
export interface DeploymentEvent {
  /** When (ms). */
  readonly time: number;
  readonly kind: DeploymentEventKind;
  /** Why, in words with the numbers: "failed_nodes 3 > max_failed_nodes 2". */
  readonly reason: string;
  /** The nodes concerned (at most {@link MAX_EVENT_NODES}). */
  readonly nodes: readonly string[];
  /** Machine-readable facts (string values, as in the proto map). */
  readonly details: Readonly<Record<string, string>>;
}

/** One node's progress within one deployment. */
export interface NodeRollout {
  readonly state: NodeRolloutState;
  /** The wave the node belongs to (1-based; the canary set is wave 1 of a canary deployment). */
  readonly wave: number;
  /** When the new version became the node's desired state. */
  readonly assignedAt?: number;
  /** `assignedAt + deadline` (absolute); absent when the rollout has no deadline. */
  readonly deadlineAt?: number;
  /** Start of the current healthy stretch (cleared by any unhealthy observation). */
  readonly healthySince?: number;
  /** The last time the node was seen unhealthy since assignment (a healthy stretch starts after it). */
  readonly unhealthyAt?: number;
  /** When the node became done (for long-running jobs: healthySince + min_healthy_time). */
  readonly doneAt?: number;
  /** When the node was judged failed. */
  readonly failedAt?: number;
  /** Why the node failed (or why its assignment was withdrawn). */
  readonly reason?: string;
  /**
   * Set when the deployment ended (failed, cancelled, rolled back) while this node was assigned
   * but had not started the new version: the assignment was withdrawn (`unassign` action).
   */
  readonly withdrawnAt?: number;
}

/** Node counts (the proto's `DeploymentCounters`). */
export interface DeploymentCounters {
  /** Nodes the deployment covers. */
  readonly targets: number;
  /** Number of waves, the canary wave included. */
  readonly waves: number;
  /** The highest wave dispatched so far (1-based; 0 before the first). */
  readonly currentWave: number;
  /** Nodes ever assigned the new version (assigned, done, or failed after assignment). */
  readonly updated: number;
  /** Nodes done. */
  readonly healthy: number;
  /** Assigned nodes currently seen unhealthy (running the new version but not healthy, or disconnected). */
  readonly unhealthy: number;
  /** Nodes failed. */
  readonly failed: number;
  /** Canary nodes. */
  readonly canaries: number;
}

/** One rollout of one job version over a frozen set of nodes. */
export interface DeploymentRecord {
  readonly id: string;
  readonly jobId: string;
  readonly namespace: string;
  readonly jobName: string;
  /** The job version being rolled out. */
  readonly jobVersion: number;
  /** The job type, which decides how a node is judged: pipeline = long-running, others run once. */
  readonly jobType: JobType;
  /** The effective strategy (a rollback of a canary deployment runs as rolling). */
  readonly strategy: Strategy;
  /**
   * The deployment settings in force, frozen at creation: the version's own `spec.deployment`, or
   * for a rollback the failed deployment's settings without a canary phase.
   */
  readonly rollout: RolloutSpec;
  readonly state: DeploymentState;
  /** True for a deployment started by an automatic or manual rollback. */
  readonly isRollback: boolean;
  /** For a rollback: the deployment it answers. */
  readonly rollbackOfDeploymentId?: string;
  /** For a rollback: the stable version whose spec it rolls out (as a new job version). */
  readonly rollbackToVersion?: number;
  /** For a deployment that was rolled back: the rollback deployment (set by the applier). */
  readonly rollbackDeploymentId?: string;
  /** Node ids frozen at creation, in rollout order (see `rolloutOrder`): dispatch follows it. */
  readonly targets: readonly string[];
  /** The canary set: the first `canaryCount` targets (empty unless the strategy is canary). */
  readonly canaries: readonly string[];
  /**
   * Per node progress, aligned with `targets`: `nodes[i]` is the progress of `targets[i]` (an
   * array, so a sync copies 10,000 entries as pointers and walks them without hashing ids; see
   * `nodeOf` for a lookup by id).
   */
  readonly nodes: readonly NodeRollout[];
  /** A canary deployment was promoted (automatically or by a person). */
  readonly promoted: boolean;
  readonly createdAt: number;
  readonly updatedAt: number;
  /** When the first sync started it. */
  readonly startedAt?: number;
  /** When it reached a terminal state. */
  readonly finishedAt?: number;
  /** A human-readable status line. */
  readonly message: string;
  /** 0..1: done nodes over targets (1 for an empty target set once succeeded). */
  readonly progress: number;
  readonly counters: DeploymentCounters;
  /** What a person can do now (the controls that would be accepted). */
  readonly nextSteps: readonly Control[];
  /** The timeline, oldest first, at most {@link MAX_EVENTS}. */
  readonly events: readonly DeploymentEvent[];
  /** Bumped by the store on every write; the planner never changes it. 0 until first stored. */
  readonly revision: number;
}

/** Node liveness as the node registry sees it. */
export type NodeLiveness = "ready" | "draining" | "disconnected" | "lost";

/** Execution states as agents report them. */
export type ExecutionState = "waiting" | "running" | "finished" | "error" | "timed_out" | "canceled" | "lost";

/** What the control plane last heard about one node and its execution of this job. */
export interface NodeObservation {
  readonly liveness: NodeLiveness;
  /** The node's latest execution of this job (any version), from heartbeats and events. */
  readonly execution?: {
    readonly version: number;
    readonly state: ExecutionState;
    readonly healthy: boolean;
    /** Fraction of failed messages over the last health window (0..1). */
    readonly errorRate: number;
    /** Since when the agent has seen it healthy (`health.since`, ms); optional. */
    readonly healthySince?: number;
  };
}

/** The last stable version of the job, as the snapshot loader found it. */
export interface StableVersion {
  /** The last version whose deployment succeeded. */
  readonly version: number;
  /** Whether its spec equals the spec this deployment rolls out (then there is nothing to roll back to). */
  readonly specEqualsCurrent: boolean;
}

/** Everything one sync of one deployment needs; loaded fresh by the runtime before each plan. */
export interface Snapshot {
  readonly deployment: DeploymentRecord;
  /**
   * The latest observation of every target (keyed by node id). A target missing here is treated
   * as disconnected (its deadline keeps counting); a node removed from the registry must be
   * reported as `lost`.
   */
  readonly observations: Readonly<Record<string, NodeObservation>>;
  /** The job's last stable version; undefined when none (no deployment of the job succeeded). */
  readonly stable?: StableVersion;
  /**
   * The id of a newer deployment of the same job, when one started (the job's active deployment is
   * another one). Ignored when it is this deployment's own rollback deployment.
   */
  readonly supersededBy?: string;
  /** A control a person requested, to apply in this sync (the applier clears it). */
  readonly requested?: Control;
  /** The reason the person gave with {@link requested}, recorded in the timeline. */
  readonly requestedReason?: string;
  /** While rolling back: the rollback deployment's id and state (undefined when not found yet). */
  readonly rollback?: { readonly id: string; readonly state: DeploymentState };
}

/** What the applier must do, in order. */
export type Action =
  /** Make `version` the desired state of these nodes (level-triggered; delivered on reconnect). */
  | { readonly kind: "assign"; readonly nodeIds: readonly string[]; readonly version: number }
  /**
   * Withdraw an assignment of `version` the nodes have not started: if a node's desired version
   * is still `version`, restore the desired version it had before this deployment assigned it.
   */
  | { readonly kind: "unassign"; readonly nodeIds: readonly string[]; readonly version: number }
  /**
   * Write the spec of `toVersion` as a new job version (kind "rollback", source `toVersion`) and
   * start its deployment with `createDeployment({..., rollbackOf: this deployment})`; then set
   * this deployment's `rollbackDeploymentId`. Idempotent per deployment id: emitted again on every
   * sync until `rollbackDeploymentId` is set.
   */
  | {
      readonly kind: "rollback";
      readonly toVersion: number;
      readonly reason: string;
      /** True when a person asked for it. */
      readonly manual: boolean;
    }
  /** Set the job's stable version (the deployment of `version` succeeded). */
  | { readonly kind: "mark_stable"; readonly version: number }
  /** Set the job's state and message (only if the job's active deployment is still this one). */
  | { readonly kind: "job_state"; readonly state: JobStateType; readonly message: string };

/** A refused control and why. */
export interface Rejection {
  readonly control: Control;
  readonly reason: string;
}

/** The planner's answer to one snapshot. */
export interface Plan {
  /** What to do, in order: store writes before publishes. */
  readonly actions: readonly Action[];
  /** The updated record (revision untouched: the store bumps it on write). */
  readonly deployment: DeploymentRecord;
  /** New timeline entries (already appended to `deployment.events`). */
  readonly events: readonly DeploymentEvent[];
  /** Whether anything in the record changed (apart from `updatedAt`); false → nothing to write. */
  readonly changed: boolean;
  /**
   * Sync again after this many ms even if nothing is observed: the earliest time a state can
   * change on its own (next deadline, next end of a min_healthy_time clock). Absent: only an
   * observation, a control or another deployment can change anything.
   */
  readonly requeueAfterMs?: number;
  /** The requested control, when it was refused in this state. */
  readonly rejected?: Rejection;
}
