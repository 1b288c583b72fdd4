/** `listVersions.lua`: kept versions newest first, read atomically with the record. */
export const listVersionsLua = `
-- listVersions: kept versions newest first, below ARGV[3] when given. The current version's
-- spec lives in the record, the older ones in the versions hash; both are read in one step so a
-- concurrent put cannot make a version appear twice or not at all.
-- KEYS[1] records hash        KEYS[2] versions hash
-- ARGV[1] key prefix          ARGV[2] job id             ARGV[3] before version or ""
-- ARGV[4] limit
-- Returns {1, next (0 = none), version, packed version, ...}, or {E_NOT_FOUND, id}.
local id = ARGV[2]
local meta, spec = readRecord(id)
if not meta then return {E_NOT_FOUND, id} end
local current, oldest = meta[R_VERSION], meta[R_OLDEST_VERSION]
local top = current
local before = tonumber(ARGV[3])
if before and before - 1 < top then top = before - 1 end
local bottom = math.max(oldest, top - tonumber(ARGV[4]) + 1)
local out = {1, 0}
for v = top, bottom, -1 do
  out[#out + 1] = v
  if v == current then
    out[#out + 1] = packVersion(meta[R_VERSION_CREATED_AT], meta[R_VERSION_KIND], meta[R_SOURCE_VERSION], spec)
  else
    out[#out + 1] = redis.call("HGET", KEYS[2], versionField(id, v))
  end
end
if top >= bottom and bottom > oldest then out[2] = bottom end
return out
`;

/** `getVersion.lua`: one kept version, read atomically with the record. */
export const getVersionLua = `
-- getVersion: one kept version, or nil when it never existed or was dropped.
-- KEYS[1] records hash        KEYS[2] versions hash
-- ARGV[1] key prefix          ARGV[2] job id             ARGV[3] version
-- Returns the packed version, or nil.
local id, version = ARGV[2], tonumber(ARGV[3])
local meta, spec = readRecord(id)
if not meta then return nil end
if version == meta[R_VERSION] then
  return packVersion(meta[R_VERSION_CREATED_AT], meta[R_VERSION_KIND], meta[R_SOURCE_VERSION], spec)
end
if version < meta[R_OLDEST_VERSION] or version > meta[R_VERSION] then return nil end
return redis.call("HGET", KEYS[2], versionField(id, version))
`;
