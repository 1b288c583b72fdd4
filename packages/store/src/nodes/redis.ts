/**
 * The Redis {@link NodeStore} and {@link DesiredStateStore} (production). Keys come from
 * `keys.ts`. Node records are written in batches: one `HSET` per chunk of records, all chunks in
 * one `MULTI`, one round trip. Desired states are written by one Lua script that decides each
 * revision where it reads the current one; a batch of nodes (`putMany`) is one script call.
 */
import { EdgeplaneError, invalidArgument, isEdgeplaneError } from "@edgeplane/core";
import { Redis } from "ioredis";
import {
  checkNodeRecord,
  checkPutDesired,
  decodeDesired,
  decodeNodeRecord,
  desiredConflict,
  encodeDesiredBody,
  encodeNodeRecord,
  revisionExhausted,
} from "./codec.js";
import { DEFAULT_NODE_PREFIX, type NodeStoreKeys, nodeStoreKeys } from "./keys.js";
import {
  type AssignmentRecord,
  type DesiredStateRecord,
  type DesiredStateStore,
  MAX_DESIRED_REVISION,
  type NodeRecord,
  type NodeStore,
  type PutDesiredCommand,
  type PutDesiredResult,
} from "./node-store.js";
import { putDesiredLua } from "./put-desired.lua.js";

/** Options of the Redis node stores. */
export interface RedisNodeStoreOptions {
  /**
   * A connected ioredis client (the caller keeps owning it: `close()` leaves it open), or a URL
   * (the store connects, and `close()` quits). Do not set ioredis' `keyPrefix`; use `prefix`.
   */
  readonly redis: Redis | string;
  /** Prefix of every key (default `ep:`); tests use a random one. */
  readonly prefix?: string;
  /** Called for every stored entry `loadAll` cannot read (it is skipped). */
  readonly onCorrupt?: (id: string, error: Error) => void;
}

/** A Redis node store, with the handles tests and tools need. */
export interface RedisNodeStore extends NodeStore {
  readonly keys: NodeStoreKeys;
  readonly redis: Redis;
}

/** A Redis desired-state store, with the handles tests and tools need. */
export interface RedisDesiredStateStore extends DesiredStateStore {
  readonly keys: NodeStoreKeys;
  readonly redis: Redis;
}

/** Records per `HSET` of a batch (bounds one command's size; the batch stays one MULTI). */
const CHUNK = 500;
/** `HSCAN` page size of the loads. */
const SCAN_COUNT = 1000;
/** The script's command name (named for its argument layout: a definition is kept per client). */
const PUT_DESIRED = "edgeplanePutDesiredMany";

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
  return new EdgeplaneError("unavailable", `${what}: ${message}`, { cause: err });
}

/** Every field → value of a hash, read in `HSCAN` pages (never one huge reply). */
async function scanHash(redis: Redis, key: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  let cursor = "0";
  do {
    const [next, flat] = await redis.hscan(key, cursor, "COUNT", SCAN_COUNT);
    for (let i = 0; i + 1 < flat.length; i += 2) out.set(flat[i] as string, flat[i + 1] as string);
    cursor = next;
  } while (cursor !== "0");
  return out;
}

/** Creates the Redis {@link NodeStore}. */
export function createRedisNodeStore(options: RedisNodeStoreOptions): RedisNodeStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = nodeStoreKeys(options.prefix ?? DEFAULT_NODE_PREFIX);
  return {
    keys,
    redis,
    loadAll: async () => {
      let entries: Map<string, string>;
      try {
        entries = await scanHash(redis, keys.records);
      } catch (err) {
        throw storeError(err, "loading nodes");
      }
      const out: NodeRecord[] = [];
      for (const [id, text] of entries) {
        try {
          out.push(decodeNodeRecord(id, text));
        } catch (err) {
          options.onCorrupt?.(id, err as Error);
        }
      }
      return out;
    },
    get: async (id) => {
      let text: string | null;
      try {
        text = await redis.hget(keys.records, id);
      } catch (err) {
        throw storeError(err, `reading node ${id}`);
      }
      return text === null ? undefined : decodeNodeRecord(id, text);
    },
    saveMany: async (records) => {
      if (records.length === 0) return;
      const fields = records.map((r, i) => {
        const checked = checkNodeRecord(r, `records[${i}]`);
        return [checked.id, encodeNodeRecord(checked)];
      });
      try {
        const multi = redis.multi();
        for (let i = 0; i < fields.length; i += CHUNK)
          multi.hset(keys.records, ...fields.slice(i, i + CHUNK).flat());
        const results = await multi.exec();
        const failed = results?.find(([err]) => err);
        if (results === null) throw new Error("the transaction was discarded");
        if (failed?.[0]) throw failed[0];
      } catch (err) {
        throw storeError(err, `saving ${records.length} node(s)`);
      }
    },
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}

/** Writes per script call of `putMany` (bounds one command's size; larger batches take several). */
const WRITES_PER_CALL = 1000;

/**
 * The commands of one `putMany`, checked: per command its checked assignments or why it is
 * refused, and the indexes of the valid ones (the ones sent).
 */
function prepareWrites(cmds: readonly PutDesiredCommand[]): {
  readonly checked: Array<AssignmentRecord[] | EdgeplaneError>;
  readonly valid: number[];
} {
  const checked: Array<AssignmentRecord[] | EdgeplaneError> = new Array(cmds.length);
  const valid: number[] = [];
  for (let i = 0; i < cmds.length; i++) {
    try {
      checked[i] = checkPutDesired(cmds[i] as PutDesiredCommand);
      valid.push(i);
    } catch (err) {
      checked[i] = EdgeplaneError.from(err);
    }
  }
  return { checked, valid };
}

/** Creates the Redis {@link DesiredStateStore}. */
export function createRedisDesiredStateStore(options: RedisNodeStoreOptions): RedisDesiredStateStore {
  const { client: redis, owned } = clientOf(options.redis);
  const keys = nodeStoreKeys(options.prefix ?? DEFAULT_NODE_PREFIX);
  if (typeof (redis as unknown as Record<string, unknown>)[PUT_DESIRED] !== "function") {
    // defineCommand sends EVALSHA and falls back to EVAL, so a Redis restart that forgot the script is fine.
    redis.defineCommand(PUT_DESIRED, { numberOfKeys: 2, lua: putDesiredLua });
  }
  const putDesired = (
    redis as unknown as Record<string, (...args: Array<string | number>) => Promise<unknown>>
  )[PUT_DESIRED] as (...args: Array<string | number | Array<string | number>>) => Promise<unknown>;

  /** One script call per WRITES_PER_CALL valid writes (sent together: one round trip). */
  const putMany = async (cmds: readonly PutDesiredCommand[]): Promise<PutDesiredResult[]> => {
    const { checked, valid } = prepareWrites(cmds);
    const calls: Array<Promise<unknown>> = [];
    for (let from = 0; from < valid.length; from += WRITES_PER_CALL) {
      const args: Array<string | number> = [];
      for (const i of valid.slice(from, from + WRITES_PER_CALL)) {
        const cmd = cmds[i] as PutDesiredCommand;
        args.push(
          cmd.nodeId,
          cmd.expectedRevision === undefined ? "" : cmd.expectedRevision,
          cmd.minRevision ?? 0,
          encodeDesiredBody(checked[i] as AssignmentRecord[], cmd.now),
        );
      }
      calls.push(putDesired.call(redis, keys.desired, keys.desiredRevisions, MAX_DESIRED_REVISION, args));
    }
    let replies: unknown[];
    try {
      replies = await Promise.all(calls);
    } catch (err) {
      throw storeError(
        err,
        cmds.length === 1
          ? `writing the desired state of node ${(cmds[0] as PutDesiredCommand).nodeId}`
          : `writing the desired states of ${cmds.length} nodes`,
      );
    }
    const results: PutDesiredResult[] = new Array(cmds.length);
    for (let i = 0; i < cmds.length; i++) {
      const c = checked[i];
      if (c instanceof EdgeplaneError) results[i] = { ok: false, error: c };
    }
    for (let k = 0; k < valid.length; k++) {
      const i = valid[k] as number;
      const cmd = cmds[i] as PutDesiredCommand;
      const reply = replies[Math.floor(k / WRITES_PER_CALL)] as number[];
      const at = (k % WRITES_PER_CALL) * 2;
      const code = reply[at];
      const value = reply[at + 1] as number;
      results[i] =
        code === 1
          ? {
              ok: true,
              record: {
                nodeId: cmd.nodeId,
                revision: value,
                assignments: checked[i] as AssignmentRecord[],
                updatedAt: cmd.now,
              },
            }
          : {
              ok: false,
              error:
                code === -1
                  ? desiredConflict(cmd.nodeId, cmd.expectedRevision ?? 0, value)
                  : revisionExhausted(cmd.nodeId),
            };
    }
    return results;
  };
  return {
    keys,
    redis,
    get: async (nodeId) => {
      let text: string | null;
      try {
        text = await redis.hget(keys.desired, nodeId);
      } catch (err) {
        throw storeError(err, `reading the desired state of node ${nodeId}`);
      }
      return text === null ? undefined : decodeDesired(nodeId, text);
    },
    loadAll: async () => {
      let entries: Map<string, string>;
      try {
        entries = await scanHash(redis, keys.desired);
      } catch (err) {
        throw storeError(err, "loading desired states");
      }
      const out: DesiredStateRecord[] = [];
      for (const [id, text] of entries) {
        try {
          out.push(decodeDesired(id, text));
        } catch (err) {
          options.onCorrupt?.(id, err as Error);
        }
      }
      return out;
    },
    revisions: async () => {
      let entries: Map<string, string>;
      try {
        entries = await scanHash(redis, keys.desiredRevisions);
      } catch (err) {
        throw storeError(err, "loading desired revisions");
      }
      const out = new Map<string, number>();
      for (const [id, text] of entries) {
        const n = Number(text);
        if (Number.isInteger(n) && n >= 0) out.set(id, n);
        else options.onCorrupt?.(id, new Error(`desired revision ${JSON.stringify(text)} is not a number`));
      }
      return out;
    },
    put: async (cmd) => {
      const [result] = await putMany([cmd]);
      if (result === undefined) throw new EdgeplaneError("internal", "putMany returned no result");
      if (!result.ok) throw result.error;
      return result.record;
    },
    putMany: (cmds) => putMany(cmds),
    close: async () => {
      if (owned) await redis.quit().catch(() => redis.disconnect());
    },
  };
}
