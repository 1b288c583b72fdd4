/**
 * The Lua scripts of the deployment store, the versions-per-node map and the leader lease. Each
 * write checks its preconditions and writes in one atomic step; an orchestrator write first
 * checks the fencing epoch against the lease (`fenceFailure`), so a deposed leader's late write
 * changes nothing. Refusals are coded replies (negative first element), never Lua errors.
 */

/** Failure codes of the scripts (mapped to errors in `redis.ts`). */
export const DEPLOYMENT_FAILURES = {
  /** `{-1}`: no deployment with this id. */
  NOT_FOUND: -1,
  /** `{-2, currentRevision}`: the revision check-and-set lost. */
  REVISION_CONFLICT: -2,
  /** `{-3, currentState}`: the state guard refused. */
  ILLEGAL_STATE: -3,
  /** `{-10, currentEpoch or ""}`: the fencing epoch is not the lease's. */
  FENCED: -10,
} as const;

/**
 * The fence, shared by every store whose writes an orchestrator makes (the job store's scripts
 * include it too): `fenceFailure(leaseKey, epoch)` is nil when the write may go ahead (no epoch
 * given, or the lease is held with it), else `{FENCED, current epoch or ""}`.
 */
export const LUA_FENCE = `
local function fenceFailure(leaseKey, epoch)
  if epoch == "" then return nil end
  local cur = redis.call("GET", leaseKey)
  if cur then
    local e = string.match(cur, "^(%d+)|")
    if e == epoch then return nil end
    return {${DEPLOYMENT_FAILURES.FENCED}, e or ""}
  end
  return {${DEPLOYMENT_FAILURES.FENCED}, ""}
end
`;

const prelude = `${LUA_FENCE}
local function withRevision(rev, body)
  return '{"revision":' .. string.format("%d", rev) .. ',' .. string.sub(body, 2)
end
`;

/**
 * `writeNodes(key, from)`: HSETs the (node id, entry JSON) pairs `ARGV[from..]` into the node
 * table `key`, 500 pairs per call (`unpack` of one call is bounded by Lua's C stack, ~8000).
 */
const writeNodes = `
local function writeNodes(key, from)
  for i = from, #ARGV, 1000 do
    redis.call("HSET", key, unpack(ARGV, i, math.min(i + 999, #ARGV)))
  end
end
`;

/**
 * `assignVersions(key, version, deployment, from, to)`: for each node id in `ARGV[from..to]`
 * whose version in the versions hash `key` is not `version`, remembers the current one as the
 * previous and sets `version` (assigned by `deployment`); returns the ids that changed. Reads
 * and writes in slices of 500 fields (one HMGET, one HSET each), not one call per node.
 */
const assignVersions = `
local function assignVersions(key, v, dep, from, to)
  local changed = {}
  for s = from, to, 500 do
    local e = math.min(s + 499, to)
    local cur = redis.call("HMGET", key, unpack(ARGV, s, e))
    local writes = {}
    for i = s, e do
      local text = cur[i - s + 1]
      local cv, cd = "0", ""
      if text then
        local a, b = string.match(text, "^(%d+)|([^|]*)|")
        if a then cv, cd = a, b end
      end
      if cv ~= v then
        writes[#writes + 1] = ARGV[i]
        writes[#writes + 1] = v .. "|" .. dep .. "|" .. cv .. "|" .. cd
        changed[#changed + 1] = ARGV[i]
      end
    end
    if #writes > 0 then redis.call("HSET", key, unpack(writes)) end
  end
  return changed
end
`;

/** createDeployment: creates unless it exists (then answers the stored record). */
export const createDeploymentLua = `${prelude}${writeNodes}
-- KEYS[1] deployment hash  KEYS[2] job index  KEYS[3] all index  KEYS[4] active set
-- KEYS[5] changes stream   KEYS[6] lease       KEYS[7] node table
-- ARGV[1] id  ARGV[2] job id  ARGV[3] state  ARGV[4] active "1"|"0"  ARGV[5] created  ARGV[6] now
-- ARGV[7] record body  ARGV[8] summary body or "" (none)  ARGV[9] index member  ARGV[10] epoch or ""
-- ARGV[11] changes MAXLEN (~)  ARGV[12] targets JSON array or "" (none)
-- ARGV[13..] node entries: node id, entry JSON, node id, entry JSON, ...
-- Returns {1} created | {0, record, control or false} existed | {-10, epoch} fenced
local f = fenceFailure(KEYS[6], ARGV[10])
if f then return f end
if redis.call("EXISTS", KEYS[1]) == 1 then
  local v = redis.call("HMGET", KEYS[1], "rec", "control")
  return {0, v[1], v[2]}
end
redis.call("HSET", KEYS[1], "rec", withRevision(1, ARGV[7]), "rev", 1,
  "state", ARGV[3], "job", ARGV[2], "created", ARGV[5], "updated", ARGV[6])
if ARGV[8] ~= "" then redis.call("HSET", KEYS[1], "sum", withRevision(1, ARGV[8])) end
if ARGV[12] ~= "" then redis.call("HSET", KEYS[1], "tgt", ARGV[12]) end
-- A node table without a deployment is a leftover: the new one holds only this write's entries.
redis.call("DEL", KEYS[7])
writeNodes(KEYS[7], 13)
redis.call("ZADD", KEYS[2], 0, ARGV[9])
redis.call("ZADD", KEYS[3], 0, ARGV[9])
if ARGV[4] == "1" then redis.call("SADD", KEYS[4], ARGV[1]) else redis.call("SREM", KEYS[4], ARGV[1]) end
redis.call("XADD", KEYS[5], "MAXLEN", "~", ARGV[11], "*", "dep", ARGV[1], "job", ARGV[2], "kind", "created",
  "rev", "1", "state", ARGV[3])
return {1}
`;

/**
 * updateDeployment: replaces the record under the fence, revision and state guards, and assigns
 * versions of the job to nodes in the same step when asked (a rollout step's record and its
 * dispatch are never seen apart).
 */
export const updateDeploymentLua = `${prelude}${writeNodes}${assignVersions}
-- KEYS[1] deployment hash  KEYS[2] active set  KEYS[3] changes stream  KEYS[4] lease
-- KEYS[5] node table  KEYS[6] the job's versions hash
-- ARGV[1] id  ARGV[2] job id  ARGV[3] state  ARGV[4] active "1"|"0"  ARGV[5] now
-- ARGV[6] record body  ARGV[7] summary body or "" (none: the stored one is deleted)
-- ARGV[8] expected revision  ARGV[9] allowed-from states CSV, or "*" (no state guard)
-- ARGV[10] epoch or ""  ARGV[11] changes MAXLEN (~)
-- ARGV[12] version to assign, or "" (none)  ARGV[13] k = how many node ids to assign it to
-- ARGV[14..13+k] those node ids
-- ARGV[14+k..] node entries to upsert: node id, entry JSON, node id, entry JSON, ...
-- Returns {1, revision, {assigned node ids}} | {-1} | {-2, revision} | {-3, state} | {-10, epoch}
-- Every check comes before the first write: a refused update writes nothing, no entry either.
local f = fenceFailure(KEYS[4], ARGV[10])
if f then return f end
local cur = redis.call("HMGET", KEYS[1], "rev", "state")
if not cur[1] then return {${DEPLOYMENT_FAILURES.NOT_FOUND}} end
local rev = tonumber(cur[1])
if rev ~= tonumber(ARGV[8]) then return {${DEPLOYMENT_FAILURES.REVISION_CONFLICT}, rev} end
if ARGV[9] ~= "*" then
  local ok = false
  for s in string.gmatch(ARGV[9], "[^,]+") do
    if s == cur[2] then ok = true end
  end
  if not ok then return {${DEPLOYMENT_FAILURES.ILLEGAL_STATE}, cur[2]} end
end
rev = rev + 1
redis.call("HSET", KEYS[1], "rec", withRevision(rev, ARGV[6]), "rev", rev, "state", ARGV[3], "updated", ARGV[5])
if ARGV[7] ~= "" then redis.call("HSET", KEYS[1], "sum", withRevision(rev, ARGV[7]))
else redis.call("HDEL", KEYS[1], "sum") end
local k = tonumber(ARGV[13])
writeNodes(KEYS[5], 14 + k)
local assigned = {}
if ARGV[12] ~= "" and k > 0 then assigned = assignVersions(KEYS[6], ARGV[12], ARGV[1], 14, 13 + k) end
if ARGV[4] == "1" then redis.call("SADD", KEYS[2], ARGV[1]) else redis.call("SREM", KEYS[2], ARGV[1]) end
redis.call("XADD", KEYS[3], "MAXLEN", "~", ARGV[11], "*", "dep", ARGV[1], "job", ARGV[2], "kind", "updated",
  "rev", string.format("%d", rev), "state", ARGV[3])
return {1, rev, assigned}
`;

/** requestControl: records a pending control and announces it. */
export const requestControlLua = `
-- KEYS[1] deployment hash  KEYS[2] changes stream
-- ARGV[1] id  ARGV[2] control  ARGV[3] now  ARGV[4] changes MAXLEN (~)  ARGV[5] reason or ""
-- Returns {1} | {-1}
local cur = redis.call("HMGET", KEYS[1], "rev", "state", "job")
if not cur[1] then return {${DEPLOYMENT_FAILURES.NOT_FOUND}} end
redis.call("HSET", KEYS[1], "control", ARGV[2], "control_at", ARGV[3])
if ARGV[5] ~= "" then redis.call("HSET", KEYS[1], "control_reason", ARGV[5])
else redis.call("HDEL", KEYS[1], "control_reason") end
redis.call("XADD", KEYS[2], "MAXLEN", "~", ARGV[4], "*", "dep", ARGV[1], "job", cur[3], "kind", "control",
  "rev", cur[1], "state", cur[2])
return {1}
`;

/** clearControl: removes the pending control if it is still the one applied. */
export const clearControlLua = `
-- KEYS[1] deployment hash   ARGV[1] control
if redis.call("HGET", KEYS[1], "control") == ARGV[1] then
  redis.call("HDEL", KEYS[1], "control", "control_at", "control_reason")
end
return 1
`;

/** assignVersions: sets a version on nodes that do not have it, remembering the previous one. */
export const assignVersionsLua = `${prelude}${assignVersions}
-- KEYS[1] versions hash  KEYS[2] lease
-- ARGV[1] epoch or ""  ARGV[2] version  ARGV[3] deployment id  ARGV[4..] node ids
-- Returns {1, {changed node ids}} | {-10, epoch}
local f = fenceFailure(KEYS[2], ARGV[1])
if f then return f end
return {1, assignVersions(KEYS[1], ARGV[2], ARGV[3], 4, #ARGV)}
`;

/** unassignVersions: restores the previous version where the version is still the given one. */
export const unassignVersionsLua = `${prelude}
-- KEYS[1] versions hash  KEYS[2] lease
-- ARGV[1] epoch or ""  ARGV[2] version  ARGV[3..] node ids
-- Returns {1, {changed node ids}} | {-10, epoch}
local f = fenceFailure(KEYS[2], ARGV[1])
if f then return f end
local changed = {}
for from = 3, #ARGV, 500 do
  local to = math.min(from + 499, #ARGV)
  local cur = redis.call("HMGET", KEYS[1], unpack(ARGV, from, to))
  local writes, deletes = {}, {}
  for i = from, to do
    local text = cur[i - from + 1]
    if text then
      local ver, _, pv, pd = string.match(text, "^(%d+)|([^|]*)|(%d+)|(.*)$")
      if ver == ARGV[2] then
        if pv == "0" then deletes[#deletes + 1] = ARGV[i]
        else
          writes[#writes + 1] = ARGV[i]
          writes[#writes + 1] = pv .. "|" .. pd .. "|0|"
        end
        changed[#changed + 1] = ARGV[i]
      end
    end
  end
  if #writes > 0 then redis.call("HSET", KEYS[1], unpack(writes)) end
  if #deletes > 0 then redis.call("HDEL", KEYS[1], unpack(deletes)) end
end
return {1, changed}
`;

/** dropVersions: deletes a job's map. */
export const dropVersionsLua = `${prelude}
-- KEYS[1] versions hash  KEYS[2] lease   ARGV[1] epoch or ""
local f = fenceFailure(KEYS[2], ARGV[1])
if f then return f end
redis.call("DEL", KEYS[1])
return {1}
`;

/** acquireLease: takes the lease when free (new epoch) or extends it for its holder. */
export const acquireLeaseLua = `
-- KEYS[1] lease  KEYS[2] epoch counter   ARGV[1] holder  ARGV[2] ttl ms
-- Returns {1, epoch, fresh 0|1} held | {0, epoch, holder, pttl} held by someone else
local cur = redis.call("GET", KEYS[1])
if cur then
  local e, h = string.match(cur, "^(%d+)|(.*)$")
  if h == ARGV[1] then
    redis.call("PEXPIRE", KEYS[1], ARGV[2])
    return {1, tonumber(e), 0}
  end
  return {0, tonumber(e) or 0, h or "", redis.call("PTTL", KEYS[1])}
end
local e = redis.call("INCR", KEYS[2])
redis.call("SET", KEYS[1], string.format("%d", e) .. "|" .. ARGV[1], "PX", ARGV[2])
return {1, e, 1}
`;

/** releaseLease: deletes the lease if the caller holds it with that epoch. */
export const releaseLeaseLua = `
-- KEYS[1] lease   ARGV[1] "<epoch>|<holder>"
if redis.call("GET", KEYS[1]) == ARGV[1] then redis.call("DEL", KEYS[1]) end
return 1
`;

/**
 * readSummaries: for each deployment hash in KEYS, its summary and head fields in one round
 * trip: `sum`, or `rec` when the deployment was written without a summary (its record is the
 * summary), then rev, state, job, created, updated, control, control_reason. A missing
 * deployment answers nils. Reads nothing else, so a page never reads a record that has a summary.
 */
export const readSummariesLua = `
local out = {}
for i, key in ipairs(KEYS) do
  local v = redis.call("HMGET", key, "sum", "rev", "state", "job", "created", "updated", "control", "control_reason")
  if not v[1] and v[2] then v[1] = redis.call("HGET", key, "rec") end
  out[i] = v
end
return out
`;
