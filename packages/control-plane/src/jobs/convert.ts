/**
 * Store records → API messages and their JSON form. The REST JSON is always produced from the
 * proto message with proto field names, so REST and gRPC can never disagree on a shape.
 */
import {
  create,
  fromJson,
  type JsonValue,
  type JsonObject as PbJsonObject,
  toJson,
} from "@bufbuild/protobuf";
import { type Timestamp, timestampFromMs, ValueSchema } from "@bufbuild/protobuf/wkt";
import {
  type Job,
  JobSchema,
  type JobSpec,
  JobSpecSchema,
  type JobVersion,
  JobVersionSchema,
  type SpecChange,
  SpecChangeSchema,
} from "@edgeplane/api";
import type { JobRecord, JobVersionRecord } from "@edgeplane/store";
import type { SpecChangeJson } from "./diff.js";

/** JSON options used everywhere the REST API writes a message. */
export const JSON_OPTIONS = { useProtoFieldName: true } as const;

function ts(ms: number): Timestamp | undefined {
  return ms > 0 ? timestampFromMs(ms) : undefined;
}

/** A stored spec as the proto message. */
export function specToMessage(spec: Readonly<Record<string, unknown>>): JobSpec {
  return fromJson(JobSpecSchema, spec as PbJsonObject);
}

/** A job record as the proto message. */
export function jobToMessage(job: JobRecord): Job {
  return create(JobSchema, {
    id: job.id,
    spec: specToMessage(job.spec),
    status: {
      createdAt: ts(job.createdAt),
      updatedAt: ts(job.updatedAt),
      deploymentId: job.deploymentId,
      revision: job.revision,
      version: job.version,
      stableVersion: job.stableVersion,
      state: { stateType: job.state, message: job.stateMessage, details: { ...job.stateDetails } },
    },
  });
}

/** A job record in its REST JSON form (the Expanso shape). */
export function jobToJson(job: JobRecord): JsonValue {
  return toJson(JobSchema, jobToMessage(job), JSON_OPTIONS);
}

/** A version record as the proto message. */
export function versionToMessage(v: JobVersionRecord): JobVersion {
  return create(JobVersionSchema, {
    jobId: v.jobId,
    version: v.version,
    spec: specToMessage(v.spec),
    createdAt: ts(v.createdAt),
    kind: v.kind,
    rollbackToVersion: v.kind === "rollback" ? v.sourceVersion : 0,
    revertToVersion: v.kind === "revert" ? v.sourceVersion : 0,
  });
}

/** A version record in its REST JSON form. */
export function versionToJson(v: JobVersionRecord): JsonValue {
  return toJson(JobVersionSchema, versionToMessage(v), JSON_OPTIONS);
}

/** A diff entry as the proto message. */
export function changeToMessage(c: SpecChangeJson): SpecChange {
  return create(SpecChangeSchema, {
    path: c.path,
    oldValue: c.old_value === undefined ? undefined : fromJson(ValueSchema, c.old_value as JsonValue),
    newValue: c.new_value === undefined ? undefined : fromJson(ValueSchema, c.new_value as JsonValue),
  });
}
