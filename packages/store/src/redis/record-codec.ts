/**
 * The packed form of a job record and of a kept version, as stored in the `jobs:rec` and
 * `jobs:ver` hashes.
 *
 * A record is `<meta>\n<spec>`: `meta` is a JSON array with one slot per field (positions in
 * {@link RECORD_FIELDS}, which also generates the Lua constants), `spec` the spec's JSON. Neither
 * part can contain a raw newline (JSON escapes it), so the first `\n` splits them. Field names
 * are not repeated per job, and the Lua scripts decode and re-encode only the small meta part
 * (cjson) while the spec passes through as an opaque string.
 *
 * A kept version is `[createdAt, kind, sourceVersion]\n<spec>`.
 */
import { EdgeplaneError, type JobStateType, type JobType } from "@edgeplane/core";
import type { JobRecord, JobVersionRecord, JsonObject, VersionKind } from "../job-store.js";
import { canonicalJson } from "../semantics.js";

/**
 * The slots of the meta array, in order. `labels` is 0 when the labels equal `spec.labels`
 * (the usual case), so they are not stored twice. `digest` is the spec digest the identical-put
 * check compares; `versionCreatedAt`/`versionKind`/`sourceVersion` describe the current version
 * (which is not in the versions hash); `oldestVersion` is the oldest version still kept.
 */
export const RECORD_FIELDS = [
  "namespace",
  "name",
  "type",
  "version",
  "revision",
  "stableVersion",
  "state",
  "message",
  "details",
  "deploymentId",
  "createdAt",
  "updatedAt",
  "labels",
  "digest",
  "versionCreatedAt",
  "versionKind",
  "sourceVersion",
  "oldestVersion",
] as const;

/** The slot names. */
export type RecordField = (typeof RECORD_FIELDS)[number];

/** The decoded meta array. */
export interface RecordMeta {
  readonly namespace: string;
  readonly name: string;
  readonly type: JobType;
  readonly version: number;
  readonly revision: number;
  readonly stableVersion: number;
  readonly state: JobStateType;
  readonly message: string;
  readonly details: Readonly<Record<string, string>>;
  readonly deploymentId: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly labels: 0 | Readonly<Record<string, string>>;
  readonly digest: string;
  readonly versionCreatedAt: number;
  readonly versionKind: VersionKind;
  readonly sourceVersion: number;
  readonly oldestVersion: number;
}

/** Lua constants `R_NAMESPACE = 1`, ... (Lua arrays are 1-based), prepended to every script. */
export const LUA_RECORD_FIELDS = RECORD_FIELDS.map(
  (f, i) => `local R_${f.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()} = ${i + 1}`,
).join("\n");

/** What to store in the `labels` slot: 0 when the labels are exactly `spec.labels`. */
export function labelsSlot(
  labels: Readonly<Record<string, string>>,
  spec: JsonObject,
): 0 | Readonly<Record<string, string>> {
  return canonicalJson(labels) === canonicalJson(spec.labels ?? {}) ? 0 : labels;
}

function corrupt(what: string, cause?: unknown): EdgeplaneError {
  return new EdgeplaneError("internal", `corrupt job store data: ${what}`, { cause });
}

function split(packed: string, what: string): [string, string] {
  const nl = packed.indexOf("\n");
  if (nl < 0) throw corrupt(`${what} has no meta/spec separator`);
  return [packed.slice(0, nl), packed.slice(nl + 1)];
}

/**
 * Encodes a record byte for byte as the Lua scripts do (cjson also escapes "/" and DEL), for
 * tools that write records directly, like the benchmark's bulk loader.
 */
export function encodeRecord(meta: RecordMeta, specJson: string): string {
  const metaJson = JSON.stringify(RECORD_FIELDS.map((f) => meta[f]))
    .replace(/\//g, "\\/")
    .replace(/\x7f/g, "\\u007f");
  return `${metaJson}\n${specJson}`;
}

/** Decodes a packed record into its meta and spec. */
export function decodeMeta(id: string, packed: string): { meta: RecordMeta; spec: JsonObject } {
  const [metaJson, specJson] = split(packed, `record ${id}`);
  let slots: unknown[];
  let spec: JsonObject;
  try {
    slots = JSON.parse(metaJson) as unknown[];
    spec = JSON.parse(specJson) as JsonObject;
  } catch (err) {
    throw corrupt(`record ${id} is not JSON`, err);
  }
  if (!Array.isArray(slots) || slots.length !== RECORD_FIELDS.length)
    throw corrupt(`record ${id} has a bad meta`);
  const meta = Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, slots[i]])) as Record<RecordField, unknown>;
  // cjson encodes an empty Lua table as {}, which is what an empty details/labels object is.
  return { meta: meta as unknown as RecordMeta, spec };
}

/** Decodes a packed record into a {@link JobRecord}. */
export function decodeRecord(id: string, packed: string): JobRecord {
  const { meta, spec } = decodeMeta(id, packed);
  const specLabels = spec.labels;
  // A copy, so that a record's labels and its spec's labels are never the same object.
  const labels =
    meta.labels === 0
      ? specLabels !== null && typeof specLabels === "object" && !Array.isArray(specLabels)
        ? { ...(specLabels as Record<string, string>) }
        : {}
      : meta.labels;
  return {
    id,
    namespace: meta.namespace,
    name: meta.name,
    type: meta.type,
    labels,
    spec,
    version: meta.version,
    revision: meta.revision,
    stableVersion: meta.stableVersion,
    state: meta.state,
    stateMessage: meta.message,
    stateDetails: meta.details,
    deploymentId: meta.deploymentId,
    createdAt: meta.createdAt,
    updatedAt: meta.updatedAt,
  };
}

/** Decodes a packed kept version. */
export function decodeVersion(jobId: string, version: number, packed: string): JobVersionRecord {
  const [metaJson, specJson] = split(packed, `version ${jobId}:${version}`);
  try {
    const [createdAt, kind, sourceVersion] = JSON.parse(metaJson) as [number, VersionKind, number];
    return { jobId, version, spec: JSON.parse(specJson) as JsonObject, createdAt, kind, sourceVersion };
  } catch (err) {
    throw corrupt(`version ${jobId}:${version} is not JSON`, err);
  }
}
