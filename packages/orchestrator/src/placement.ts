/**
 * Simple placement, pure: the stand-in until the rollout orchestrator (issue 7) replaces it. A
 * job reaches its nodes with the simplest strategy there is: every matching ready node at once.
 *
 * For one node, the desired assignment set is every job that
 * 1. is placed (state pending, queued or running; not completed, failed, stopped or deleted),
 * 2. whose selector (`spec.selector`, compiled once per job version) matches the node's labels
 *    and id, and
 * 3. the node may hold: a `ready` node takes every such job; a `draining`, `disconnected` or
 *    `lost` node keeps the ones it already holds (at the job's current version) and gains none.
 *
 * A node that stops matching, or a job that stops being placed, drops the assignment (it is
 * removed from the set; the agent stops what is no longer in it). The runtime
 * (`placement-controller.ts`) diffs this against the stored set and writes a new revision only
 * when the set changed.
 */
import * as crypto from "node:crypto";
import type { JobStateType } from "@edgeplane/core";
import { compileNodeSelector, type Labels, type NodeSelector } from "@edgeplane/selector";
import type { AssignmentRecord, JobRecord, JsonObject, NodeStateType } from "@edgeplane/store";

/** The job states whose jobs are placed on nodes. */
export const PLACED_JOB_STATES: readonly JobStateType[] = ["pending", "queued", "running"];

/** Whether jobs in this state are placed on nodes. */
export function isPlacedJobState(state: JobStateType): boolean {
  return state === "pending" || state === "queued" || state === "running";
}

/**
 * Whether a job is placed when rollouts decide versions: the placed states, and also a job whose
 * deployment failed without a rollback (`failed` with the deployment's state in its details):
 * its nodes keep what they run until a person rolls back or submits a fix. A job failed by a
 * timeout (or stopped, completed, deleted) is not: its executions stop.
 */
export function isPlacedWithRollouts(job: Pick<JobRecord, "state" | "stateDetails">): boolean {
  return (
    isPlacedJobState(job.state) || (job.state === "failed" && job.stateDetails.deployment_state !== undefined)
  );
}

/** A job as placement sees it: the record and its compiled selector. */
export interface PlacementJob {
  readonly job: JobRecord;
  /** `undefined` when the stored selector cannot be compiled: the job then matches no node. */
  readonly selector: NodeSelector | undefined;
}

/** A node as placement sees it. */
export interface PlacementNode {
  readonly id: string;
  /** The effective labels (agent's own merged with the operator's). */
  readonly labels: Labels;
  readonly state: NodeStateType;
  /** The job ids the node's current desired state holds. */
  readonly heldJobIds: ReadonlySet<string>;
}

function objectAt(o: unknown, key: string): Record<string, unknown> | undefined {
  if (typeof o !== "object" || o === null) return undefined;
  const v = (o as Record<string, unknown>)[key];
  return typeof v === "object" && v !== null && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;
}

function numberAt(o: Record<string, unknown> | undefined, key: string, fallback: number): number {
  const v = o?.[key];
  return typeof v === "number" && Number.isFinite(v) ? v : fallback;
}

/** Compiles a job's selector; an invalid stored selector (never admitted by the API) yields `undefined`. */
export function placementJob(job: JobRecord): PlacementJob {
  const raw = objectAt(job.spec, "selector") ?? {};
  try {
    return { job, selector: compileNodeSelector(raw) };
  } catch {
    return { job, selector: undefined };
  }
}

const BASE32 = "0123456789abcdefghjkmnpqrstvwxyz";
const BASE32_CODES = Uint8Array.from(BASE32, (c) => c.charCodeAt(0));
/** Where an execution id is spelled ("exec-" and 20 characters; one string made from it, not 20). */
const ID_BYTES = Buffer.from("exec-00000000000000000000", "latin1");

/** SHA-256 of a string: the one-shot `crypto.hash` where Node has it (20.12+; faster), else a Hash. */
const sha256: (s: string) => Uint8Array =
  typeof crypto.hash === "function"
    ? (s) => crypto.hash("sha256", s, "buffer")
    : (s) => crypto.createHash("sha256").update(s).digest();

/**
 * The execution id of one job version on one node: `exec-` + 20 base32 characters (100 bits) of
 * SHA-256 over (job id, version, node id). Deterministic, so every computation of the same
 * assignment names the same execution, and a new version is a new execution.
 */
export function executionIdFor(jobId: string, version: number, nodeId: string): string {
  const digest = sha256(`${jobId}\0${version}\0${nodeId}`);
  let bits = 0;
  let acc = 0;
  let i = 0;
  for (let k = 5; k < 25; k++) {
    if (bits < 5) {
      acc = (acc << 8) | (digest[i++] ?? 0);
      bits += 8;
    }
    bits -= 5;
    ID_BYTES[k] = BASE32_CODES[(acc >> bits) & 31] ?? 0;
  }
  return ID_BYTES.toString("latin1", 0, 25);
}

/** A job version other than the current one: its number, its spec, and who assigned it. */
export interface PlacedVersion {
  readonly version: number;
  readonly spec: JsonObject;
  /** The deployment that assigned it ("" for none). */
  readonly deploymentId: string;
}

/**
 * The assignment of `job` on `nodeId`: its current version, or the version `at` (what a rollout
 * assigned the node: the spec of that version, kept by the job store).
 */
export function assignmentFor(job: JobRecord, nodeId: string, at?: PlacedVersion): AssignmentRecord {
  const spec = at?.spec ?? job.spec;
  const version = at?.version ?? job.version;
  const parts = specParts(spec);
  return {
    executionId: executionIdFor(job.id, version, nodeId),
    jobId: job.id,
    jobVersion: version,
    namespace: job.namespace,
    jobName: job.name,
    type: at !== undefined && typeof spec.type === "string" ? spec.type : job.type,
    config: parts.config,
    desiredState: "running",
    timeouts: parts.timeouts,
    restartPolicy: parts.restartPolicy,
    maxErrorRate: parts.maxErrorRate,
    deploymentId: at?.deploymentId ?? "",
  };
}

/** What an assignment takes from a job version's spec (the same for every node). */
interface SpecParts {
  readonly config: JsonObject;
  readonly timeouts: AssignmentRecord["timeouts"];
  readonly restartPolicy: string;
  readonly maxErrorRate: number;
}

/** Per spec object (specs are immutable): its parts, read once and shared by every node's assignment. */
const partsBySpec = new WeakMap<JsonObject, SpecParts>();

function specParts(spec: JsonObject): SpecParts {
  let parts = partsBySpec.get(spec);
  if (parts === undefined) {
    const timeouts = objectAt(spec, "timeouts");
    const health = objectAt(objectAt(spec, "deployment"), "health_check");
    const restart = spec.restart_policy;
    parts = {
      config: (objectAt(spec, "config") ?? {}) as JsonObject,
      timeouts: {
        executionTimeout: numberAt(timeouts, "execution_timeout", 0),
        queueTimeout: numberAt(timeouts, "queue_timeout", 0),
        totalTimeout: numberAt(timeouts, "total_timeout", 0),
      },
      restartPolicy: typeof restart === "string" ? restart : "on-failure",
      maxErrorRate: numberAt(health, "max_error_rate", 0.1),
    };
    partsBySpec.set(spec, parts);
  }
  return parts;
}

/**
 * Which version of a job a node runs, when rollouts decide it (the deployment runtime's
 * versions-per-node map). `undefined`: the node runs no version of the job (yet).
 */
export type VersionLookup = (job: JobRecord, nodeId: string) => PlacedVersion | undefined;

/**
 * The desired assignment set of `node` (sorted by job id): see the rules in this module's header.
 *
 * With `versionOf` (rollouts): a placed job whose selector matches the node is assigned at the
 * version `versionOf` names, whatever the node's state (a rollout assigns disconnected nodes too:
 * they converge when they return), and not at all when it names none.
 */
export function computeAssignments(
  jobs: Iterable<PlacementJob>,
  node: PlacementNode,
  versionOf?: VersionLookup,
): AssignmentRecord[] {
  const takesNew = node.state === "ready";
  const out: AssignmentRecord[] = [];
  for (const { job, selector } of jobs) {
    if (selector === undefined) continue;
    if (versionOf === undefined ? !isPlacedJobState(job.state) : !isPlacedWithRollouts(job)) continue;
    if (versionOf === undefined && !takesNew && !node.heldJobIds.has(job.id)) continue;
    if (!selector.matches(node)) continue;
    if (versionOf === undefined) {
      out.push(assignmentFor(job, node.id));
      continue;
    }
    const at = versionOf(job, node.id);
    if (at !== undefined) out.push(assignmentFor(job, node.id, at));
  }
  return out.sort((a, b) => (a.jobId < b.jobId ? -1 : a.jobId > b.jobId ? 1 : 0));
}

/**
 * A string that is equal for two sets exactly when they would be the same desired state: the
 * execution id names job × version × node, and every field of an assignment comes from that
 * job version's spec (or is constant here).
 */
export function assignmentSignature(assignments: readonly AssignmentRecord[]): string {
  let s = "";
  for (const a of assignments) s += `${a.executionId}:${a.desiredState}:${a.deploymentId},`;
  return s;
}
