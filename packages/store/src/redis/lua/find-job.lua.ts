/** `findJob.lua`: the live job with a (namespace, name). */
export const findJobLua = `
-- findJob: the job that owns (namespace, name), read from the live-state name partitions.
-- KEYS[1] records hash
-- ARGV[1] key prefix          ARGV[2] namespace          ARGV[3] name
-- Returns {id, packed record}, or nil.
local id = findLive(ARGV[2], ARGV[3])
if not id then return nil end
return {id, redis.call("HGET", KEYS[1], id)}
`;
