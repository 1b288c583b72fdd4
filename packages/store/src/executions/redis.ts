/**
 * The Redis {@link ExecutionStore} and {@link LogStore} (production). Keys come from `keys.ts`;
 * every write is one Lua script from `scripts.lua.ts` (EVALSHA via `defineCommand`, falling back
 * to EVAL after a Redis restart forgot the script cache).
 */
import { EdgeplaneError, invalidArgument, isEdgeplaneError } from "@edgeplane/core";
import { Redis } from "ioredis";
import {
  alreadyEnded,
  checkIdentity,
  checkLogLines,
  checkReport,
  decodeExecution,
  decodeLogLine,
  encodeLogLine,
  executionNotFound,
  fieldsOf,
  logBounds,
  observedFields,
  placeholderFields,
  type StoredFields,
} from "./codec.js";
import {
  EXECUTION_STATES,
  type ExecutionStateType,
  executionAllowedFrom,
  isEndedExecutionState,
  isTerminalExecutionState,
} from "./execution-state.js";
import type {
  ExecutionRecord,
  ExecutionStore,
  LogBounds,
  LogStore,
  ObserveOutcome,
} from "./execution-store.js";
import {
  DEFAULT_EXECUTION_PREFIX,
  type ExecutionStoreKeys,
  executionMember,
  executionStoreKeys,
  LUA_EXECUTION_KEYS,
} from "./keys.js";
import { checkListQuery } from "./memory.js";
import {
  appendLogsLua,
  archiveExecutionsLua,
  ensureExecutionLua,
  listExecutionsLua,
  markLostLua,
  observeExecutionLua,
  purgeExecutionsLua,
  readLogsLua,
  requestStopLua,
  withdrawPlaceholdersLua,
} from "./scripts.lua.js";

/** Options of the Redis execution and log stores. */
export interface RedisExecutionStoreOptions {
  /**
   * A connected ioredis client (the caller keeps owning it: `close()` leaves it open), or a URL
   * (the store connects, and `close()` quits). Do not set ioredis' `keyPrefix`; use `prefix`.
   */
  readonly redis: Redis | string;
  /** Prefix of every key (default `ep:`); tests use a random one. */
  readonly prefix?: string;
}

/** A Redis execution store, with the handles tests and tools need. */
export interface RedisExecutionStore extends ExecutionStore {
  readonly keys: ExecutionStoreKeys;
  readonly redis: Redis;
}

/** A Redis log store, with the handles tests and tools need. */
export interface RedisLogStore extends LogStore {
  readonly keys: ExecutionStoreKeys;
  readonly redis: Redis;
}

type Command = (...args: Array<string | number>) => Promise<unknown>;

/** Every script: command name, number of keys, body. */
const SCRIPTS = {
  observe: { command: "edgeplaneExecObserve", keys: 4, body: observeExecutionLua },
  ensure: { command: "edgeplaneExecEnsure", keys: 3, body: ensureExecutionLua },
  withdraw: { command: "edgeplaneExecWithdraw", keys: 2, body: withdrawPlaceholdersLua },
  markLost: { command: "edgeplaneExecMarkLost", keys: 2, body: markLostLua },
  requestStop: { command: "edgeplaneExecRequestStop", keys: 1, body: requestStopLua },
  archive: { command: "edgeplaneExecArchive", keys: 2, body: archiveExecutionsLua },
  purge: { command: "edgeplaneExecPurge", keys: 1, body: purgeExecutionsLua },
  list: { command: "edgeplaneExecList", keys: 2, body: listExecutionsLua },
  appendLogs: { command: "edgeplaneExecAppendLogs", keys: 2, body: appendLogsLua },
  readLogs: { command: "edgeplaneExecReadLogs", keys: 2, body: readLogsLua },
} as const;

type ScriptName = keyof typeof SCRIPTS;

function clientOf(redis: Redis | string): { client: Redis; owned: boolean } {
  if (typeof redis !== "string") {
    if (redis.options.keyPrefix)
      throw invalidArgument("redis", "the client must not set keyPrefix; pass `prefix` to the store instead");
    return { client: redis, owned: false };
  }
  return { client: new Redis(redis, { maxRetriesPerRequest: null, lazyConnect: false }), owned: true };
}

/** Anything Redis throws, as an EdgeplaneError (connection problems are `unavailable`, retryable). */
function storeError(err: unknown, what: string): EdgeplaneError {
  if (isEdgeplaneError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (/OOM/.test(message))
    return new EdgeplaneError("resource_exhausted", `${what}: ${message}`, { cause: err });
  return new EdgeplaneError("unavailable", `${what}: ${message}`, { cause: err });
}

/** Registers the scripts on a client (idempotent) and returns a runner. */
function scriptsOn(
  redis: Redis,
): (name: ScriptName, what: string, ...args: Array<string | number>) => Promise<unknown> {
  const table = redis as unknown as Record<string, Command | undefined>;
  for (const def of Object.values(SCRIPTS)) {
    if (typeof table[def.command] === "function") continue;
    redis.defineCommand(def.command, { numberOfKeys: def.keys, lua: `${LUA_EXECUTION_KEYS}\n${def.body}` });
  }
  return async (name, what, ...args) => {
    try {
      return await (table[SCRIPTS[name].command] as Command).call(redis, ...args);
    } catch (err) {
      throw storeError(err, what);
    }
  };
}

const csv = (states: readonly string[]): string => states.join(",");
const TERMINAL_CSV = csv(EXECUTION_STATES.filter(isTerminalExecutionState));
const ENDED_CSV = csv(EXECUTION_STATES.filter(isEndedExecutionState));
const flatten = (fields: StoredFields): string[] => Object.entries(fields).flat();

/** Creates the Redis {@link ExecutionStore}. */
export function createRedisExecutionStore(options: RedisExecutionStoreOptions): RedisExecutionStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = executionStoreKeys(options.prefix ?? DEFAULT_EXECUTION_PREFIX);
  const run = scriptsOn(redis);
  const record = (flat: unknown): ExecutionRecord => decodeExecution(fieldsOf(flat as unknown[]));

  return {
    keys,
    redis,
    observe: async (input, identity) => {
      const r = checkReport(input);
      const ident = identity === undefined ? undefined : checkIdentity(identity);
      if (ident !== undefined && (ident.id !== r.id || ident.nodeId !== r.nodeId))
        throw invalidArgument("create", "must name the report's execution and node");
      const creation = ident === undefined ? [] : flatten(placeholderFields(ident, r.now));
      const reply = (await run(
        "observe",
        `writing execution ${r.id}`,
        keys.record(r.id),
        keys.ended,
        keys.jobLive(ident?.jobId ?? "-"),
        keys.node(r.nodeId),
        r.id,
        r.nodeId,
        r.state,
        r.attempt,
        r.reportedAt,
        r.now,
        csv(executionAllowedFrom(r.state)),
        TERMINAL_CSV,
        ENDED_CSV,
        creation.length / 2,
        ident === undefined ? "" : executionMember(r.now, r.id),
        ...creation,
        ...flatten(observedFields(r)),
      )) as unknown[];
      const code = reply[0];
      let out: ObserveOutcome;
      if (code === 1) {
        const previous = String(reply[1]);
        out = {
          status: "applied",
          record: record(reply[2]),
          previous: previous === "" ? undefined : (previous as ExecutionStateType),
        };
      } else if (code === 2) out = { status: "stale", record: record(reply[1]) };
      else if (code === 3) out = { status: "missing" };
      else if (code === 4) out = { status: "archived", record: record(reply[1]) };
      else out = { status: "wrong_node", owner: String(reply[1]) };
      return out;
    },
    ensure: async (identities, now) => {
      const checked = identities.map((x, i) => checkIdentity(x, `identities[${i}]`));
      if (checked.length === 0) return [];
      const replies = await Promise.all(
        checked.map((x) =>
          run(
            "ensure",
            `creating execution ${x.id}`,
            keys.record(x.id),
            keys.jobLive(x.jobId),
            keys.node(x.nodeId),
            executionMember(now, x.id),
            x.id,
            ...flatten(placeholderFields(x, now)),
          ),
        ),
      );
      return checked.filter((_, i) => replies[i] === 1).map((x) => x.id);
    },
    withdraw: async (nodeId, keep) => {
      const reply = (await run(
        "withdraw",
        `withdrawing placeholders of node ${nodeId}`,
        keys.node(nodeId),
        keys.ended,
        keys.prefix,
        ...keep,
      )) as Array<[string, string]>;
      return reply.map(([id, jobId]) => ({ id, jobId }));
    },
    markLost: async (nodeId, now, message) => {
      const reply = (await run(
        "markLost",
        `marking the executions of node ${nodeId} lost`,
        keys.node(nodeId),
        keys.ended,
        keys.prefix,
        now,
        message,
        ENDED_CSV,
      )) as unknown[];
      return reply.map(record);
    },
    requestStop: async (id, now, reason) => {
      const reply = (await run(
        "requestStop",
        `canceling execution ${id}`,
        keys.record(id),
        now,
        reason,
        TERMINAL_CSV,
      )) as unknown[];
      if (reply[0] === 0) throw executionNotFound(id);
      if (reply[0] === -1) throw alreadyEnded(id, String(reply[1]));
      return { record: record(reply[1]), changed: reply[0] === 1 };
    },
    get: async (id) => {
      let flat: Record<string, string>;
      try {
        flat = await redis.hgetall(keys.record(id));
      } catch (err) {
        throw storeError(err, `reading execution ${id}`);
      }
      return Object.keys(flat).length === 0 ? undefined : decodeExecution(flat);
    },
    list: async (q) => {
      const { limit, maxScan } = checkListQuery(q);
      const reply = (await run(
        "list",
        `listing the executions of job ${q.jobId}`,
        keys.jobLive(q.jobId),
        keys.jobArchived(q.jobId),
        keys.prefix,
        q.cursor ? executionMember(q.cursor.createdAt, q.cursor.id) : "",
        limit,
        maxScan,
        csv(q.states ?? []),
        q.nodeId ?? "",
        q.includeArchived ? "1" : "0",
      )) as unknown[];
      const next = String(reply[0]);
      const items = reply.slice(1).map(record);
      return next === ""
        ? { items }
        : { items, next: { createdAt: Number.parseInt(next.slice(0, 12), 16), id: next.slice(12) } };
    },
    archive: async (endedBefore, now, limit) =>
      (await run(
        "archive",
        "archiving executions",
        keys.ended,
        keys.archived,
        keys.prefix,
        endedBefore,
        now,
        limit,
      )) as string[],
    purge: async (archivedBefore, limit) =>
      (await run(
        "purge",
        "purging executions",
        keys.archived,
        keys.prefix,
        archivedBefore,
        limit,
      )) as string[],
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Options of {@link createRedisLogStore}. */
export interface RedisLogStoreOptions extends RedisExecutionStoreOptions, LogBounds {}

/** Creates the Redis {@link LogStore}. */
export function createRedisLogStore(options: RedisLogStoreOptions): RedisLogStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = executionStoreKeys(options.prefix ?? DEFAULT_EXECUTION_PREFIX);
  const bounds = logBounds(options);
  const run = scriptsOn(redis);
  return {
    keys,
    redis,
    bounds,
    append: async (executionId, input, agentDropped) => {
      const lines = checkLogLines(input);
      if (lines.length === 0) {
        const r = await run(
          "readLogs",
          `reading the log of ${executionId}`,
          keys.log(executionId),
          keys.logMeta(executionId),
          "after",
          0,
          0,
        );
        const [n, d] = r as [number, number];
        return { appended: 0, lastSeq: n, dropped: d };
      }
      const args: Array<string | number> = [];
      for (const l of lines) args.push(l.time, l.agentSeq, encodeLogLine(l));
      const [appended, lastSeq, dropped] = (await run(
        "appendLogs",
        `appending to the log of ${executionId}`,
        keys.log(executionId),
        keys.logMeta(executionId),
        bounds.maxLines,
        bounds.maxBytes,
        Math.max(0, Math.floor(agentDropped)),
        ...args,
      )) as [number, number, number];
      return { appended, lastSeq, dropped };
    },
    read: async (executionId, query = {}) => {
      const limit = Math.min(query.limit ?? bounds.maxLines, bounds.maxLines);
      const reply = (await run(
        "readLogs",
        `reading the log of ${executionId}`,
        keys.log(executionId),
        keys.logMeta(executionId),
        query.after !== undefined ? "after" : "tail",
        query.after ?? query.tail ?? 0,
        Math.max(0, limit),
      )) as unknown[];
      return {
        lastSeq: Number(reply[0]),
        dropped: Number(reply[1]),
        lines: (reply.slice(2) as string[]).map(decodeLogLine),
      };
    },
    delete: async (ids) => {
      if (ids.length === 0) return;
      try {
        await redis.del(...ids.flatMap((id) => [keys.log(id), keys.logMeta(id)]));
      } catch (err) {
        throw storeError(err, "deleting logs");
      }
    },
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
