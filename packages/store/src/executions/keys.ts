/**
 * Every Redis key of the execution and log stores, built here and only here: the TypeScript
 * builders and, next to them, the Lua functions the scripts use to build the same strings (a
 * script that walks a node's or the ended set derives each execution's keys from its id).
 *
 * Layout (default prefix `ep:`; tests use a random prefix to isolate themselves):
 *
 * | key                         | type | holds                                                                  |
 * |-----------------------------|------|------------------------------------------------------------------------|
 * | `ep:exec:r:<id>`            | hash | one execution: field → value (`codec.ts`); the result is opaque JSON text |
 * | `ep:exec:job:<job>:live`    | zset | the job's executions not archived; members `<12 hex createdAt><id>`    |
 * | `ep:exec:job:<job>:arch`    | zset | the job's archived executions; same members                            |
 * | `ep:exec:node:<node>`       | set  | the node's executions not archived (for `lost`, placeholder withdrawal) |
 * | `ep:exec:ended`             | zset | ended, not archived executions; score = when they ended (archive sweep) |
 * | `ep:exec:archived`          | zset | archived executions; score = when archived (purge sweep)               |
 * | `ep:exec:log:<id>`          | list | the execution's kept log lines, oldest first                           |
 * | `ep:exec:logm:<id>`         | hash | its log's counters: last position, bytes kept, dropped, last agent (time, seq) |
 *
 * Index sets are lexicographic sorted sets (every score 0), like the job store's, so "strictly
 * after a cursor" is one `ZRANGEBYLEX key (member + LIMIT 0 n`, and byte order of members is
 * (createdAt, id) order. For Redis Cluster, give a prefix with a hash tag (`{ep}:`): the scripts
 * derive keys from ids, so every key of a store must live in one slot.
 */

/** The default key prefix (shared with the other stores). */
export const DEFAULT_EXECUTION_PREFIX = "ep:";

/** The keys of one execution store (one prefix). */
export interface ExecutionStoreKeys {
  readonly prefix: string;
  /** Hash: one execution. */
  record(id: string): string;
  /** Zset (lex): a job's executions that are not archived. */
  jobLive(jobId: string): string;
  /** Zset (lex): a job's archived executions. */
  jobArchived(jobId: string): string;
  /** Set: a node's executions that are not archived. */
  node(nodeId: string): string;
  /** Zset: ended, not archived executions by the time they ended. */
  readonly ended: string;
  /** Zset: archived executions by the time they were archived. */
  readonly archived: string;
  /** List: an execution's kept log lines. */
  log(id: string): string;
  /** Hash: an execution's log counters. */
  logMeta(id: string): string;
}

/** Builds the keys of an execution store with this prefix. */
export function executionStoreKeys(prefix: string = DEFAULT_EXECUTION_PREFIX): ExecutionStoreKeys {
  return {
    prefix,
    record: (id) => `${prefix}exec:r:${id}`,
    jobLive: (jobId) => `${prefix}exec:job:${jobId}:live`,
    jobArchived: (jobId) => `${prefix}exec:job:${jobId}:arch`,
    node: (nodeId) => `${prefix}exec:node:${nodeId}`,
    ended: `${prefix}exec:ended`,
    archived: `${prefix}exec:archived`,
    log: (id) => `${prefix}exec:log:${id}`,
    logMeta: (id) => `${prefix}exec:logm:${id}`,
  };
}

/** The member of a job index: 12 hex digits of the creation time, then the id. */
export function executionMember(createdAt: number, id: string): string {
  return createdAt.toString(16).padStart(12, "0") + id;
}

/** The id inside a job index member. */
export function memberExecutionId(member: string): string {
  return member.slice(12);
}

/**
 * The Lua mirror of the builders above. `PREFIX` is declared here (so the functions capture it)
 * and set by each script that derives keys: `PREFIX = ARGV[1]`.
 */
export const LUA_EXECUTION_KEYS = `
local PREFIX = ""
local function recordKey(id) return PREFIX .. "exec:r:" .. id end
local function jobLiveKey(job) return PREFIX .. "exec:job:" .. job .. ":live" end
local function jobArchivedKey(job) return PREFIX .. "exec:job:" .. job .. ":arch" end
local function nodeKey(node) return PREFIX .. "exec:node:" .. node end
local function member(createdAt, id) return string.format("%012x", tonumber(createdAt)) .. id end
local function memberId(m) return string.sub(m, 13) end
local function setOf(csv)
  local out = {}
  for s in string.gmatch(csv, "[^,]+") do out[s] = true end
  return out
end
`;
