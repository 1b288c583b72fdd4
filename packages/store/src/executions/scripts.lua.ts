/**
 * The Lua scripts of the Redis execution and log stores, one constant per script (each with its
 * KEYS/ARGV header), registered with `defineCommand` in `redis.ts` after the key prelude of
 * `keys.ts`. Every script is one atomic step; refusals are coded replies, never Lua errors. The
 * memory store (`memory.ts`) is the reference these mirror, held to the same conformance suite.
 */

/** observeExecution: one agent report under the monotonic guard (`reportApplies` in TypeScript). */
export const observeExecutionLua = `
-- KEYS[1] record  KEYS[2] ended zset  KEYS[3] the job's live index  KEYS[4] the node's set
--   (KEYS[3] and KEYS[4] are written only when the script creates the record)
-- ARGV[1] id  ARGV[2] reporting node  ARGV[3] state  ARGV[4] attempt  ARGV[5] reported_at  ARGV[6] now
-- ARGV[7] csv: the states the reported state may follow within an attempt
-- ARGV[8] csv: terminal states  ARGV[9] csv: ended states
-- ARGV[10] number of creation field/value pairs (0: never create)  ARGV[11] the job index member
-- ARGV[12 ..] the creation pairs, then the observed field/value pairs
-- Returns {1, previous state ("" when created), record} | {2, record} stale | {3} missing
--       | {4, record} archived | {5, owner node} another node's execution
local id, node, st = ARGV[1], ARGV[2], ARGV[3]
local att, rep = tonumber(ARGV[4]), tonumber(ARGV[5])
local ncreate = tonumber(ARGV[10])
local first = 12 + 2 * ncreate
local cur = redis.call("HMGET", KEYS[1], "state", "attempt", "reported_at", "node_id", "archived", "ended_at")
local previous = cur[1]
if not previous then
  if ncreate == 0 then return {3} end
  redis.call("HSET", KEYS[1], unpack(ARGV, 12, first - 1))
  redis.call("ZADD", KEYS[3], 0, ARGV[11])
  redis.call("SADD", KEYS[4], id)
  cur = {"waiting", "0", "0", node, "0", "0"}
  previous = ""
else
  if cur[5] == "1" then return {4, redis.call("HGETALL", KEYS[1])} end
  if cur[4] ~= node then return {5, cur[4]} end
  local cs, ca, cr = cur[1], tonumber(cur[2]), tonumber(cur[3])
  local ok
  if att ~= ca then ok = att > ca
  elseif st == cs then ok = rep > cr
  elseif not setOf(ARGV[7])[cs] then ok = false
  elseif setOf(ARGV[8])[st] and cs ~= "lost" then ok = true
  else ok = rep > cr end
  if not ok then return {2, redis.call("HGETALL", KEYS[1])} end
end
if #ARGV >= first then redis.call("HSET", KEYS[1], unpack(ARGV, first, #ARGV)) end
redis.call("HSET", KEYS[1], "state", st, "attempt", ARGV[4], "reported_at", ARGV[5], "updated_at", ARGV[6])
if setOf(ARGV[9])[st] then
  if cur[6] == "0" then
    redis.call("HSET", KEYS[1], "ended_at", ARGV[6])
    redis.call("ZADD", KEYS[2], ARGV[6], id)
  end
elseif cur[6] ~= "0" then
  redis.call("HSET", KEYS[1], "ended_at", "0")
  redis.call("ZREM", KEYS[2], id)
end
return {1, previous, redis.call("HGETALL", KEYS[1])}
`;

/** ensureExecution: a placeholder for an assignment, unless the execution exists. */
export const ensureExecutionLua = `
-- KEYS[1] record  KEYS[2] the job's live index  KEYS[3] the node's set
-- ARGV[1] the job index member  ARGV[2] id  ARGV[3 ..] the placeholder's field/value pairs
-- Returns 1 created | 0 existed
if redis.call("EXISTS", KEYS[1]) == 1 then return 0 end
redis.call("HSET", KEYS[1], unpack(ARGV, 3, #ARGV))
redis.call("ZADD", KEYS[2], 0, ARGV[1])
redis.call("SADD", KEYS[3], ARGV[2])
return 1
`;

/** withdrawPlaceholders: deletes a node's never-reported placeholders that are not kept. */
export const withdrawPlaceholdersLua = `
-- KEYS[1] the node's set  KEYS[2] ended zset
-- ARGV[1] prefix  ARGV[2 ..] the ids to keep
-- Returns {id, job id} of each placeholder deleted
PREFIX = ARGV[1]
local keep = {}
for i = 2, #ARGV do keep[ARGV[i]] = true end
local out = {}
for _, id in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  if not keep[id] then
    local rk = recordKey(id)
    local f = redis.call("HMGET", rk, "reported_at", "archived", "job_id", "created_at")
    if not f[1] then
      redis.call("SREM", KEYS[1], id)
    elseif f[1] == "0" and f[2] ~= "1" then
      redis.call("DEL", rk)
      redis.call("SREM", KEYS[1], id)
      redis.call("ZREM", jobLiveKey(f[3]), member(f[4], id))
      redis.call("ZREM", KEYS[2], id)
      out[#out + 1] = {id, f[3]}
    end
  end
end
return out
`;

/** markLost: the node's executions that are not ended become lost. */
export const markLostLua = `
-- KEYS[1] the node's set  KEYS[2] ended zset
-- ARGV[1] prefix  ARGV[2] now  ARGV[3] message  ARGV[4] csv: ended states
-- Returns the changed records
PREFIX = ARGV[1]
local ended = setOf(ARGV[4])
local out = {}
for _, id in ipairs(redis.call("SMEMBERS", KEYS[1])) do
  local rk = recordKey(id)
  local f = redis.call("HMGET", rk, "state", "archived")
  if f[1] and f[2] ~= "1" and not ended[f[1]] then
    redis.call("HSET", rk, "state", "lost", "exception", ARGV[3], "updated_at", ARGV[2], "ended_at", ARGV[2])
    redis.call("ZADD", KEYS[2], ARGV[2], id)
    out[#out + 1] = redis.call("HGETALL", rk)
  end
end
return out
`;

/** requestStop: desired state stopped (cancel), refused once the execution is terminal. */
export const requestStopLua = `
-- KEYS[1] record
-- ARGV[1] now  ARGV[2] reason  ARGV[3] csv: terminal states
-- Returns {1, record} changed | {2, record} already stopped | {0} missing | {-1, state} refused
local f = redis.call("HMGET", KEYS[1], "state", "desired_state", "archived")
if not f[1] then return {0} end
if setOf(ARGV[3])[f[1]] then return {-1, f[1]} end
if f[3] == "1" then return {-1, "archived"} end
if f[2] == "stopped" then return {2, redis.call("HGETALL", KEYS[1])} end
redis.call("HSET", KEYS[1], "desired_state", "stopped", "cancel_reason", ARGV[2], "canceled_at", ARGV[1],
  "updated_at", ARGV[1])
return {1, redis.call("HGETALL", KEYS[1])}
`;

/** archiveExecutions: moves executions ended long enough ago to their job's archive index. */
export const archiveExecutionsLua = `
-- KEYS[1] ended zset  KEYS[2] archived zset
-- ARGV[1] prefix  ARGV[2] ended at or before  ARGV[3] now  ARGV[4] limit
-- Returns the ids archived
PREFIX = ARGV[1]
local out = {}
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[4]))
for _, id in ipairs(ids) do
  local rk = recordKey(id)
  local f = redis.call("HMGET", rk, "job_id", "created_at", "node_id", "archived")
  if f[1] and f[4] ~= "1" then
    local m = member(f[2], id)
    redis.call("ZREM", jobLiveKey(f[1]), m)
    redis.call("ZADD", jobArchivedKey(f[1]), 0, m)
    redis.call("SREM", nodeKey(f[3]), id)
    redis.call("HSET", rk, "archived", "1", "archived_at", ARGV[3], "updated_at", ARGV[3])
    redis.call("ZADD", KEYS[2], ARGV[3], id)
    out[#out + 1] = id
  end
  redis.call("ZREM", KEYS[1], id)
end
return out
`;

/** purgeExecutions: deletes executions archived long enough ago. */
export const purgeExecutionsLua = `
-- KEYS[1] archived zset
-- ARGV[1] prefix  ARGV[2] archived at or before  ARGV[3] limit
-- Returns the ids deleted
PREFIX = ARGV[1]
local out = {}
local ids = redis.call("ZRANGEBYSCORE", KEYS[1], "-inf", ARGV[2], "LIMIT", 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do
  local rk = recordKey(id)
  local f = redis.call("HMGET", rk, "job_id", "created_at")
  if f[1] then redis.call("ZREM", jobArchivedKey(f[1]), member(f[2], id)) end
  redis.call("DEL", rk)
  redis.call("ZREM", KEYS[1], id)
  out[#out + 1] = id
end
return out
`;

/** listExecutions: one page of a job's executions, merging its live and archive indexes. */
export const listExecutionsLua = `
-- KEYS[1] the job's live index  KEYS[2] the job's archive index
-- ARGV[1] prefix  ARGV[2] cursor member ("" = from the start)  ARGV[3] limit  ARGV[4] max examined
-- ARGV[5] csv: states ("" = all)  ARGV[6] node id ("" = all)  ARGV[7] "1" = include archived
-- Returns {next member ("" on the last page), record, record, ...}
PREFIX = ARGV[1]
local limit, maxScan = tonumber(ARGV[3]), tonumber(ARGV[4])
local states = ARGV[5] ~= "" and setOf(ARGV[5]) or nil
local node = ARGV[6]
local CHUNK = math.min(math.max(limit * 2, 64), 1000)
local function reader(key)
  return { key = key, buf = {}, pos = 1, start = ARGV[2] == "" and "-" or ("(" .. ARGV[2]), exhausted = false }
end
local function peek(r)
  if r == nil then return nil end
  if r.pos <= #r.buf then return r.buf[r.pos] end
  if r.exhausted then return nil end
  r.buf = redis.call("ZRANGEBYLEX", r.key, r.start, "+", "LIMIT", 0, CHUNK)
  r.pos = 1
  if #r.buf < CHUNK then r.exhausted = true end
  if #r.buf == 0 then return nil end
  r.start = "(" .. r.buf[#r.buf]
  return r.buf[1]
end
local live = reader(KEYS[1])
local arch = ARGV[7] == "1" and reader(KEYS[2]) or nil
local out = {""}
local found, examined, last = 0, 0, nil
while true do
  local a, b = peek(live), peek(arch)
  if a == nil and b == nil then break end
  if found >= limit or examined >= maxScan then
    out[1] = last
    break
  end
  local m
  if b == nil or (a ~= nil and a < b) then
    m = a
    live.pos = live.pos + 1
  else
    m = b
    arch.pos = arch.pos + 1
  end
  examined = examined + 1
  last = m
  local rk = recordKey(memberId(m))
  local f = redis.call("HMGET", rk, "state", "node_id")
  if f[1] and (states == nil or states[f[1]]) and (node == "" or f[2] == node) then
    out[#out + 1] = redis.call("HGETALL", rk)
    found = found + 1
  end
end
return out
`;

/** appendLogs: appends new lines to an execution's bounded log. */
export const appendLogsLua = `
-- KEYS[1] the log list  KEYS[2] the log's counters hash
-- ARGV[1] max lines  ARGV[2] max bytes  ARGV[3] lines the agent dropped before this batch
-- ARGV[4 ..] triples: agent time, agent sequence, the stored line without its position
-- Returns {appended, last position, dropped in total}
local maxLines, maxBytes = tonumber(ARGV[1]), tonumber(ARGV[2])
local m = redis.call("HMGET", KEYS[2], "n", "b", "d", "ad", "lt", "la")
local n, b = tonumber(m[1] or "0"), tonumber(m[2] or "0")
local d, ad = tonumber(m[3] or "0"), tonumber(m[4] or "0")
local lt, la = tonumber(m[5] or "-1"), tonumber(m[6] or "-1")
local appended = 0
for i = 4, #ARGV, 3 do
  local t, a = tonumber(ARGV[i]), tonumber(ARGV[i + 1])
  if t > lt or (t == lt and a > la) then
    n = n + 1
    local line = '{"s":' .. string.format("%d", n) .. ',' .. string.sub(ARGV[i + 2], 2)
    redis.call("RPUSH", KEYS[1], line)
    b = b + string.len(line)
    lt, la = t, a
    appended = appended + 1
  end
end
if appended == 0 then return {0, n, d + ad} end
ad = ad + tonumber(ARGV[3])
local len = redis.call("LLEN", KEYS[1])
while len > 0 and (len > maxLines or b > maxBytes) do
  local x = redis.call("LPOP", KEYS[1])
  b = b - string.len(x)
  d = d + 1
  len = len - 1
end
redis.call("HSET", KEYS[2], "n", string.format("%d", n), "b", string.format("%d", b), "d", string.format("%d", d),
  "ad", string.format("%d", ad), "lt", string.format("%d", lt), "la", string.format("%d", la))
return {appended, n, d + ad}
`;

/** readLogs: the tail of an execution's log, or the lines after a position. */
export const readLogsLua = `
-- KEYS[1] the log list  KEYS[2] the log's counters hash
-- ARGV[1] "tail" | "after"  ARGV[2] how many (tail; 0 = all kept) | the position (after)  ARGV[3] limit
-- Returns {last position, dropped in total, line, line, ...}
local m = redis.call("HMGET", KEYS[2], "n", "d", "ad")
local n = tonumber(m[1] or "0")
local dropped = tonumber(m[2] or "0") + tonumber(m[3] or "0")
local len = redis.call("LLEN", KEYS[1])
local value, limit = tonumber(ARGV[2]), tonumber(ARGV[3])
local start
if ARGV[1] == "after" then
  start = math.max(0, value + 1 - (n - len + 1))
else
  start = 0
  if value > 0 then start = math.max(0, len - value) end
end
local out = {n, dropped}
if start >= len or limit <= 0 then return out end
local lines = redis.call("LRANGE", KEYS[1], start, start + limit - 1)
for i = 1, #lines do out[#out + 1] = lines[i] end
return out
`;
