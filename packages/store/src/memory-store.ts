/**
 * The in-memory JobStore: the dev default and the reference the Redis store is compared with.
 *
 * Every method does its whole read-check-write synchronously before its promise settles, so
 * concurrent calls are applied one at a time, like Lua scripts in Redis. Records handed out are
 * copies: a caller mutating one cannot change the store.
 */
import { EdgeplaneError, invalidArgument, type JobStateType } from "@edgeplane/core";
import type { Fence } from "./deployments/deployment-store.js";
import type {
  JobEvent,
  JobRecord,
  JobStore,
  JobVersionRecord,
  ListJobsPage,
  ListJobsQuery,
  PutJobCommand,
  PutJobResult,
  StatusUpdate,
  WriteGuard,
} from "./job-store.js";
import {
  type CandidateSource,
  checkGuard,
  checkListQuery,
  checkPutCommand,
  checkStatusUpdate,
  checkTime,
  checkVersionsQuery,
  collectPage,
  comparePositions,
  cursorOf,
  DEFAULT_MAX_VERSIONS,
  DELETED_MESSAGE,
  effectiveStates,
  effectiveTypes,
  IDEMPOTENCY_TTL_MS,
  jsonClone,
  specDigest,
  submittedMessage,
} from "./semantics.js";
import {
  idTaken,
  illegalTransition,
  jobDeleted,
  jobNotFound,
  revisionConflict,
  versionConflict,
} from "./store-errors.js";

/** Options of {@link createMemoryJobStore}. */
export interface MemoryJobStoreOptions {
  /** Change-stream entries kept (oldest dropped first), like the Redis stream's MAXLEN; default 100000. */
  readonly eventsMaxLen?: number;
  /**
   * Checks a write's fence against the leader lease (throws the fencing error when the epoch
   * does not hold it): `memoryFencing(data)` over the memory deployment data the lease lives in.
   * Without it a fenced write is refused as a wiring mistake.
   */
  readonly fencing?: (fence: Fence) => void;
}

/** A job as kept inside the memory store. */
interface Entry {
  record: JobRecord;
  digest: string;
  /** Kept versions by number, the current one included. */
  versions: Map<number, JobVersionRecord>;
}

interface IdempotentOutcome {
  readonly jobId: string;
  readonly changed: boolean;
  readonly created: boolean;
  /** The `now` of the command that stored it; the key is forgotten 24 h later. */
  readonly at: number;
}

/**
 * Creates an in-memory {@link JobStore} with the same semantics as the Redis store (one
 * conformance suite runs against both). Data lives as long as the process.
 *
 * @example
 * ```ts
 * const store = createMemoryJobStore();
 * const { job } = await store.putJob({ namespace: "default", name: "logs", ..., newId: newId("job"), now: Date.now() });
 * ```
 */
export function createMemoryJobStore(options: MemoryJobStoreOptions = {}): JobStore {
  const eventsMaxLen = options.eventsMaxLen ?? 100_000;
  const jobs = new Map<string, Entry>();
  /** `namespace\0name` → id of the job that owns the name (not deleted). */
  const names = new Map<string, string>();
  const idempotency = new Map<string, IdempotentOutcome>();
  const events: JobEvent[] = [];
  let eventSeq = 0;

  const nameKey = (namespace: string, name: string): string => `${namespace}\0${name}`;

  function emit(job: JobRecord, kind: JobEvent["kind"], time: number): void {
    eventSeq += 1;
    events.push({
      id: String(eventSeq),
      jobId: job.id,
      namespace: job.namespace,
      kind,
      version: job.version,
      revision: job.revision,
      state: job.state,
      time,
    });
    if (events.length > eventsMaxLen) events.splice(0, events.length - eventsMaxLen);
  }

  function remember(cmd: PutJobCommand, result: PutJobResult): void {
    if (cmd.idempotencyKey === undefined) return;
    idempotency.set(cmd.idempotencyKey, {
      jobId: result.job.id,
      changed: result.changed,
      created: result.created,
      at: cmd.now,
    });
  }

  function replay(cmd: PutJobCommand): PutJobResult | undefined {
    if (cmd.idempotencyKey === undefined) return undefined;
    const seen = idempotency.get(cmd.idempotencyKey);
    if (seen === undefined) return undefined;
    if (cmd.now - seen.at >= IDEMPOTENCY_TTL_MS) {
      idempotency.delete(cmd.idempotencyKey);
      return undefined;
    }
    const entry = jobs.get(seen.jobId);
    if (entry === undefined) return undefined;
    return { job: jsonClone(entry.record), changed: seen.changed, created: seen.created };
  }

  function checkFenced(fence: Fence | undefined): void {
    if (fence === undefined) return;
    if (options.fencing === undefined) {
      throw new EdgeplaneError(
        "internal",
        "a fenced write reached a memory job store that has no lease to check it against (pass `fencing`)",
      );
    }
    options.fencing(fence);
  }

  function putJobSync(cmd: PutJobCommand): PutJobResult {
    checkPutCommand(cmd);
    checkFenced(cmd.fence);
    const replayed = replay(cmd);
    if (replayed !== undefined) return replayed;

    const digest = specDigest(cmd.type, cmd.labels, cmd.spec);
    const kind = cmd.kind ?? "submit";
    const sourceVersion = cmd.sourceVersion ?? 0;
    const liveId = names.get(nameKey(cmd.namespace, cmd.name));
    const existing = liveId === undefined ? undefined : jobs.get(liveId);

    if (existing === undefined) {
      if (cmd.expectedVersion !== undefined && cmd.expectedVersion !== 0)
        throw versionConflict(cmd.expectedVersion, 0, 0);
      if (cmd.expectedRevision !== undefined && cmd.expectedRevision !== 0) {
        throw revisionConflict(cmd.expectedRevision, 0, 0);
      }
      if (jobs.has(cmd.newId)) throw idTaken(cmd.newId);
      const spec = jsonClone(cmd.spec);
      const record: JobRecord = {
        id: cmd.newId,
        namespace: cmd.namespace,
        name: cmd.name,
        type: cmd.type,
        labels: jsonClone(cmd.labels),
        spec,
        version: 1,
        revision: 1,
        stableVersion: 0,
        state: "pending",
        stateMessage: submittedMessage(1),
        stateDetails: {},
        deploymentId: "",
        createdAt: cmd.now,
        updatedAt: cmd.now,
      };
      const versions = new Map<number, JobVersionRecord>();
      versions.set(1, { jobId: record.id, version: 1, spec, createdAt: cmd.now, kind, sourceVersion });
      jobs.set(record.id, { record, digest, versions });
      names.set(nameKey(record.namespace, record.name), record.id);
      emit(record, "created", cmd.now);
      const result = { job: jsonClone(record), changed: true, created: true };
      remember(cmd, result);
      return result;
    }

    const current = existing.record;
    if (cmd.expectedVersion !== undefined && cmd.expectedVersion !== current.version) {
      throw versionConflict(cmd.expectedVersion, current.version, current.revision);
    }
    if (cmd.expectedRevision !== undefined && cmd.expectedRevision !== current.revision) {
      throw revisionConflict(cmd.expectedRevision, current.version, current.revision);
    }
    if (digest === existing.digest) {
      const result = { job: jsonClone(current), changed: false, created: false };
      remember(cmd, result);
      return result;
    }
    const version = current.version + 1;
    const spec = jsonClone(cmd.spec);
    const record: JobRecord = {
      ...current,
      type: cmd.type,
      labels: jsonClone(cmd.labels),
      spec,
      version,
      revision: current.revision + 1,
      state: "pending",
      stateMessage: submittedMessage(version),
      stateDetails: {},
      updatedAt: cmd.now,
    };
    existing.record = record;
    existing.digest = digest;
    existing.versions.set(version, {
      jobId: record.id,
      version,
      spec,
      createdAt: cmd.now,
      kind,
      sourceVersion,
    });
    // Versions are contiguous, so dropping "oldest first" means deleting from the bottom.
    const keep = cmd.maxVersions ?? DEFAULT_MAX_VERSIONS;
    for (const v of [...existing.versions.keys()]) if (v <= version - keep) existing.versions.delete(v);
    emit(record, "updated", cmd.now);
    const result = { job: jsonClone(record), changed: true, created: false };
    remember(cmd, result);
    return result;
  }

  /** The checks every guarded write makes, in the same order as the Lua scripts. */
  function guarded(id: string, target: JobStateType, guard: WriteGuard | undefined): Entry {
    if (guard !== undefined) checkGuard(guard);
    checkFenced(guard?.fence);
    const entry = jobs.get(id);
    if (entry === undefined) throw jobNotFound(id);
    const current = entry.record;
    if (current.state === "deleted") throw jobDeleted(id);
    if (guard?.expectedRevision !== undefined && guard.expectedRevision !== current.revision) {
      throw revisionConflict(guard.expectedRevision, current.version, current.revision);
    }
    if (guard?.allowedFrom !== undefined && !guard.allowedFrom.includes(current.state)) {
      throw illegalTransition(id, current.state, target, guard.allowedFrom);
    }
    return entry;
  }

  function updateStatusSync(id: string, update: StatusUpdate, guard?: WriteGuard): JobRecord {
    checkStatusUpdate(update);
    const entry = guarded(id, update.state, guard);
    const current = entry.record;
    entry.record = {
      ...current,
      revision: current.revision + 1,
      state: update.state,
      stateMessage: update.message,
      stateDetails: jsonClone(update.details ?? {}),
      deploymentId: update.deploymentId ?? current.deploymentId,
      stableVersion: update.stableVersion ?? current.stableVersion,
      updatedAt: update.now,
    };
    emit(entry.record, "status", update.now);
    return jsonClone(entry.record);
  }

  function deleteJobSync(id: string, now: number, guard?: WriteGuard): JobRecord {
    checkTime("now", now);
    const entry = guarded(id, "deleted", guard);
    const current = entry.record;
    entry.record = {
      ...current,
      revision: current.revision + 1,
      state: "deleted",
      stateMessage: DELETED_MESSAGE,
      stateDetails: {},
      updatedAt: now,
    };
    names.delete(nameKey(current.namespace, current.name));
    emit(entry.record, "deleted", now);
    return jsonClone(entry.record);
  }

  function listJobsPage(query: ListJobsQuery): Promise<ListJobsPage> {
    checkListQuery(query);
    const states = new Set(effectiveStates(query));
    const types = new Set(effectiveTypes(query));
    const sign = query.order === "asc" ? 1 : -1;
    // A full sort per call is fine for a dev store; the Redis store reads indexes instead.
    const sorted = [...jobs.values()]
      .map((e) => e.record)
      .filter(
        (j) =>
          (query.namespace === "*" || j.namespace === query.namespace) &&
          states.has(j.state) &&
          types.has(j.type),
      )
      .map((j) => ({ job: j, pos: cursorOf(j, query.orderBy) }))
      .sort((a, b) => sign * comparePositions(a.pos, b.pos));
    const cursor = query.cursor;
    let start = 0;
    if (cursor !== undefined) {
      while (
        start < sorted.length &&
        sign * comparePositions((sorted[start] as { pos: typeof cursor }).pos, cursor) <= 0
      ) {
        start++;
      }
    }
    const source: CandidateSource = {
      take: async (max) => {
        const items = sorted.slice(start, start + max).map((s) => jsonClone(s.job));
        start += items.length;
        return { items, more: start < sorted.length };
      },
    };
    return collectPage(source, query);
  }

  return {
    putJob: async (cmd) => putJobSync(cmd),
    getJob: async (id) => {
      const entry = jobs.get(id);
      return entry === undefined ? undefined : jsonClone(entry.record);
    },
    findJob: async (namespace, name) => {
      const id = names.get(nameKey(namespace, name));
      const entry = id === undefined ? undefined : jobs.get(id);
      return entry === undefined ? undefined : jsonClone(entry.record);
    },
    updateStatus: async (id, update, guard) => updateStatusSync(id, update, guard),
    deleteJob: async (id, now, guard) => deleteJobSync(id, now, guard),
    listJobs: async (query) => listJobsPage(query),
    listVersions: async (jobId, options) => {
      checkVersionsQuery(options);
      const entry = jobs.get(jobId);
      if (entry === undefined) throw jobNotFound(jobId);
      const top = Math.min(entry.record.version, (options.beforeVersion ?? Number.POSITIVE_INFINITY) - 1);
      const items: JobVersionRecord[] = [];
      let v = top;
      for (; v >= 1 && items.length < options.limit; v--) {
        const kept = entry.versions.get(v);
        if (kept === undefined) break; // older ones were dropped too (versions are contiguous)
        items.push(jsonClone(kept));
      }
      const last = items[items.length - 1];
      const more = last !== undefined && entry.versions.has(last.version - 1);
      return more ? { items, next: last.version } : { items };
    },
    getVersion: async (jobId, version) => {
      const kept = jobs.get(jobId)?.versions.get(version);
      return kept === undefined ? undefined : jsonClone(kept);
    },
    readEvents: async (after, count) => {
      if (!/^\d+$/.test(after))
        throw invalidArgument("after", `not a position of this stream: ${JSON.stringify(after)}`);
      const from = Number(after);
      // Ids are 1, 2, 3, ...: the entry after id n sits right after n in the (trimmed) array.
      const first = events[0] === undefined ? 0 : Number(events[0].id);
      const offset = Math.max(0, from + 1 - first);
      return events.slice(offset, offset + Math.max(0, count)).map((e) => ({ ...e }));
    },
    close: async () => {},
  };
}
