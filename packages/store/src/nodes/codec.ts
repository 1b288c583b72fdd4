/**
 * Node records and desired states ⇄ their stored JSON text (snake_case, like the API), with the
 * shape checks both stores share: a write is checked before anything is stored, and a stored
 * entry that cannot be read is reported instead of crashing a load. The memory stores keep the
 * same text as Redis, so both behave identically (and hand out copies).
 */
import { EdgeplaneError, invalidArgument } from "@edgeplane/core";
import type { JsonObject } from "../job-store.js";
import { AssignmentTemplates } from "./assignment-templates.js";
import { isNodeState } from "./node-state.js";
import {
  type AssignmentRecord,
  type DesiredStateRecord,
  type LabelMap,
  MAX_DESIRED_REVISION,
  type NodeRecord,
  type PutDesiredCommand,
} from "./node-store.js";

/** The version of the stored node JSON (bumped on an incompatible layout change). */
const NODE_FORMAT = 1;

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkId(field: string, id: unknown): string {
  if (typeof id !== "string" || id.length === 0 || id.length > 253 || /\s/.test(id)) {
    throw invalidArgument(field, "must be 1-253 characters without whitespace");
  }
  return id;
}

function checkTimeMs(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw invalidArgument(field, `must be a time in ms >= 0 (got ${String(v)})`);
  }
  return v;
}

function checkCount(field: string, v: unknown, max = MAX_DESIRED_REVISION): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw invalidArgument(field, `must be an integer from 0 to ${max} (got ${String(v)})`);
  }
  return v;
}

function checkString(field: string, v: unknown): string {
  if (typeof v !== "string") throw invalidArgument(field, "must be a string");
  return v;
}

function checkLabels(field: string, v: unknown): LabelMap {
  if (!isObject(v)) throw invalidArgument(field, "must be an object of string values");
  const out: Record<string, string> = {};
  for (const [k, value] of Object.entries(v)) {
    if (typeof value !== "string")
      throw invalidArgument(`${field}[${JSON.stringify(k)}]`, "must be a string");
    // defineProperty, so a "__proto__" key is an own label and not the prototype.
    Object.defineProperty(out, k, { value, enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function checkStrings(field: string, v: unknown): string[] {
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string"))
    throw invalidArgument(field, "must be a list of strings");
  return [...(v as string[])];
}

/** Checks a node record before it is written; returns a normalised copy. */
export function checkNodeRecord(r: NodeRecord, field = "node"): NodeRecord {
  if (!isObject(r)) throw invalidArgument(field, "must be a node record");
  const state = checkString(`${field}.state`, r.state);
  if (!isNodeState(state))
    throw invalidArgument(`${field}.state`, `${JSON.stringify(state)} is not a node state`);
  if (typeof r.drained !== "boolean") throw invalidArgument(`${field}.drained`, "must be a boolean");
  return {
    id: checkId(`${field}.id`, r.id),
    agentLabels: checkLabels(`${field}.agent_labels`, r.agentLabels),
    operatorLabels: checkLabels(`${field}.operator_labels`, r.operatorLabels),
    state,
    message: checkString(`${field}.message`, r.message),
    drained: r.drained,
    lastHeartbeat: checkTimeMs(`${field}.last_heartbeat`, r.lastHeartbeat),
    agentVersion: checkString(`${field}.agent_version`, r.agentVersion),
    executors: checkStrings(`${field}.executors`, r.executors),
    instanceId: checkString(`${field}.instance_id`, r.instanceId),
    registeredAt: checkTimeMs(`${field}.registered_at`, r.registeredAt),
    appliedRevision: checkCount(`${field}.applied_revision`, r.appliedRevision),
    updatedAt: checkTimeMs(`${field}.updated_at`, r.updatedAt),
  };
}

/** The stored JSON of a (checked) node record. */
export function encodeNodeRecord(r: NodeRecord): string {
  return JSON.stringify({
    v: NODE_FORMAT,
    id: r.id,
    agent_labels: r.agentLabels,
    operator_labels: r.operatorLabels,
    state: r.state,
    message: r.message,
    drained: r.drained,
    last_heartbeat: r.lastHeartbeat,
    agent_version: r.agentVersion,
    executors: r.executors,
    instance_id: r.instanceId,
    registered_at: r.registeredAt,
    applied_revision: r.appliedRevision,
    updated_at: r.updatedAt,
  });
}

/** Reads a stored node record; `internal` (naming the node) when the entry cannot be read. */
export function decodeNodeRecord(id: string, text: string): NodeRecord {
  try {
    const o = JSON.parse(text) as unknown;
    if (!isObject(o) || o.v !== NODE_FORMAT)
      throw new Error(`unknown format ${isObject(o) ? String(o.v) : "?"}`);
    const record = checkNodeRecord({
      id: o.id,
      agentLabels: o.agent_labels,
      operatorLabels: o.operator_labels,
      state: o.state,
      message: o.message,
      drained: o.drained,
      lastHeartbeat: o.last_heartbeat,
      agentVersion: o.agent_version,
      executors: o.executors,
      instanceId: o.instance_id,
      registeredAt: o.registered_at,
      appliedRevision: o.applied_revision,
      updatedAt: o.updated_at,
    } as unknown as NodeRecord);
    if (record.id !== id) throw new Error(`holds node ${record.id}`);
    return record;
  } catch (err) {
    throw new EdgeplaneError("internal", `stored node ${id} cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

function checkAssignment(a: AssignmentRecord, field: string): AssignmentRecord {
  if (!isObject(a)) throw invalidArgument(field, "must be an assignment");
  if (a.desiredState !== "running" && a.desiredState !== "stopped")
    throw invalidArgument(`${field}.desired_state`, "must be running or stopped");
  if (!isObject(a.config)) throw invalidArgument(`${field}.config`, "must be an object");
  if (!isObject(a.timeouts)) throw invalidArgument(`${field}.timeouts`, "must be an object");
  if (typeof a.maxErrorRate !== "number" || !(a.maxErrorRate >= 0 && a.maxErrorRate <= 1))
    throw invalidArgument(`${field}.max_error_rate`, "must be a number from 0 to 1");
  return {
    executionId: checkId(`${field}.execution_id`, a.executionId),
    jobId: checkId(`${field}.job_id`, a.jobId),
    jobVersion: checkCount(`${field}.job_version`, a.jobVersion),
    namespace: checkString(`${field}.namespace`, a.namespace),
    jobName: checkString(`${field}.job_name`, a.jobName),
    type: checkString(`${field}.type`, a.type),
    config: a.config,
    desiredState: a.desiredState,
    timeouts: {
      executionTimeout: checkCount(
        `${field}.timeouts.execution_timeout`,
        a.timeouts.executionTimeout,
        2 ** 31 - 1,
      ),
      queueTimeout: checkCount(`${field}.timeouts.queue_timeout`, a.timeouts.queueTimeout, 2 ** 31 - 1),
      totalTimeout: checkCount(`${field}.timeouts.total_timeout`, a.timeouts.totalTimeout, 2 ** 31 - 1),
    },
    restartPolicy: checkString(`${field}.restart_policy`, a.restartPolicy),
    maxErrorRate: a.maxErrorRate,
    deploymentId: checkString(`${field}.deployment_id`, a.deploymentId),
  };
}

/** Checks a desired-state write; returns the checked assignments. */
export function checkPutDesired(cmd: PutDesiredCommand): AssignmentRecord[] {
  if (!isObject(cmd)) throw invalidArgument("command", "must be an object");
  checkId("node_id", cmd.nodeId);
  checkTimeMs("now", cmd.now);
  if (cmd.expectedRevision !== undefined) checkCount("expected_revision", cmd.expectedRevision);
  if (cmd.minRevision !== undefined) checkCount("min_revision", cmd.minRevision);
  if (!Array.isArray(cmd.assignments)) throw invalidArgument("assignments", "must be a list");
  // Most sets hold one assignment: no Set for those.
  const seen = cmd.assignments.length > 1 ? new Set<string>() : undefined;
  return cmd.assignments.map((a, i) => {
    const checked = checkAssignment(a, `assignments[${i}]`);
    if (seen?.has(checked.executionId))
      throw invalidArgument(`assignments[${i}].execution_id`, `${checked.executionId} appears twice`);
    seen?.add(checked.executionId);
    return checked;
  });
}

/** The stored JSON of one assignment (snake_case). */
function assignmentJson(a: AssignmentRecord): Record<string, unknown> {
  return {
    execution_id: a.executionId,
    job_id: a.jobId,
    job_version: a.jobVersion,
    namespace: a.namespace,
    job_name: a.jobName,
    type: a.type,
    config: a.config,
    desired_state: a.desiredState,
    timeouts: {
      execution_timeout: a.timeouts.executionTimeout,
      queue_timeout: a.timeouts.queueTimeout,
      total_timeout: a.timeouts.totalTimeout,
    },
    restart_policy: a.restartPolicy,
    max_error_rate: a.maxErrorRate,
    deployment_id: a.deploymentId,
  };
}

/** Per job version: the JSON of an assignment after its execution id (`"job_id":…}`). */
const tails = new AssignmentTemplates((a) =>
  JSON.stringify(assignmentJson({ ...a, executionId: "" })).slice('{"execution_id":"",'.length),
);

/**
 * The stored JSON of a desired state, without its revision: `{"updated_at":…,"assignments":[…]}`.
 * The writer (a Lua script in Redis) splices `"revision":N,` in after the opening brace, so the
 * revision is decided atomically where the current one is read. The text is exactly
 * `JSON.stringify` of that object (the JSON after each assignment's execution id is reused per
 * job version: see `assignment-templates.ts`).
 */
export function encodeDesiredBody(assignments: readonly AssignmentRecord[], now: number): string {
  let out = `{"updated_at":${JSON.stringify(now)},"assignments":[`;
  for (let i = 0; i < assignments.length; i++) {
    const a = assignments[i] as AssignmentRecord;
    out += `${i === 0 ? "" : ","}{"execution_id":${JSON.stringify(a.executionId)},${tails.get(a)}`;
  }
  return `${out}]}`;
}

/** {@link encodeDesiredBody} by plain `JSON.stringify` (the reference the fast one is tested against). */
export function encodeDesiredBodyPlain(assignments: readonly AssignmentRecord[], now: number): string {
  return JSON.stringify({ updated_at: now, assignments: assignments.map(assignmentJson) });
}

/** The stored text with the revision spliced in (what the Lua script does, for the memory store). */
export function spliceRevision(revision: number, body: string): string {
  return `{"revision":${revision},${body.slice(1)}`;
}

/** Reads a stored desired state; `internal` (naming the node) when it cannot be read. */
export function decodeDesired(nodeId: string, text: string): DesiredStateRecord {
  try {
    const o = JSON.parse(text) as unknown;
    if (!isObject(o) || !Array.isArray(o.assignments)) throw new Error("not a desired state");
    const assignments = o.assignments.map((raw: unknown, i: number) => {
      if (!isObject(raw) || !isObject(raw.timeouts))
        throw new Error(`assignments[${i}] is not an assignment`);
      const t = raw.timeouts;
      return checkAssignment(
        {
          executionId: raw.execution_id,
          jobId: raw.job_id,
          jobVersion: raw.job_version,
          namespace: raw.namespace,
          jobName: raw.job_name,
          type: raw.type,
          config: raw.config as JsonObject,
          desiredState: raw.desired_state,
          timeouts: {
            executionTimeout: t.execution_timeout,
            queueTimeout: t.queue_timeout,
            totalTimeout: t.total_timeout,
          },
          restartPolicy: raw.restart_policy,
          maxErrorRate: raw.max_error_rate,
          deploymentId: raw.deployment_id,
        } as unknown as AssignmentRecord,
        `assignments[${i}]`,
      );
    });
    return {
      nodeId,
      revision: checkCount("revision", o.revision),
      assignments,
      updatedAt: checkTimeMs("updated_at", o.updated_at),
    };
  } catch (err) {
    throw new EdgeplaneError(
      "internal",
      `stored desired state of node ${nodeId} cannot be read: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** `aborted`: a desired-state check-and-set lost. */
export function desiredConflict(nodeId: string, expected: number, current: number): EdgeplaneError {
  return new EdgeplaneError(
    "aborted",
    `desired state of node ${nodeId}: expected revision ${expected} but it is at ${current}; re-read it and retry`,
    { metadata: { node_id: nodeId, current_revision: current } },
  );
}

/** `out_of_range`: the revision would pass the uint32 of the protocol. */
export function revisionExhausted(nodeId: string): EdgeplaneError {
  return new EdgeplaneError(
    "out_of_range",
    `desired state of node ${nodeId}: the revision would exceed ${MAX_DESIRED_REVISION}`,
    { metadata: { node_id: nodeId } },
  );
}

/** The revision a put writes: max(current + 1, minRevision). */
export function nextRevision(current: number, minRevision: number | undefined): number {
  return Math.max(current + 1, minRevision ?? 0);
}
