/** `updateStatus.lua`: a guarded status change, in one atomic step. */
export const updateStatusLua = `
-- updateStatus: sets state, message, details (replaced), and optionally the deployment id and
-- the stable version; bumps the revision; moves the job to its new index partition; appends a
-- "status" change-stream entry.
-- KEYS[1] records hash        KEYS[2] events stream      KEYS[3] leader lease (the fence)
-- ARGV[1] key prefix          ARGV[2] events MAXLEN (~)  ARGV[3] id           ARGV[4] new state
-- ARGV[5] message             ARGV[6] details JSON        ARGV[7] "1" to set the deployment id
-- ARGV[8] deployment id       ARGV[9] stable version or "" (unchanged)        ARGV[10] now (ms)
-- ARGV[11] expected revision or ""                        ARGV[12] allowed from: "*" or a CSV
-- ARGV[13] leader epoch or "" (no fence)
-- Returns {1, id, packed record}, or {E_..., ...} (failures.ts).
local maxLen, id, state = ARGV[2], ARGV[3], ARGV[4]
local fenced = checkFence(KEYS[3], ARGV[13])
if fenced then return fenced end
local meta, spec = readRecord(id)
if not meta then return {E_NOT_FOUND, id} end
local failure = checkGuard(id, meta, state, tonumber(ARGV[11]), ARGV[12])
if failure then return failure end
indexRemove(id, meta)
meta[R_REVISION] = meta[R_REVISION] + 1
meta[R_STATE] = state
meta[R_MESSAGE] = ARGV[5]
meta[R_DETAILS] = cjson.decode(ARGV[6])
if ARGV[7] == "1" then meta[R_DEPLOYMENT_ID] = ARGV[8] end
if ARGV[9] ~= "" then meta[R_STABLE_VERSION] = tonumber(ARGV[9]) end
local now = tonumber(ARGV[10])
meta[R_UPDATED_AT] = now
local packed = packRecord(meta, spec)
redis.call("HSET", KEYS[1], id, packed)
indexAdd(id, meta)
emit(KEYS[2], maxLen, "status", id, meta, now)
return {1, id, packed}
`;
