/**
 * The Redis JobStore (production). Every state change is one Lua script that checks its
 * preconditions, writes the record and its index entries, and appends the change-stream entry,
 * atomically; reads are single commands or read-only scripts. See the package README for the
 * key layout and the guarantees.
 */
import { EdgeplaneError, invalidArgument, isEdgeplaneError } from "@edgeplane/core";
import { Redis } from "ioredis";
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
} from "../job-store.js";
import {
  type CandidateSource,
  checkGuard,
  checkListQuery,
  checkPutCommand,
  checkStatusUpdate,
  checkTime,
  checkVersionsQuery,
  collectPage,
  DEFAULT_MAX_VERSIONS,
  effectiveStates,
  effectiveTypes,
  IDEMPOTENCY_TTL_MS,
  sortKeyOf,
  specDigest,
} from "../semantics.js";
import { failureOf } from "./failures.js";
import { DEFAULT_PREFIX, type IndexKind, indexMember, type JobStoreKeys, jobStoreKeys } from "./keys.js";
import { decodeRecord, decodeVersion, encodeSpec, labelsSlot } from "./record-codec.js";
import { defineScripts, runScript, type ScriptName } from "./scripts.js";

/** Options of {@link createRedisJobStore}. */
export interface RedisJobStoreOptions {
  /**
   * A connected ioredis client (the caller keeps owning it: `close()` leaves it open), or a URL
   * (the store connects and `close()` quits). Do not set ioredis' `keyPrefix`: the scripts build
   * keys themselves; use `prefix`.
   */
  readonly redis: Redis | string;
  /** Prefix of every key (default `ep:`); tests use a random one. */
  readonly prefix?: string;
  /** Approximate cap of the change stream (`XADD MAXLEN ~`), default 100000. */
  readonly eventsMaxLen?: number;
  /** How long idempotency keys are remembered, default 24 h. */
  readonly idempotencyTtlMs?: number;
}

/** The Redis store, with the handles tests and tools need. */
export interface RedisJobStore extends JobStore {
  /** The keys this store writes (its prefix). */
  readonly keys: JobStoreKeys;
  /** The client it uses. */
  readonly redis: Redis;
}

/** Which index answers which order. */
const INDEX_OF = { created_at: "created", updated_at: "updated", name: "name" } as const satisfies Record<
  ListJobsQuery["orderBy"],
  IndexKind
>;

/**
 * Single-job reads and writes keep the job's spec JSON in memory (`spec-codec.ts`): a job is
 * read and written many times in a row while it is being rolled out. ListJobs pages do not.
 */
const REMEMBER = { remember: true } as const;

/** The most jobs one listJobs script call returns (bounds the script's run time and reply). */
const MAX_PER_CALL = 1000;

/**
 * Creates the Redis {@link JobStore}.
 *
 * @example
 * ```ts
 * const store = createRedisJobStore({ redis: "redis://127.0.0.1:6379" });
 * await store.putJob({ ... });
 * await store.close();
 * ```
 */
export function createRedisJobStore(options: RedisJobStoreOptions): RedisJobStore {
  const owned = typeof options.redis === "string";
  const redis = typeof options.redis === "string" ? new Redis(options.redis) : options.redis;
  if (redis.options.keyPrefix) {
    throw invalidArgument("redis", "the client must not set keyPrefix; pass `prefix` to the store instead");
  }
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  const keys = jobStoreKeys(prefix);
  const eventsMaxLen = options.eventsMaxLen ?? 100_000;
  const idemTtlSeconds = Math.max(1, Math.ceil((options.idempotencyTtlMs ?? IDEMPOTENCY_TTL_MS) / 1000));
  defineScripts(redis);

  /** Runs a script and turns a coded failure into its error. */
  async function run(name: ScriptName, scriptKeys: readonly string[], args: ReadonlyArray<string | number>) {
    const reply = await call(() => runScript(redis, name, scriptKeys, args));
    if (Array.isArray(reply)) {
      const failure = failureOf(reply);
      if (failure !== undefined) throw failure;
    }
    return reply;
  }

  async function putJob(cmd: PutJobCommand): Promise<PutJobResult> {
    checkPutCommand(cmd);
    const specJson = JSON.stringify(cmd.spec);
    const reply = await run(
      "putJob",
      [
        keys.records,
        keys.versions,
        keys.events,
        keys.namespaces,
        keys.idempotency(cmd.idempotencyKey ?? ""),
        keys.lease,
      ],
      [
        prefix,
        eventsMaxLen,
        cmd.namespace,
        cmd.name,
        cmd.type,
        cmd.newId,
        cmd.now,
        // Compressed here: the script stores the spec as an opaque string (see spec-codec.ts).
        encodeSpec(specJson),
        JSON.stringify(labelsSlot(cmd.labels, cmd.spec)),
        specDigest(cmd.type, cmd.labels, cmd.spec, specJson),
        cmd.expectedVersion ?? "",
        cmd.expectedRevision ?? "",
        cmd.kind ?? "submit",
        cmd.sourceVersion ?? 0,
        cmd.maxVersions ?? DEFAULT_MAX_VERSIONS,
        cmd.idempotencyKey === undefined ? 0 : idemTtlSeconds,
        cmd.fence?.epoch ?? "",
      ],
    );
    const [, id, packed, changed, created] = reply as [number, string, string, number, number];
    return { job: decodeRecord(id, packed, REMEMBER), changed: changed === 1, created: created === 1 };
  }

  function guardArgs(guard: WriteGuard | undefined): [number | string, string, number | string] {
    if (guard !== undefined) checkGuard(guard);
    return [
      guard?.expectedRevision ?? "",
      guard?.allowedFrom === undefined ? "*" : guard.allowedFrom.join(","),
      guard?.fence?.epoch ?? "",
    ];
  }

  async function updateStatus(id: string, update: StatusUpdate, guard?: WriteGuard): Promise<JobRecord> {
    checkStatusUpdate(update);
    const reply = await run(
      "updateStatus",
      [keys.records, keys.events, keys.lease],
      [
        prefix,
        eventsMaxLen,
        id,
        update.state,
        update.message,
        JSON.stringify(update.details ?? {}),
        update.deploymentId === undefined ? "0" : "1",
        update.deploymentId ?? "",
        update.stableVersion ?? "",
        update.now,
        ...guardArgs(guard),
      ],
    );
    const [, jobId, packed] = reply as [number, string, string];
    return decodeRecord(jobId, packed, REMEMBER);
  }

  async function deleteJob(id: string, now: number, guard?: WriteGuard): Promise<JobRecord> {
    checkTime("now", now);
    const reply = await run(
      "deleteJob",
      [keys.records, keys.events, keys.lease],
      [prefix, eventsMaxLen, id, now, ...guardArgs(guard)],
    );
    const [, jobId, packed] = reply as [number, string, string];
    return decodeRecord(jobId, packed, REMEMBER);
  }

  async function listJobs(query: ListJobsQuery): Promise<ListJobsPage> {
    checkListQuery(query);
    const kind = INDEX_OF[query.orderBy];
    const states = effectiveStates(query).join(",");
    const types = effectiveTypes(query).join(",");
    let last = query.cursor === undefined ? "" : indexMember(kind, query.cursor.key, query.cursor.id);
    const source: CandidateSource = {
      take: async (max) => {
        const items: JobRecord[] = [];
        let more = true;
        while (more && items.length < max) {
          const count = Math.min(max - items.length, MAX_PER_CALL);
          const reply = (await run(
            "listJobs",
            [keys.records, keys.namespaces],
            [prefix, query.namespace, states, types, kind, query.order, last, count],
          )) as Array<string | number | null>;
          more = reply[0] === 1;
          for (let i = 1; i + 1 < reply.length; i += 2) {
            const id = String(reply[i]);
            const packed = reply[i + 1];
            if (typeof packed !== "string") {
              throw new EdgeplaneError("internal", `job store index names job ${id}, which has no record`);
            }
            const job = decodeRecord(id, packed);
            items.push(job);
            last = indexMember(kind, sortKeyOf(job, query.orderBy), job.id);
          }
        }
        return { items, more };
      },
    };
    return collectPage(source, query);
  }

  async function listVersions(
    jobId: string,
    options: { limit: number; beforeVersion?: number },
  ): Promise<{ items: JobVersionRecord[]; next?: number }> {
    checkVersionsQuery(options);
    const reply = (await run(
      "listVersions",
      [keys.records, keys.versions],
      [prefix, jobId, options.beforeVersion ?? "", options.limit],
    )) as Array<string | number | null>;
    const items: JobVersionRecord[] = [];
    for (let i = 2; i + 1 < reply.length; i += 2) {
      const version = Number(reply[i]);
      const packed = reply[i + 1];
      if (typeof packed !== "string") {
        throw new EdgeplaneError(
          "internal",
          `job ${jobId} version ${version} is missing from the versions hash`,
        );
      }
      items.push(decodeVersion(jobId, version, packed));
    }
    const next = Number(reply[1]);
    return next > 0 ? { items, next } : { items };
  }

  async function getVersion(jobId: string, version: number): Promise<JobVersionRecord | undefined> {
    if (!Number.isSafeInteger(version) || version < 1) return undefined;
    const packed = await run("getVersion", [keys.records, keys.versions], [prefix, jobId, version]);
    return typeof packed === "string" ? decodeVersion(jobId, version, packed) : undefined;
  }

  async function readEvents(after: string, count: number): Promise<JobEvent[]> {
    if (!/^\d+(-\d+)?$/.test(after)) {
      throw invalidArgument("after", `not a position of this stream: ${JSON.stringify(after)}`);
    }
    if (!Number.isSafeInteger(count) || count < 1) return [];
    const start = after === "0" ? "-" : `(${after}`;
    const entries = (await call(() => redis.xrange(keys.events, start, "+", "COUNT", count))) as Array<
      [string, string[]]
    >;
    return entries.map(([id, fields]) => {
      const f: Record<string, string> = {};
      for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i] as string] = fields[i + 1] as string;
      return {
        id,
        jobId: f.job ?? "",
        namespace: f.ns ?? "",
        kind: f.kind as JobEvent["kind"],
        version: Number(f.version),
        revision: Number(f.revision),
        state: f.state as JobEvent["state"],
        time: Number(f.time),
      };
    });
  }

  return {
    keys,
    redis,
    putJob,
    getJob: async (id) => {
      const packed = await call(() => redis.hget(keys.records, id));
      return packed === null ? undefined : decodeRecord(id, packed, REMEMBER);
    },
    findJob: async (namespace, name) => {
      const reply = (await run("findJob", [keys.records], [prefix, namespace, name])) as
        | [string, string]
        | null;
      return reply === null ? undefined : decodeRecord(reply[0], reply[1], REMEMBER);
    },
    updateStatus,
    deleteJob,
    listJobs,
    listVersions,
    getVersion,
    readEvents,
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/**
 * Runs a Redis call, turning client and server failures into EdgeplaneErrors: connection
 * trouble is `unavailable` (retryable), a full Redis under `noeviction` is
 * `resource_exhausted`, anything else (a script bug) is `internal`.
 */
async function call<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toStoreError(err);
  }
}

/** The EdgeplaneError for an ioredis failure. */
export function toStoreError(err: unknown): EdgeplaneError {
  if (isEdgeplaneError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  const name = err instanceof Error ? err.name : "";
  if (name === "ReplyError") {
    if (message.startsWith("OOM")) {
      return new EdgeplaneError("resource_exhausted", `Redis is out of memory: ${message}`, { cause: err });
    }
    if (/^(LOADING|BUSY|READONLY|MASTERDOWN|TRYAGAIN|CLUSTERDOWN)/.test(message)) {
      return new EdgeplaneError("unavailable", `Redis cannot serve the job store right now: ${message}`, {
        cause: err,
      });
    }
    return new EdgeplaneError("internal", `job store command failed: ${message}`, { cause: err });
  }
  return new EdgeplaneError("unavailable", `Redis is unreachable: ${message}`, { cause: err });
}
