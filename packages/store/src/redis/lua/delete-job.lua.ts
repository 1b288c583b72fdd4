/** `deleteJob.lua`: a guarded delete, in one atomic step. */
export const deleteJobLua = `
-- deleteJob: marks the job deleted (bumps the revision), which moves it to the "deleted" index
-- partitions: its (namespace, name) is free from then on, and lists skip it unless asked.
-- The record and its kept versions stay, so getJob and listVersions still answer.
-- KEYS[1] records hash        KEYS[2] events stream      KEYS[3] leader lease (the fence)
-- ARGV[1] key prefix          ARGV[2] events MAXLEN (~)  ARGV[3] id           ARGV[4] now (ms)
-- ARGV[5] expected revision or ""                         ARGV[6] allowed from: "*" or a CSV
-- ARGV[7] leader epoch or "" (no fence)
-- Returns {1, id, packed record}, or {E_..., ...} (failures.ts).
local maxLen, id = ARGV[2], ARGV[3]
local fenced = checkFence(KEYS[3], ARGV[7])
if fenced then return fenced end
local meta, spec = readRecord(id)
if not meta then return {E_NOT_FOUND, id} end
local failure = checkGuard(id, meta, "deleted", tonumber(ARGV[5]), ARGV[6])
if failure then return failure end
indexRemove(id, meta)
local now = tonumber(ARGV[4])
meta[R_REVISION] = meta[R_REVISION] + 1
meta[R_STATE] = "deleted"
meta[R_MESSAGE] = DELETED_MESSAGE
meta[R_DETAILS] = {}
meta[R_UPDATED_AT] = now
local packed = packRecord(meta, spec)
redis.call("HSET", KEYS[1], id, packed)
indexAdd(id, meta)
emit(KEYS[2], maxLen, "deleted", id, meta, now)
return {1, id, packed}
`;
