/**
 * The packed form of a job record and of a kept version, as stored in the `jobs:rec` and
 * `jobs:ver` hashes.
 *
 * A record is `<meta>\n<spec>`: `meta` is a JSON array with one slot per field (positions in
 * {@link RECORD_FIELDS}, which also generates the Lua constants), `spec` the stored spec: its
 * JSON compressed (or plain JSON, see `spec-codec.ts`). The meta cannot contain a raw newline
 * (JSON escapes it), so the first `\n` splits them. Field names are not repeated per job, and
 * the Lua scripts decode and re-encode only the small meta part (cjson) while the spec passes
 * through as an opaque string: Node compresses it before a put and decompresses it on read.
 *
 * A kept version is `[createdAt, kind, sourceVersion]\n<spec>`, its spec stored the same way
 * (the scripts move a record's spec part into a kept version unchanged).
 */
import { EdgeplaneError, type JobStateType, type JobType } from "@edgeplane/core";
import type { JobRecord, JobVersionRecord, JsonObject, VersionKind } from "../job-store.js";
import { canonicalJson } from "../semantics.js";
import { packSpec, unpackSpec } from "./spec-codec.js";

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
 * The stored form of a spec's JSON (compressed when that makes it shorter), as a put sends it.
 * The store calls it right before writing, so the spec is also remembered for the reads that
 * follow (see `spec-codec.ts`); tools writing records directly use {@link encodeRecord}.
 */
export function encodeSpec(specJson: string): string {
  return packSpec(specJson, { remember: true });
}

/**
 * Encodes a record byte for byte as the Lua scripts do (cjson also escapes "/" and DEL, and the
 * spec is stored as {@link encodeSpec} makes it), for tools that write records directly, like the
 * benchmark's bulk loader.
 */
export function encodeRecord(meta: RecordMeta, specJson: string): string {
  const metaJson = JSON.stringify(RECORD_FIELDS.map((f) => meta[f]))
    .replace(/\//g, "\\/")
    .replace(/\x7f/g, "\\u007f");
  return `${metaJson}\n${packSpec(specJson)}`;
}

/** How to decode: `remember` keeps the spec's JSON for the next decode of the same spec. */
export interface DecodeOptions {
  readonly remember?: boolean;
}

/** The meta slots and the spec of a packed record. */
function decodeParts(
  id: string,
  packed: string,
  options?: DecodeOptions,
): { slots: unknown[]; spec: JsonObject } {
  const [metaJson, stored] = split(packed, `record ${id}`);
  const specJson = unpackSpec(stored, `record ${id}`, options);
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
  // cjson encodes an empty Lua table as {}, which is what an empty details/labels object is.
  return { slots, spec };
}

/** Decodes a packed record into its meta and spec. */
export function decodeMeta(id: string, packed: string): { meta: RecordMeta; spec: JsonObject } {
  const { slots, spec } = decodeParts(id, packed);
  const meta = Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, slots[i]])) as Record<RecordField, unknown>;
  return { meta: meta as unknown as RecordMeta, spec };
}

// Slot positions, for reading the meta array directly (a page decodes 100 records).
const S = Object.fromEntries(RECORD_FIELDS.map((f, i) => [f, i])) as Record<RecordField, number>;

/**
 * Decodes a packed record into a {@link JobRecord}. `remember` (single-job reads): keep the spec's
 * JSON, since the same job is likely read again soon (see `spec-codec.ts`).
 */
export function decodeRecord(id: string, packed: string, options?: DecodeOptions): JobRecord {
  const { slots, spec } = decodeParts(id, packed, options);
  const own = slots[S.labels] as RecordMeta["labels"];
  const specLabels = spec.labels;
  // A copy, so that a record's labels and its spec's labels are never the same object.
  const labels =
    own === 0
      ? specLabels !== null && typeof specLabels === "object" && !Array.isArray(specLabels)
        ? { ...(specLabels as Record<string, string>) }
        : {}
      : own;
  return {
    id,
    namespace: slots[S.namespace] as string,
    name: slots[S.name] as string,
    type: slots[S.type] as RecordMeta["type"],
    labels,
    spec,
    version: slots[S.version] as number,
    revision: slots[S.revision] as number,
    stableVersion: slots[S.stableVersion] as number,
    state: slots[S.state] as RecordMeta["state"],
    stateMessage: slots[S.message] as string,
    stateDetails: slots[S.details] as RecordMeta["details"],
    deploymentId: slots[S.deploymentId] as string,
    createdAt: slots[S.createdAt] as number,
    updatedAt: slots[S.updatedAt] as number,
  };
}

/** Decodes a packed kept version. */
export function decodeVersion(jobId: string, version: number, packed: string): JobVersionRecord {
  const what = `version ${jobId}:${version}`;
  const [metaJson, stored] = split(packed, what);
  const specJson = unpackSpec(stored, what);
  try {
    const [createdAt, kind, sourceVersion] = JSON.parse(metaJson) as [number, VersionKind, number];
    return { jobId, version, spec: JSON.parse(specJson) as JsonObject, createdAt, kind, sourceVersion };
  } catch (err) {
    throw corrupt(`${what} is not JSON`, err);
  }
}
