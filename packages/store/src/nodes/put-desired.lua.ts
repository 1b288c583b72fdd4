/** `putDesired.lua`: one node's desired state, written with its revision decided atomically. */
export const putDesiredLua = `
-- putDesired: reads the node's current revision, checks the expected one, and writes the set with
-- revision = max(current + 1, min revision), in one atomic step (the revision never goes down).
-- KEYS[1] desired hash (node id -> JSON)     KEYS[2] desired revision hash (node id -> revision)
-- ARGV[1] node id    ARGV[2] expected revision or "" (no check)    ARGV[3] min revision
-- ARGV[4] body JSON without the revision (starts with "{")    ARGV[5] the largest revision
-- Returns {1, revision, stored text} | {-1, current} expected revision mismatch
--       | {-2, current} the revision would pass ARGV[5]
local id = ARGV[1]
local current = tonumber(redis.call("HGET", KEYS[2], id) or "0")
if ARGV[2] ~= "" and tonumber(ARGV[2]) ~= current then return {-1, current} end
local revision = math.max(current + 1, tonumber(ARGV[3]))
if revision > tonumber(ARGV[5]) then return {-2, current} end
local rev = string.format("%d", revision)
local text = '{"revision":' .. rev .. ',' .. string.sub(ARGV[4], 2)
redis.call("HSET", KEYS[2], id, rev)
redis.call("HSET", KEYS[1], id, text)
return {1, revision, text}
`;
