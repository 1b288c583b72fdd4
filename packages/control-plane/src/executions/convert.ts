/**
 * Execution records and log lines → API messages and their REST JSON, so REST and gRPC never
 * disagree on a shape. The REST JSON is the proto JSON (proto field names) with every field
 * present, Pulp-style: an unset time, exit code, result, health or counters is `null`, not absent.
 */
import { create, fromJson, type JsonValue, toJson } from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import { type Execution, ExecutionSchema, type LogLine, LogLineSchema } from "@edgeplane/api";
import type { ExecutionRecord, LogLineRecord } from "@edgeplane/store";

const JSON_OPTIONS = { useProtoFieldName: true, alwaysEmitImplicit: true } as const;

function ts(ms: number): Timestamp | undefined {
  return ms > 0 ? timestampFromMs(ms) : undefined;
}

function iso(ms: number): string | null {
  return ms > 0 ? new Date(ms).toISOString() : null;
}

/** The stored result (JSON text) as a parsed JSON value; undefined when none. */
export function resultValue(r: ExecutionRecord): JsonValue | undefined {
  if (r.result === undefined) return undefined;
  try {
    return JSON.parse(r.result) as JsonValue;
  } catch {
    return undefined;
  }
}

/** An execution record as the proto message. */
export function executionToMessage(r: ExecutionRecord): Execution {
  const result = resultValue(r);
  return create(ExecutionSchema, {
    id: r.id,
    jobId: r.jobId,
    jobVersion: r.jobVersion,
    nodeId: r.nodeId,
    deploymentId: r.deploymentId,
    namespace: r.namespace,
    desiredState: r.desiredState,
    state: r.state,
    createdAt: ts(r.createdAt),
    startTime: ts(r.startTime),
    finishTime: ts(r.finishTime),
    exitCode: r.exitCode,
    result: result === undefined ? undefined : fromJson(ValueSchema, result),
    resultTruncated: r.resultTruncated,
    resultBytes: BigInt(r.resultBytes),
    exception: r.exception,
    progress: r.progress,
    health: r.health && {
      healthy: r.health.healthy,
      errorRate: r.health.errorRate,
      since: ts(r.health.since),
    },
    counters: r.counters && {
      messagesIn: BigInt(r.counters.messagesIn),
      messagesOut: BigInt(r.counters.messagesOut),
      messagesFiltered: BigInt(r.counters.messagesFiltered),
      messagesErrored: BigInt(r.counters.messagesErrored),
    },
    attempt: r.attempt,
    archived: r.archived,
  });
}

/** An execution record in its REST JSON form (every field present; unset ones `null`). */
export function executionToJson(r: ExecutionRecord): JsonValue {
  const json = toJson(ExecutionSchema, executionToMessage(r), JSON_OPTIONS) as Record<string, JsonValue>;
  for (const key of ["created_at", "start_time", "finish_time", "exit_code", "result", "health", "counters"])
    json[key] ??= null;
  if (r.health) (json.health as Record<string, JsonValue>).since ??= null;
  return json;
}

/** A stored log line as the proto message. */
export function logLineToMessage(l: LogLineRecord): LogLine {
  return create(LogLineSchema, {
    seq: BigInt(l.seq),
    time: ts(l.time),
    stream: l.stream,
    level: l.level,
    text: l.text,
  });
}

/** A stored log line in its REST JSON form (`seq` is a number, `time` ISO 8601 or null). */
export function logLineToJson(l: LogLineRecord): JsonValue {
  return { seq: l.seq, time: iso(l.time), stream: l.stream, level: l.level, text: l.text };
}

/** A log line for people: `INFO: text`. */
export function logLineText(l: Pick<LogLineRecord, "level" | "text">): string {
  return `${l.level}: ${l.text}`;
}
