/**
 * The Lua every job-store script starts with: the key builders (from `keys.ts`), the record
 * slots (from `record-codec.ts`), the failure codes (from `failures.ts`), the state and type
 * lists (from core) and the helpers that keep a record, its index entries and the change stream
 * in step. Generated from the TypeScript constants, so the two sides cannot drift apart.
 */
import { JOB_TYPES } from "@edgeplane/core";
import { LUA_FENCE } from "../../deployments/lua.js";
import { DELETED_MESSAGE, LIVE_STATES } from "../../semantics.js";
import { LUA_FAILURES } from "../failures.js";
import { LUA_KEYS } from "../keys.js";
import { LUA_RECORD_FIELDS } from "../record-codec.js";

const luaList = (values: readonly string[]): string => `{${values.map((v) => JSON.stringify(v)).join(", ")}}`;

/** The shared prelude. Every script passes the key prefix as ARGV[1] and the records hash as KEYS[1]. */
export const preludeLua = `
local PREFIX = ARGV[1]
${LUA_KEYS}
${LUA_RECORD_FIELDS}
${LUA_FAILURES}
local LIVE_STATES = ${luaList(LIVE_STATES)}
local JOB_TYPES = ${luaList(JOB_TYPES)}
local DELETED_MESSAGE = ${JSON.stringify(DELETED_MESSAGE)}
${LUA_FENCE}
-- A write an orchestrator fences: nil to go ahead, else the coded failure (with the epoch).
local function checkFence(leaseKey, epoch)
  local f = fenceFailure(leaseKey, epoch)
  if f then return {E_FENCED, f[2], epoch} end
  return nil
end

-- Mirrors submittedMessage() in semantics.ts (the conformance suite compares the two stores).
local function submittedMessage(version)
  return "version " .. string.format("%d", version) .. " submitted"
end

-- A packed record is <meta JSON array>.."\\n"..<spec JSON>; only the meta is decoded.
local function readRecord(id)
  local packed = redis.call("HGET", KEYS[1], id)
  if not packed then return nil end
  local nl = string.find(packed, "\\n", 1, true)
  return cjson.decode(string.sub(packed, 1, nl - 1)), string.sub(packed, nl + 1), packed
end

local function packRecord(meta, spec)
  return cjson.encode(meta) .. "\\n" .. spec
end

local function packVersion(createdAt, kind, sourceVersion, spec)
  return cjson.encode({createdAt, kind, sourceVersion}) .. "\\n" .. spec
end

-- A job sits in exactly one partition (namespace, state, type), in its three orders.
local function indexAdd(id, meta)
  local ns, st, ty = meta[R_NAMESPACE], meta[R_STATE], meta[R_TYPE]
  redis.call("ZADD", indexKey(ns, st, ty, "created"), 0, timeMember(meta[R_CREATED_AT], id))
  redis.call("ZADD", indexKey(ns, st, ty, "updated"), 0, timeMember(meta[R_UPDATED_AT], id))
  redis.call("ZADD", indexKey(ns, st, ty, "name"), 0, nameMember(meta[R_NAME], id))
end

local function indexRemove(id, meta)
  local ns, st, ty = meta[R_NAMESPACE], meta[R_STATE], meta[R_TYPE]
  redis.call("ZREM", indexKey(ns, st, ty, "created"), timeMember(meta[R_CREATED_AT], id))
  redis.call("ZREM", indexKey(ns, st, ty, "updated"), timeMember(meta[R_UPDATED_AT], id))
  redis.call("ZREM", indexKey(ns, st, ty, "name"), nameMember(meta[R_NAME], id))
end

-- The change-stream entry of a write, appended by the same script that writes.
local function emit(eventsKey, maxLen, kind, id, meta, time)
  redis.call("XADD", eventsKey, "MAXLEN", "~", maxLen, "*",
    "job", id, "ns", meta[R_NAMESPACE], "kind", kind,
    "version", string.format("%d", meta[R_VERSION]), "revision", string.format("%d", meta[R_REVISION]),
    "state", meta[R_STATE], "time", string.format("%d", time))
end

-- The id of the job that owns (namespace, name): the one in a live-state name partition.
local function findLive(ns, name)
  local lo, hi = "[" .. name .. "\\0", "(" .. name .. "\\1"
  for _, st in ipairs(LIVE_STATES) do
    for _, ty in ipairs(JOB_TYPES) do
      local hit = redis.call("ZRANGEBYLEX", indexKey(ns, st, ty, "name"), lo, hi, "LIMIT", 0, 1)
      if hit[1] then return memberId("name", hit[1]) end
    end
  end
  return nil
end

-- The preconditions of a guarded write, in the memory store's order: deleted, revision, state.
-- allowed is "*" (no state guard) or a comma-separated list (possibly empty: nothing allowed).
local function checkGuard(id, meta, target, expectedRevision, allowed)
  if meta[R_STATE] == "deleted" then return {E_DELETED, id} end
  if expectedRevision and expectedRevision ~= meta[R_REVISION] then
    return {E_REVISION_CONFLICT, expectedRevision, meta[R_VERSION], meta[R_REVISION]}
  end
  if allowed ~= "*" then
    for s in string.gmatch(allowed, "[^,]+") do
      if s == meta[R_STATE] then return nil end
    end
    return {E_ILLEGAL_TRANSITION, id, meta[R_STATE], target, allowed}
  end
  return nil
end
`;
