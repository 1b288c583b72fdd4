/**
 * Every Redis key and index member the job store uses, built here and only here: the
 * TypeScript builders and, right next to them, the Lua functions the scripts use to build the
 * same strings (the scripts derive index keys from a job's namespace, state and type, which
 * only the script knows). A layout change is a change to this file.
 *
 * Layout (default prefix `ep:`; tests use a random prefix to isolate themselves):
 *
 * | key                                     | type   | holds                                                   |
 * |-----------------------------------------|--------|---------------------------------------------------------|
 * | `ep:jobs:rec`                           | hash   | job id → packed record (meta + current spec)            |
 * | `ep:jobs:ver`                           | hash   | `<id>:<version>` → packed kept version (not the current)|
 * | `ep:jobs:events`                        | stream | the change stream, MAXLEN ~ 100000                      |
 * | `ep:jobs:ns`                            | set    | namespaces that ever had a job (for namespace "*")      |
 * | `ep:jobs:idx:<ns>:<state>:<type>:<ix>`  | zset   | one index partition; `<ix>` is created, updated or name |
 * | `ep:idem:<key>`                         | string | idempotency outcome `<id>\|<changed>\|<created>`, 24 h  |
 * | `ep:secret:<name>`                      | string | a secret every replica shares (`page-tokens`)           |
 * | `ep:leader`                             | string | the leader lease (the deployment store's key), read by the fence |
 *
 * Index partitions are lexicographic sorted sets (every score 0), so that a position is one
 * member string and "strictly after a cursor" is one `ZRANGEBYLEX key (member + LIMIT 0 n`,
 * with no tie on equal times:
 * - created/updated: `<12 lowercase hex digits of the ms time><id>` (fixed width, so byte
 *   order is (time, id) order);
 * - name: `<name>\0<id>` (NUL sorts before every name byte, so byte order is (name, id) order;
 *   this is also the (namespace, name) → id lookup, reading the live-state partitions).
 *
 * For Redis Cluster, give a prefix with a hash tag (`{ep}:`): the scripts touch many keys, so
 * every key must live in one slot.
 */
import type { JobStateType, JobType } from "@edgeplane/core";
import { deploymentStoreKeys } from "../deployments/keys.js";

/** The default key prefix. */
export const DEFAULT_PREFIX = "ep:";

/** The three orders each index partition is kept in. */
export type IndexKind = "created" | "updated" | "name";

/** The keys of one job store (one prefix). */
export interface JobStoreKeys {
  readonly prefix: string;
  /** Hash: job id → packed record. */
  readonly records: string;
  /** Hash: `<id>:<version>` → packed version, for every kept version but the current one. */
  readonly versions: string;
  /** Stream: the change stream. */
  readonly events: string;
  /** Set: every namespace that ever had a job. */
  readonly namespaces: string;
  /** String: the outcome of the put that used this idempotency key. */
  idempotency(key: string): string;
  /** String: a secret shared by every replica (`page-tokens`: the HMAC key of page tokens). */
  secret(name: string): string;
  /** String: the leader lease the fence of an orchestrator's write checks (built by the deployment store's keys). */
  readonly lease: string;
  /** Sorted set: one index partition. */
  index(namespace: string, state: JobStateType, type: JobType, kind: IndexKind): string;
}

/** Builds the keys of a store with this prefix. */
export function jobStoreKeys(prefix: string = DEFAULT_PREFIX): JobStoreKeys {
  return {
    prefix,
    records: `${prefix}jobs:rec`,
    versions: `${prefix}jobs:ver`,
    events: `${prefix}jobs:events`,
    namespaces: `${prefix}jobs:ns`,
    idempotency: (key) => `${prefix}idem:${key}`,
    secret: (name) => `${prefix}secret:${name}`,
    lease: deploymentStoreKeys(prefix).lease,
    index: (namespace, state, type, kind) => `${prefix}jobs:idx:${namespace}:${state}:${type}:${kind}`,
  };
}

/** The field of a kept version in the versions hash. */
export function versionField(jobId: string, version: number): string {
  return `${jobId}:${version}`;
}

/** The member of a created/updated index: 12 hex digits of the time, then the id. */
export function timeMember(ms: number, id: string): string {
  return ms.toString(16).padStart(12, "0") + id;
}

/** The member of a name index: the name, NUL, the id. */
export function nameMember(name: string, id: string): string {
  return `${name}\0${id}`;
}

/** The index member of a position in the given index. */
export function indexMember(kind: IndexKind, key: number | string, id: string): string {
  return kind === "name" ? nameMember(String(key), id) : timeMember(Number(key), id);
}

/**
 * The Lua mirror of the builders above, prepended to every script. `PREFIX` is a local each
 * script sets from `ARGV[1]`.
 */
export const LUA_KEYS = `
local function indexKey(ns, state, jtype, kind)
  return PREFIX .. "jobs:idx:" .. ns .. ":" .. state .. ":" .. jtype .. ":" .. kind
end
local function versionField(id, version)
  return id .. ":" .. string.format("%d", version)
end
local function timeMember(ms, id)
  return string.format("%012x", ms) .. id
end
local function nameMember(name, id)
  return name .. "\\0" .. id
end
-- The id inside an index member (the inverse of timeMember/nameMember).
local function memberId(kind, member)
  if kind == "name" then
    local nul = string.find(member, "\\0", 1, true)
    return string.sub(member, nul + 1)
  end
  return string.sub(member, 13)
end
`;
