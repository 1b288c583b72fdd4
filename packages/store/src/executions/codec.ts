/**
 * Execution records ⇄ their stored form, shared by both stores: a flat map of string fields
 * (a Redis hash in Redis; the same map in memory), so the Lua scripts read and write single
 * fields and never re-encode JSON (a result passes through as opaque text). Also the checks every
 * write passes before anything is stored, the stored form of a log line, and the store's errors.
 */
import { EdgeplaneError, invalidArgument } from "@edgeplane/core";
import {
  EXECUTION_DESIRED_STATES,
  type ExecutionStateType,
  isExecutionState,
  isTerminalExecutionState,
} from "./execution-state.js";
import type {
  ExecutionCountersRecord,
  ExecutionHealthRecord,
  ExecutionIdentity,
  ExecutionRecord,
  ExecutionReport,
  LogLineInput,
  LogLineRecord,
} from "./execution-store.js";

/** The largest stored result (1 MiB of JSON text); the control plane cuts before this. */
export const MAX_STORED_RESULT_BYTES = 1024 * 1024;
/** Longer exceptions are cut (they are one message, not a log). */
export const MAX_EXCEPTION_CHARS = 4096;
/** Longer log lines are cut to this many characters. */
export const MAX_LOG_LINE_CHARS = 16 * 1024;
/** Default log bounds. */
export const DEFAULT_LOG_MAX_LINES = 5000;
export const DEFAULT_LOG_MAX_BYTES = 512 * 1024;

/** A stored execution: field → value. */
export type StoredFields = Record<string, string>;

function checkId(field: string, v: unknown): string {
  if (typeof v !== "string" || v.length === 0 || v.length > 253 || /[\s\0]/.test(v))
    throw invalidArgument(field, "must be 1-253 characters without whitespace");
  return v;
}

function checkCount(field: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0)
    throw invalidArgument(field, `must be an integer >= 0 (got ${String(v)})`);
  return v;
}

function checkFinite(field: string, v: unknown, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max)
    throw invalidArgument(field, `must be a number from ${min} to ${max} (got ${String(v)})`);
  return v;
}

function checkString(field: string, v: unknown, max: number): string {
  if (typeof v !== "string") throw invalidArgument(field, "must be a string");
  return v.length > max ? v.slice(0, max) : v;
}

/** Checks an identity; returns a normalised copy. */
export function checkIdentity(x: ExecutionIdentity, field = "execution"): ExecutionIdentity {
  if (typeof x !== "object" || x === null) throw invalidArgument(field, "must be an execution identity");
  if (!(EXECUTION_DESIRED_STATES as readonly string[]).includes(x.desiredState))
    throw invalidArgument(`${field}.desired_state`, "must be running or stopped");
  return {
    id: checkId(`${field}.id`, x.id),
    jobId: checkId(`${field}.job_id`, x.jobId),
    jobVersion: checkCount(`${field}.job_version`, x.jobVersion),
    nodeId: checkId(`${field}.node_id`, x.nodeId),
    deploymentId: checkString(`${field}.deployment_id`, x.deploymentId, 253),
    namespace: checkString(`${field}.namespace`, x.namespace, 253),
    jobType: checkString(`${field}.job_type`, x.jobType, 32),
    restartPolicy: checkString(`${field}.restart_policy`, x.restartPolicy, 32),
    desiredState: x.desiredState,
  };
}

function checkHealth(h: ExecutionHealthRecord | undefined): ExecutionHealthRecord | undefined {
  if (h === undefined) return undefined;
  return {
    healthy: h.healthy === true,
    errorRate: checkFinite("health.error_rate", h.errorRate, 0, 1),
    since: checkCount("health.since", h.since),
  };
}

function checkCounters(c: ExecutionCountersRecord | undefined): ExecutionCountersRecord | undefined {
  if (c === undefined) return undefined;
  return {
    messagesIn: checkCount("counters.messages_in", c.messagesIn),
    messagesOut: checkCount("counters.messages_out", c.messagesOut),
    messagesFiltered: checkCount("counters.messages_filtered", c.messagesFiltered),
    messagesErrored: checkCount("counters.messages_errored", c.messagesErrored),
  };
}

/** Checks a report; returns a normalised copy (long exceptions cut). */
export function checkReport(r: ExecutionReport): ExecutionReport {
  if (typeof r !== "object" || r === null) throw invalidArgument("report", "must be an execution report");
  if (!isExecutionState(r.state) || (r.state as string) === "lost")
    throw invalidArgument("report.state", `${JSON.stringify(r.state)} is not a state an agent reports`);
  if (r.exitCode !== undefined && (!Number.isInteger(r.exitCode) || Math.abs(r.exitCode) > 2 ** 31))
    throw invalidArgument("report.exit_code", "must be a 32-bit integer");
  let result = r.result;
  if (result !== undefined) {
    if (result.json !== undefined && Buffer.byteLength(result.json) > MAX_STORED_RESULT_BYTES)
      throw new EdgeplaneError(
        "resource_exhausted",
        `report.result: larger than ${MAX_STORED_RESULT_BYTES} bytes; cut it before storing`,
      );
    result = {
      json: result.json,
      truncated: result.truncated === true,
      bytes: checkCount("report.result_bytes", result.bytes),
    };
  }
  return {
    id: checkId("report.id", r.id),
    nodeId: checkId("report.node_id", r.nodeId),
    state: r.state,
    attempt: checkCount("report.attempt", r.attempt),
    reportedAt: checkCount("report.reported_at", r.reportedAt),
    now: checkCount("report.now", r.now),
    startTime: checkCount("report.start_time", r.startTime),
    finishTime: checkCount("report.finish_time", r.finishTime),
    exitCode: r.exitCode,
    exception: checkString("report.exception", r.exception, MAX_EXCEPTION_CHARS),
    progress: checkFinite("report.progress", r.progress, 0, 1),
    health: checkHealth(r.health),
    counters: checkCounters(r.counters),
    result,
  };
}

const n = (v: number): string => String(v);

/** The stored fields of a new placeholder (state `waiting`, never reported). */
export function placeholderFields(x: ExecutionIdentity, now: number): StoredFields {
  return {
    id: x.id,
    job_id: x.jobId,
    job_version: n(x.jobVersion),
    node_id: x.nodeId,
    deployment_id: x.deploymentId,
    namespace: x.namespace,
    job_type: x.jobType,
    restart_policy: x.restartPolicy,
    desired_state: x.desiredState,
    state: "waiting",
    created_at: n(now),
    updated_at: n(now),
    start_time: "0",
    finish_time: "0",
    exit_code: "",
    result_truncated: "0",
    result_bytes: "0",
    exception: "",
    progress: "0",
    health: "",
    counters: "",
    attempt: "0",
    reported_at: "0",
    ended_at: "0",
    archived: "0",
    archived_at: "0",
    cancel_reason: "",
    canceled_at: "0",
  };
}

/**
 * The observed fields a report writes (state, attempt, reported_at, updated_at and ended_at are
 * written by the guard itself). The result fields only when the report carries a result.
 */
export function observedFields(r: ExecutionReport): StoredFields {
  const h = r.health;
  const c = r.counters;
  const out: StoredFields = {
    start_time: n(r.startTime),
    finish_time: n(r.finishTime),
    exit_code: r.exitCode === undefined ? "" : n(r.exitCode),
    exception: r.exception,
    progress: n(r.progress),
    health: h === undefined ? "" : `${h.healthy ? 1 : 0},${h.errorRate},${h.since}`,
    counters:
      c === undefined ? "" : `${c.messagesIn},${c.messagesOut},${c.messagesFiltered},${c.messagesErrored}`,
  };
  if (r.result !== undefined) {
    out.result = r.result.json ?? "";
    out.result_truncated = r.result.truncated ? "1" : "0";
    out.result_bytes = n(r.result.bytes);
  }
  return out;
}

function num(fields: StoredFields, key: string): number {
  const v = Number(fields[key] ?? "0");
  if (!Number.isFinite(v)) throw new Error(`field ${key} is not a number`);
  return v;
}

/** Reads a stored execution; `internal` (naming it) when it cannot be read. */
export function decodeExecution(fields: StoredFields): ExecutionRecord {
  try {
    const state = fields.state ?? "";
    if (!isExecutionState(state)) throw new Error(`unknown state ${JSON.stringify(state)}`);
    const desired = fields.desired_state === "stopped" ? "stopped" : "running";
    const health = fields.health ? fields.health.split(",").map(Number) : undefined;
    const counters = fields.counters ? fields.counters.split(",").map(Number) : undefined;
    const result = fields.result;
    return {
      id: fields.id ?? "",
      jobId: fields.job_id ?? "",
      jobVersion: num(fields, "job_version"),
      nodeId: fields.node_id ?? "",
      deploymentId: fields.deployment_id ?? "",
      namespace: fields.namespace ?? "",
      jobType: fields.job_type ?? "",
      restartPolicy: fields.restart_policy ?? "",
      desiredState: desired,
      state,
      createdAt: num(fields, "created_at"),
      updatedAt: num(fields, "updated_at"),
      startTime: num(fields, "start_time"),
      finishTime: num(fields, "finish_time"),
      exitCode: fields.exit_code ? Number(fields.exit_code) : undefined,
      result: result === undefined || result === "" ? undefined : result,
      resultTruncated: fields.result_truncated === "1",
      resultBytes: num(fields, "result_bytes"),
      exception: fields.exception ?? "",
      progress: num(fields, "progress"),
      health: health
        ? { healthy: health[0] === 1, errorRate: health[1] ?? 0, since: health[2] ?? 0 }
        : undefined,
      counters: counters
        ? {
            messagesIn: counters[0] ?? 0,
            messagesOut: counters[1] ?? 0,
            messagesFiltered: counters[2] ?? 0,
            messagesErrored: counters[3] ?? 0,
          }
        : undefined,
      attempt: num(fields, "attempt"),
      reportedAt: num(fields, "reported_at"),
      endedAt: num(fields, "ended_at"),
      archived: fields.archived === "1",
      archivedAt: num(fields, "archived_at"),
      cancelReason: fields.cancel_reason ?? "",
      canceledAt: num(fields, "canceled_at"),
    };
  } catch (err) {
    throw new EdgeplaneError(
      "internal",
      `execution ${fields.id ?? "?"} is stored in a form this version cannot read: ${(err as Error).message}`,
      { cause: err },
    );
  }
}

/** A flat `[field, value, field, value, ...]` reply (HGETALL) as a map. */
export function fieldsOf(flat: readonly unknown[]): StoredFields {
  const out: StoredFields = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

/** `not_found` for an execution id. */
export function executionNotFound(id: string): EdgeplaneError {
  return new EdgeplaneError(
    "not_found",
    `execution ${JSON.stringify(id)} not found; list a job's executions with GET /api/v1/jobs/{id}/executions`,
    { metadata: { execution_id: id } },
  );
}

/** `failed_precondition`: cancel of an execution that already ended on its node. */
export function alreadyEnded(id: string, state: ExecutionStateType | string): EdgeplaneError {
  return new EdgeplaneError(
    "failed_precondition",
    `execution ${id} is already ${state}; only waiting, running or lost executions can be canceled`,
    { metadata: { execution_id: id, current_state: state } },
  );
}

/** Whether cancel is refused in this state. */
export function cancelRefused(state: string): boolean {
  return isTerminalExecutionState(state);
}

/**
 * A log line in its stored form, without its position: the store prefixes `{"s":<seq>,` (so a
 * Lua script can number lines without decoding them). Short keys: every byte counts toward the
 * log's byte bound.
 */
export function encodeLogLine(line: LogLineInput): string {
  return JSON.stringify({ a: line.agentSeq, t: line.time, o: line.stream, l: line.level, x: line.text });
}

/** Prefixes a stored line with its position (the same text Redis stores). */
export function numberLogLine(seq: number, encoded: string): string {
  return `{"s":${seq},${encoded.slice(1)}`;
}

/** Reads a stored log line. */
export function decodeLogLine(text: string): LogLineRecord {
  try {
    const o = JSON.parse(text) as { s: number; a: number; t: number; o: string; l: string; x: string };
    return { seq: o.s, agentSeq: o.a, time: o.t, stream: o.o, level: o.l, text: o.x };
  } catch (err) {
    throw new EdgeplaneError("internal", `a stored log line cannot be read: ${(err as Error).message}`, {
      cause: err,
    });
  }
}

/** Checks and normalises lines to append (cuts long text; levels and streams are kept short). */
export function checkLogLines(lines: readonly LogLineInput[]): LogLineInput[] {
  return lines.map((l, i) => {
    if (typeof l !== "object" || l === null) throw invalidArgument(`lines[${i}]`, "must be a log line");
    return {
      agentSeq: checkCount(`lines[${i}].agent_seq`, l.agentSeq),
      time: checkCount(`lines[${i}].time`, l.time),
      stream: checkString(`lines[${i}].stream`, l.stream, 16),
      level: checkString(`lines[${i}].level`, l.level, 8),
      text: checkString(`lines[${i}].text`, l.text, MAX_LOG_LINE_CHARS),
    };
  });
}

/** Validates bounds, applying defaults. */
export function logBounds(b: { maxLines?: number; maxBytes?: number } = {}): {
  maxLines: number;
  maxBytes: number;
} {
  const maxLines = b.maxLines ?? DEFAULT_LOG_MAX_LINES;
  const maxBytes = b.maxBytes ?? DEFAULT_LOG_MAX_BYTES;
  if (!Number.isSafeInteger(maxLines) || maxLines < 1)
    throw invalidArgument("logs.max_lines", "must be >= 1");
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1)
    throw invalidArgument("logs.max_bytes", "must be >= 1");
  return { maxLines, maxBytes };
}
