/**
 * The rules both JobStore implementations share, as pure functions: defaults, argument checks,
 * the canonical spec digest, the order of ListJobs, and the page-collection algorithm. Keeping
 * them here (and not once per store) is what makes the memory and Redis stores observably
 * identical; the conformance suite checks that they are.
 */
import { createHash } from "node:crypto";
import {
  EdgeplaneError,
  invalidArgument,
  isJobState,
  isJobType,
  JOB_STATES,
  JOB_TYPES,
  type JobStateType,
  type JobType,
} from "@edgeplane/core";
import { checkFence } from "./deployments/codec.js";
import type {
  JobCursor,
  JobOrderBy,
  JobRecord,
  JsonObject,
  ListJobsPage,
  ListJobsQuery,
  PutJobCommand,
  StatusUpdate,
  VersionKind,
  WriteGuard,
} from "./job-store.js";

/** Versions kept per job when `PutJobCommand.maxVersions` is not given. */
export const DEFAULT_MAX_VERSIONS = 50;

/** How long an idempotency key is remembered: 24 h, long enough for any client retry loop. */
export const IDEMPOTENCY_TTL_MS = 24 * 60 * 60 * 1000;

/**
 * The largest time the stores accept (year 5138). Redis Lua numbers print with 14 significant
 * digits, so 14-digit times are the most that survive a script unchanged (they also fit the
 * 12 hex digits of the time indexes).
 */
export const MAX_TIME_MS = 99_999_999_999_999;

/** The states a job can be in while it owns its (namespace, name). */
export const LIVE_STATES: readonly JobStateType[] = JOB_STATES.filter((s) => s !== "deleted");

/** The version kinds (how a version came to be). */
export const VERSION_KINDS: readonly VersionKind[] = ["submit", "revert", "rollback"];

/** The message a job gets when a new version restarts its lifecycle. */
export function submittedMessage(version: number): string {
  return `version ${version} submitted`;
}

/** The message a deleted job carries. */
export const DELETED_MESSAGE = "job deleted";

/** At most this many jobs are examined per ListJobs call with a label filter, unless told otherwise. */
export function defaultMaxScan(limit: number): number {
  return Math.max(1000, 10 * limit);
}

/**
 * Whether `JSON.stringify(value)` already is the canonical JSON of `value`: plain JSON data (no
 * `undefined`, functions or class instances) whose object keys come in sorted order at every
 * depth, as `validateJobSpec` returns a spec. Walks the value without allocating.
 */
export function isCanonical(value: unknown): boolean {
  if (value === null) return true;
  const type = typeof value;
  if (type === "string" || type === "number" || type === "boolean") return true;
  if (type !== "object") return false;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) if (!isCanonical(value[i])) return false;
    return true;
  }
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto !== Object.prototype && proto !== null) return false;
  const object = value as Record<string, unknown>;
  let previous: string | undefined;
  // for-in enumerates keys in the order JSON.stringify writes them (integer-like keys first).
  for (const key in object) {
    if (!Object.hasOwn(object, key)) return false;
    if (previous !== undefined && !(previous < key)) return false;
    const v = object[key];
    if (v === undefined || !isCanonical(v)) return false;
    previous = key;
  }
  return true;
}

/**
 * JSON with object keys sorted at every depth (arrays keep their order): two specs are "the
 * same" exactly when their canonical strings are equal, whatever key order the caller used.
 * `undefined` members are dropped, as `JSON.stringify` does. A value that is canonical already
 * (see {@link isCanonical}) is written by `JSON.stringify` at once.
 */
export function canonicalJson(value: unknown): string {
  return isCanonical(value) ? JSON.stringify(value) : sortedJson(value);
}

function sortedJson(value: unknown): string {
  if (value === null || typeof value !== "object") return JSON.stringify(value) ?? "null";
  // Loops rather than map/filter/join: this runs on every submitted spec (specDigest).
  if (Array.isArray(value)) {
    let out = "[";
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (i > 0) out += ",";
      out += v === undefined ? "null" : sortedJson(v);
    }
    return `${out}]`;
  }
  const object = value as Record<string, unknown>;
  const keys = Object.keys(object).sort();
  let out = "{";
  for (const k of keys) {
    const v = object[k];
    if (v === undefined) continue;
    if (out.length > 1) out += ",";
    out += `${JSON.stringify(k)}:${sortedJson(v)}`;
  }
  return `${out}}`;
}

/**
 * The digest that decides whether a put changes anything: type, labels and spec, canonical.
 * 72 bits of SHA-256 (12 base64url chars): only two versions of the same job are ever compared,
 * so a collision is out of reach while the stored record stays small.
 */
export function specDigest(
  type: JobType,
  labels: Readonly<Record<string, string>>,
  spec: JsonObject,
  specJson?: string,
): string {
  // canonicalJson({ l, s, t }), with the spec's own JSON when the caller has it and it is canonical.
  const s = specJson !== undefined && isCanonical(spec) ? specJson : canonicalJson(spec);
  const canonical = `{"l":${canonicalJson(labels)},"s":${s},"t":${JSON.stringify(type)}}`;
  return createHash("sha256").update(canonical).digest("base64url").slice(0, 12);
}

/** A deep copy through JSON: what a store keeps is exactly what it can give back. */
export function jsonClone<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

/**
 * Compares strings by Unicode code point, which is the byte order of their UTF-8 form: the
 * order Redis uses for lexicographic sorted sets (JavaScript's `<` compares UTF-16 code units,
 * which differs above U+FFFF).
 */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xs = x >= 0xd800 && x <= 0xdfff;
    const ys = y >= 0xd800 && y <= 0xdfff;
    // A surrogate (part of a code point above U+FFFF) sorts after every BMP unit.
    if (xs !== ys) return xs ? 1 : -1;
    return x < y ? -1 : 1;
  }
  return a.length - b.length;
}

/** The sort key of a job in the given order. */
export function sortKeyOf(job: JobRecord, orderBy: JobOrderBy): number | string {
  if (orderBy === "name") return job.name;
  return orderBy === "created_at" ? job.createdAt : job.updatedAt;
}

/** The cursor that continues a listing after `job`. */
export function cursorOf(job: JobRecord, orderBy: JobOrderBy): JobCursor {
  return { key: sortKeyOf(job, orderBy), id: job.id };
}

/** Compares two (key, id) positions in ascending order: key first, then id as a tie-break. */
export function comparePositions(a: JobCursor, b: JobCursor): number {
  let c: number;
  if (typeof a.key === "number" && typeof b.key === "number") c = a.key - b.key;
  else c = compareCodePoints(String(a.key), String(b.key));
  return c !== 0 ? c : compareCodePoints(a.id, b.id);
}

/**
 * The states a query reads. An explicit `states` list is taken as is (asking for "deleted"
 * shows deleted jobs); otherwise every state but "deleted", plus "deleted" with `includeDeleted`.
 */
export function effectiveStates(query: ListJobsQuery): JobStateType[] {
  if (query.states !== undefined && query.states.length > 0)
    return JOB_STATES.filter((s) => query.states?.includes(s));
  return query.includeDeleted ? [...JOB_STATES] : [...LIVE_STATES];
}

/** The types a query reads (all when none are given). */
export function effectiveTypes(query: ListJobsQuery): JobType[] {
  if (query.types !== undefined && query.types.length > 0)
    return JOB_TYPES.filter((t) => query.types?.includes(t));
  return [...JOB_TYPES];
}

/** Checks a time argument: an integer number of ms in the range the indexes can hold. */
export function checkTime(field: string, value: number): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_TIME_MS) {
    throw invalidArgument(
      field,
      `must be an integer number of ms between 0 and ${MAX_TIME_MS}, got ${value}`,
    );
  }
}

function checkCount(field: string, value: number | undefined, min: number): void {
  if (value !== undefined && (!Number.isSafeInteger(value) || value < min)) {
    throw invalidArgument(field, `must be an integer >= ${min}, got ${value}`);
  }
}

function checkNoNul(field: string, value: string): void {
  if (value.length === 0) throw invalidArgument(field, "must not be empty");
  // NUL separates name and id in the name index; ":" separates key segments of the namespace.
  if (value.includes("\0")) throw invalidArgument(field, "must not contain NUL characters");
}

/**
 * Checks what the store itself relies on (the service layer validates everything else):
 * non-empty names and ids without NUL, a namespace without ":" or "*", integer times.
 */
export function checkPutCommand(cmd: PutJobCommand): void {
  checkNoNul("namespace", cmd.namespace);
  if (cmd.namespace.includes(":") || cmd.namespace === "*") {
    throw invalidArgument(
      "namespace",
      `must not contain ":" or be "*", got ${JSON.stringify(cmd.namespace)}`,
    );
  }
  checkNoNul("name", cmd.name);
  checkNoNul("newId", cmd.newId);
  if (!isJobType(cmd.type)) throw invalidArgument("type", `unknown job type ${JSON.stringify(cmd.type)}`);
  if (cmd.spec === null || typeof cmd.spec !== "object" || Array.isArray(cmd.spec)) {
    throw invalidArgument("spec", "must be a JSON object");
  }
  checkTime("now", cmd.now);
  checkCount("expectedVersion", cmd.expectedVersion, 0);
  checkCount("expectedRevision", cmd.expectedRevision, 0);
  checkCount("maxVersions", cmd.maxVersions, 1);
  checkCount("sourceVersion", cmd.sourceVersion, 0);
  if (cmd.kind !== undefined && !VERSION_KINDS.includes(cmd.kind)) {
    throw invalidArgument("kind", `unknown version kind ${JSON.stringify(cmd.kind)}`);
  }
  if (cmd.idempotencyKey !== undefined && cmd.idempotencyKey.length === 0) {
    throw invalidArgument("idempotencyKey", "must not be empty when given");
  }
  checkFence(cmd.fence);
}

/** Checks a status update; "deleted" is refused because only deleteJob frees a job's name. */
export function checkStatusUpdate(update: StatusUpdate): void {
  if (!isJobState(update.state))
    throw invalidArgument("state", `unknown job state ${JSON.stringify(update.state)}`);
  if (update.state === "deleted") throw invalidArgument("state", "use deleteJob to delete a job");
  checkTime("now", update.now);
  checkCount("stableVersion", update.stableVersion, 0);
}

/** Checks a revision guard's number, shared by updateStatus and deleteJob. */
export function checkGuard(guard: WriteGuard): void {
  checkCount("expectedRevision", guard.expectedRevision, 0);
  checkFence(guard.fence);
  for (const s of guard.allowedFrom ?? []) {
    if (!isJobState(s)) throw invalidArgument("allowedFrom", `unknown job state ${JSON.stringify(s)}`);
  }
}

/** Checks the parts of a ListJobs query the store relies on. */
export function checkListQuery(query: ListJobsQuery): void {
  if (query.namespace !== "*") {
    checkNoNul("namespace", query.namespace);
    if (query.namespace.includes(":")) throw invalidArgument("namespace", 'must not contain ":"');
  }
  checkCount("limit", query.limit, 1);
  checkCount("maxScan", query.maxScan, 1);
  if (query.orderBy !== "created_at" && query.orderBy !== "updated_at" && query.orderBy !== "name") {
    throw invalidArgument("orderBy", `unknown order ${JSON.stringify(query.orderBy)}`);
  }
  if (query.order !== "asc" && query.order !== "desc") {
    throw invalidArgument("order", `must be "asc" or "desc", got ${JSON.stringify(query.order)}`);
  }
  for (const s of query.states ?? []) {
    if (!isJobState(s)) throw invalidArgument("states", `unknown job state ${JSON.stringify(s)}`);
  }
  for (const t of query.types ?? []) {
    if (!isJobType(t)) throw invalidArgument("types", `unknown job type ${JSON.stringify(t)}`);
  }
  const cursor = query.cursor;
  if (cursor !== undefined) {
    if (typeof cursor.id !== "string" || cursor.id.length === 0)
      throw invalidArgument("cursor.id", "must not be empty");
    if (query.orderBy === "name") {
      if (typeof cursor.key !== "string")
        throw invalidArgument("cursor.key", "must be a name for order by name");
    } else if (typeof cursor.key !== "number") {
      throw invalidArgument("cursor.key", `must be a time in ms for order by ${query.orderBy}`);
    } else {
      checkTime("cursor.key", cursor.key);
    }
  }
}

/** Checks a listVersions call. */
export function checkVersionsQuery(options: { limit: number; beforeVersion?: number }): void {
  checkCount("limit", options.limit, 1);
  checkCount("beforeVersion", options.beforeVersion, 1);
}

/**
 * Where a page's candidates come from: jobs in the query's order, strictly after the cursor,
 * with the query's namespace/state/type filters already applied by an index.
 */
export interface CandidateSource {
  /** Up to `max` (>= 1) next candidates (fewer only at the end) and whether more follow them. */
  take(max: number): Promise<{ items: readonly JobRecord[]; more: boolean }>;
}

/**
 * Builds one page from candidates, the same way in both stores:
 * examine candidates in order, keep those the label filter accepts, and stop when the page is
 * full, when `maxScan` candidates were examined (label filter only), or at the end. `next` is
 * the position of the last job examined, and is absent exactly when no candidate follows it.
 */
export async function collectPage(source: CandidateSource, query: ListJobsQuery): Promise<ListJobsPage> {
  const filter = query.labelFilter;
  const limit = query.limit;
  const maxScan = filter === undefined ? Number.POSITIVE_INFINITY : (query.maxScan ?? defaultMaxScan(limit));
  const items: JobRecord[] = [];
  let scanned = 0;
  for (;;) {
    // Without a filter every candidate is kept, so ask for exactly what the page still needs;
    // with one, read ahead in bigger batches (bounded by what may still be examined).
    const want =
      filter === undefined
        ? limit - items.length
        : Math.min(maxScan - scanned, Math.max(100, 2 * (limit - items.length)));
    const batch = await source.take(want);
    for (let i = 0; i < batch.items.length; i++) {
      const job = batch.items[i] as JobRecord;
      scanned++;
      if (filter === undefined || filter(job.labels)) items.push(job);
      if (items.length === limit || scanned >= maxScan) {
        const more = i < batch.items.length - 1 || batch.more;
        return more ? { items, next: cursorOf(job, query.orderBy) } : { items };
      }
    }
    if (!batch.more) return { items };
  }
}

/** Throws `internal` for a broken invariant: a bug, never the caller's fault. */
export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new EdgeplaneError("internal", `job store invariant broken: ${message}`);
}
