/**
 * What both deployment stores share: the checks of every write (so memory and Redis refuse the
 * same things), the stored text of records (with the revision spliced in where the store decides
 * it), the encoding of a node's version entry, and the errors, built in one place.
 */
import { EdgeplaneError, invalidArgument, isEdgeplaneError } from "@edgeplane/core";
import type { JsonObject } from "../job-store.js";
import type {
  DeploymentGuard,
  DeploymentWrite,
  Fence,
  NodeVersion,
  VersionAssignment,
} from "./deployment-store.js";

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkId(field: string, id: unknown): string {
  if (typeof id !== "string" || id.length === 0 || id.length > 253 || /[\s|]/.test(id)) {
    throw invalidArgument(field, "must be 1-253 characters without whitespace or '|'");
  }
  return id;
}

function checkTime(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw invalidArgument(field, `must be a time in ms >= 0 (got ${String(v)})`);
  return v;
}

/** Checks an epoch or revision: a positive safe integer. */
export function checkPositive(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1)
    throw invalidArgument(field, `must be an integer >= 1 (got ${String(v)})`);
  return v;
}

/** Checks a fence (when given). */
export function checkFence(fence: Fence | undefined): void {
  if (fence !== undefined) checkPositive("fence.epoch", fence.epoch);
}

/** The longest reason a person may give with a control. */
export const MAX_CONTROL_REASON = 1024;

/** Checks a control request (its name and the person's reason) before anything is stored. */
export function checkControlRequest(control: string, reason: string | undefined): void {
  if (typeof control !== "string" || !/^[a-z]{1,16}$/.test(control))
    throw invalidArgument("control", "must be a control name");
  if (reason === undefined) return;
  if (typeof reason !== "string") throw invalidArgument("reason", "must be a string");
  if (reason.length > MAX_CONTROL_REASON)
    throw invalidArgument("reason", `must be at most ${MAX_CONTROL_REASON} characters, got ${reason.length}`);
}

/** The most node entries, and the most targets, one deployment write may carry. */
export const MAX_DEPLOYMENT_NODES = 100_000;

/**
 * Checks a deployment write before anything is stored: the head fields, the record and summary,
 * the node entries, and the targets (which only `create` may carry: they never change).
 */
export function checkDeploymentWrite(w: DeploymentWrite, op: "create" | "update"): void {
  if (!isObject(w)) throw invalidArgument("deployment", "must be an object");
  checkId("id", w.id);
  checkId("job_id", w.jobId);
  if (typeof w.state !== "string" || !/^[a-z_]{1,32}$/.test(w.state))
    throw invalidArgument("state", "must be a state name (lowercase letters and '_')");
  if (typeof w.active !== "boolean") throw invalidArgument("active", "must be a boolean");
  checkTime("created_at", w.createdAt);
  checkTime("now", w.now);
  if (!isObject(w.record)) throw invalidArgument("record", "must be a JSON object");
  if (w.summary !== undefined && !isObject(w.summary))
    throw invalidArgument("summary", "must be a JSON object when given");
  if (w.nodes !== undefined) checkNodeEntries(w.nodes);
  if (w.targets !== undefined) {
    if (op === "update")
      throw invalidArgument("targets", "are frozen at create; an update must not carry them");
    if (!Array.isArray(w.targets)) throw invalidArgument("targets", "must be a list of node ids");
    if (w.targets.length > MAX_DEPLOYMENT_NODES)
      throw invalidArgument("targets", `must be at most ${MAX_DEPLOYMENT_NODES}, got ${w.targets.length}`);
    w.targets.forEach((id, i) => {
      checkId(`targets[${i}]`, id);
    });
  }
}

function checkNodeEntries(entries: DeploymentWrite["nodes"]): void {
  if (!Array.isArray(entries))
    throw invalidArgument("nodes", "must be a list of [node id, JSON object] pairs");
  if (entries.length > MAX_DEPLOYMENT_NODES)
    throw invalidArgument("nodes", `must be at most ${MAX_DEPLOYMENT_NODES} entries, got ${entries.length}`);
  entries.forEach((e: unknown, i) => {
    if (!Array.isArray(e) || e.length !== 2)
      throw invalidArgument(`nodes[${i}]`, "must be a [node id, JSON object] pair");
    checkId(`nodes[${i}]`, e[0]);
    if (!isObject(e[1])) throw invalidArgument(`nodes[${i}]`, "the entry must be a JSON object");
  });
}

/** The node entries of a (checked) write as stored: `[id, entry JSON, id, entry JSON, …]`. */
export function encodeNodeEntries(entries: DeploymentWrite["nodes"]): string[] {
  const out: string[] = [];
  for (const [id, entry] of entries ?? []) out.push(id, JSON.stringify(entry));
  return out;
}

/** A node table from stored `[id, entry JSON]` pairs; `internal` naming the node when one cannot be read. */
export function decodeNodeTable(
  id: string,
  pairs: Iterable<readonly [string, string]>,
): Record<string, JsonObject> {
  const entries: Array<[string, JsonObject]> = [];
  for (const [node, text] of pairs) entries.push([node, decodeBody(id, `node entry ${node}`, text)]);
  // fromEntries, not assignment: a node id such as `__proto__` stays an own entry.
  return Object.fromEntries(entries);
}

/** Reads a stored target list; `internal` naming the deployment when it cannot be read. */
export function decodeTargets(id: string, text: string): string[] {
  try {
    const v = JSON.parse(text) as unknown;
    if (!Array.isArray(v) || v.some((t) => typeof t !== "string")) throw new Error("not a list of ids");
    return v as string[];
  } catch (err) {
    throw new EdgeplaneError(
      "internal",
      `stored targets of deployment ${id} cannot be read: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** Checks the guard of an update. */
export function checkGuard(g: DeploymentGuard): void {
  if (!isObject(g)) throw invalidArgument("guard", "must be an object");
  checkPositive("expected_revision", g.expectedRevision);
  if (g.allowedFrom !== undefined) {
    if (!Array.isArray(g.allowedFrom) || g.allowedFrom.some((s) => typeof s !== "string" || s.includes(",")))
      throw invalidArgument("allowed_from", "must be a list of state names");
  }
  checkFence(g.fence);
}

/** Checks node ids of a versions command. */
export function checkNodeIds(ids: readonly string[]): void {
  if (!Array.isArray(ids)) throw invalidArgument("node_ids", "must be a list");
  ids.forEach((id, i) => {
    checkId(`node_ids[${i}]`, id);
  });
}

/** Checks the versions a deployment update assigns (`updateAssigning`). */
export function checkVersionAssignment(a: VersionAssignment): void {
  if (typeof a !== "object" || a === null) throw invalidArgument("assign", "must be an object");
  checkPositive("assign.version", a.version);
  if (!Array.isArray(a.nodeIds)) throw invalidArgument("assign.node_ids", "must be a list");
  if (a.nodeIds.length > MAX_DEPLOYMENT_NODES)
    throw invalidArgument(
      "assign.node_ids",
      `must be at most ${MAX_DEPLOYMENT_NODES} node ids, got ${a.nodeIds.length}`,
    );
  a.nodeIds.forEach((id, i) => {
    checkId(`assign.node_ids[${i}]`, id);
  });
}

/** Checks the job id and version of a versions command. */
export function checkVersionCommand(cmd: { jobId: string; version: number; fence?: Fence }): void {
  checkId("job_id", cmd.jobId);
  checkPositive("version", cmd.version);
  checkFence(cmd.fence);
}

/**
 * The stored text of a record or summary without its revision: the object's JSON with any
 * `revision` key left out. The writer splices `"revision":N,` in after the opening brace.
 */
export function encodeBody(o: JsonObject): string {
  const text = JSON.stringify({ ...o, revision: undefined });
  if (text === "{}") return '{"_":0}';
  return text;
}

/** The stored text with the revision spliced in (what the Lua script does, for the memory store). */
export function spliceRevision(revision: number, body: string): string {
  return `{"revision":${revision},${body.slice(1)}`;
}

/** Parses stored text; `internal` naming the deployment when it cannot be read. */
export function decodeBody(id: string, what: string, text: string): JsonObject {
  try {
    const o = JSON.parse(text) as unknown;
    if (!isObject(o)) throw new Error("not an object");
    return o;
  } catch (err) {
    throw new EdgeplaneError(
      "internal",
      `stored ${what} of deployment ${id} cannot be read: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
}

/** `version|deployment|previous version|previous deployment`. */
export function encodeNodeVersion(v: NodeVersion): string {
  return `${v.version}|${v.deploymentId}|${v.previousVersion}|${v.previousDeploymentId}`;
}

/** Reads a stored version entry; undefined when it cannot be read (skipped). */
export function decodeNodeVersion(text: string): NodeVersion | undefined {
  const parts = text.split("|");
  if (parts.length !== 4) return undefined;
  const version = Number(parts[0]);
  const previousVersion = Number(parts[2]);
  if (!Number.isSafeInteger(version) || !Number.isSafeInteger(previousVersion)) return undefined;
  return { version, deploymentId: parts[1] ?? "", previousVersion, previousDeploymentId: parts[3] ?? "" };
}

/** `not_found`: no deployment with this id. */
export function deploymentNotFound(id: string): EdgeplaneError {
  return new EdgeplaneError(
    "not_found",
    `deployment ${id} not found; list a job's deployments with GET /api/v1/deployments?job_id=…`,
    { metadata: { deployment_id: id } },
  );
}

/** `aborted`: the revision check-and-set lost. */
export function deploymentConflict(id: string, expected: number, current: number): EdgeplaneError {
  return new EdgeplaneError(
    "aborted",
    `deployment ${id}: expected revision ${expected} but it is at ${current}; re-read it and retry`,
    { metadata: { deployment_id: id, current_revision: current } },
  );
}

/** `failed_precondition`: the stored state is not one the write may start from. */
export function deploymentStateRefused(
  id: string,
  current: string,
  target: string,
  allowed: readonly string[],
): EdgeplaneError {
  return new EdgeplaneError(
    "failed_precondition",
    `deployment ${id} is ${current} and cannot become ${target} (only from: ${allowed.join(", ") || "none"})`,
    { metadata: { deployment_id: id, current_state: current, target_state: target } },
  );
}

/**
 * `failed_precondition` with `metadata.fenced`: the writer's epoch is not the lease's current
 * one (it was deposed, or its lease expired): a late write of an old leader.
 */
export function fencedWrite(epoch: number, current: string | undefined): EdgeplaneError {
  const now = current === undefined ? "the lease is free" : `the lease is held with epoch ${current}`;
  return new EdgeplaneError(
    "failed_precondition",
    `write refused: it carries leader epoch ${epoch} but ${now} (this control plane is no longer the leader)`,
    { metadata: { fenced: true, epoch, current_epoch: current ?? "" } },
  );
}

/** Whether an error is a fencing refusal. */
export function isFenced(err: unknown): boolean {
  return isEdgeplaneError(err) && err.metadata.fenced === true;
}
