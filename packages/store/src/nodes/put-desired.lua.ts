/**
 * `putDesired.lua`: the desired states of one or more nodes, each written with its revision
 * decided atomically where the current one is read (one script call per batch of writes).
 */
export const putDesiredLua = `
-- putDesired: for each write in order: reads the node's current revision, checks the expected one,
-- and writes the set with revision = max(current + 1, min revision) (the revision never goes down).
-- A refused write does not stop the others; a later write of the same node sees an earlier one.
-- KEYS[1] desired hash (node id -> JSON)     KEYS[2] desired revision hash (node id -> revision)
-- ARGV[1] the largest revision; then 4 per write:
--   node id, expected revision or "" (no check), min revision, body JSON without the revision
--   (starts with "{")
-- Returns 2 integers per write: 1, revision (written) | -1, current (expected revision mismatch)
--   | -2, current (the revision would pass ARGV[1])
local max = tonumber(ARGV[1])
local out = {}
local n = 0
for i = 2, #ARGV, 4 do
  local id = ARGV[i]
  local current = tonumber(redis.call("HGET", KEYS[2], id) or "0")
  local code = 1
  local value = current
  if ARGV[i + 1] ~= "" and tonumber(ARGV[i + 1]) ~= current then
    code = -1
  else
    local revision = math.max(current + 1, tonumber(ARGV[i + 2]))
    if revision > max then
      code = -2
    else
      local rev = string.format("%d", revision)
      redis.call("HSET", KEYS[2], id, rev)
      redis.call("HSET", KEYS[1], id, '{"revision":' .. rev .. ',' .. string.sub(ARGV[i + 3], 2))
      value = revision
    end
  end
  out[n + 1] = code
  out[n + 2] = value
  n = n + 2
end
return out
`;
