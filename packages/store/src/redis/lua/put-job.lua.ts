/** `putJob.lua`: create or update a job by (namespace, name), in one atomic step. */
export const putJobLua = `
-- putJob: creates the job named (namespace, name), or gives it a new version, or does nothing
-- when the spec digest is unchanged. Writes the record, its index entries, the kept version,
-- the namespace, the change-stream entry and the idempotency outcome together.
-- KEYS[1] records hash        KEYS[2] versions hash     KEYS[3] events stream
-- KEYS[4] namespaces set      KEYS[5] idempotency key (unused when ARGV[16] is "0")
-- KEYS[6] leader lease (read by the fence)
-- ARGV[1] key prefix          ARGV[2] events MAXLEN (~)  ARGV[3] namespace     ARGV[4] name
-- ARGV[5] type                ARGV[6] id for a create    ARGV[7] now (ms)      ARGV[8] spec JSON
-- ARGV[9] labels slot JSON (0 = spec.labels)             ARGV[10] spec digest
-- ARGV[11] expected version or ""                        ARGV[12] expected revision or ""
-- ARGV[13] version kind       ARGV[14] source version    ARGV[15] versions kept
-- ARGV[16] idempotency TTL in seconds, "0" without a key  ARGV[17] leader epoch or "" (no fence)
-- Returns {1, id, packed record, changed 0|1, created 0|1}, or {E_..., ...} (failures.ts).
local maxLen, ns, name, jtype, newId = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local now = tonumber(ARGV[7])
local specJson, labels, digest = ARGV[8], cjson.decode(ARGV[9]), ARGV[10]
local expectedVersion, expectedRevision = tonumber(ARGV[11]), tonumber(ARGV[12])
local kind, sourceVersion, keep = ARGV[13], tonumber(ARGV[14]), tonumber(ARGV[15])
local idemTtl = tonumber(ARGV[16])

-- An orchestrator's write (a rollback version) goes ahead only while its epoch holds the lease.
local fenced = checkFence(KEYS[6], ARGV[17])
if fenced then return fenced end

-- A retried command (same key): answer the first outcome with the job as it is now.
if idemTtl > 0 then
  local seen = redis.call("GET", KEYS[5])
  if seen then
    local id, changed, created = string.match(seen, "^(.*)|(%d)|(%d)$")
    local packed = id and redis.call("HGET", KEYS[1], id)
    if packed then return {1, id, packed, tonumber(changed), tonumber(created)} end
  end
end
local function done(id, packed, changed, created)
  if idemTtl > 0 then
    redis.call("SET", KEYS[5], id .. "|" .. changed .. "|" .. created, "EX", idemTtl)
  end
  return {1, id, packed, changed, created}
end

local id = findLive(ns, name)
if not id then
  if expectedVersion and expectedVersion ~= 0 then return {E_VERSION_CONFLICT, expectedVersion, 0, 0} end
  if expectedRevision and expectedRevision ~= 0 then return {E_REVISION_CONFLICT, expectedRevision, 0, 0} end
  if redis.call("HEXISTS", KEYS[1], newId) == 1 then return {E_ID_TAKEN, newId} end
  local meta = {}
  meta[R_NAMESPACE] = ns
  meta[R_NAME] = name
  meta[R_TYPE] = jtype
  meta[R_VERSION] = 1
  meta[R_REVISION] = 1
  meta[R_STABLE_VERSION] = 0
  meta[R_STATE] = "pending"
  meta[R_MESSAGE] = submittedMessage(1)
  meta[R_DETAILS] = {}
  meta[R_DEPLOYMENT_ID] = ""
  meta[R_CREATED_AT] = now
  meta[R_UPDATED_AT] = now
  meta[R_LABELS] = labels
  meta[R_DIGEST] = digest
  meta[R_VERSION_CREATED_AT] = now
  meta[R_VERSION_KIND] = kind
  meta[R_SOURCE_VERSION] = sourceVersion
  meta[R_OLDEST_VERSION] = 1
  local packed = packRecord(meta, specJson)
  redis.call("HSET", KEYS[1], newId, packed)
  indexAdd(newId, meta)
  redis.call("SADD", KEYS[4], ns)
  emit(KEYS[3], maxLen, "created", newId, meta, now)
  return done(newId, packed, 1, 1)
end

local meta, spec, packed = readRecord(id)
if expectedVersion and expectedVersion ~= meta[R_VERSION] then
  return {E_VERSION_CONFLICT, expectedVersion, meta[R_VERSION], meta[R_REVISION]}
end
if expectedRevision and expectedRevision ~= meta[R_REVISION] then
  return {E_REVISION_CONFLICT, expectedRevision, meta[R_VERSION], meta[R_REVISION]}
end
if meta[R_DIGEST] == digest then return done(id, packed, 0, 0) end

-- A new version: the current spec moves to the versions hash (unless it falls out of the kept
-- window right away), the oldest kept versions beyond the bound are dropped.
local version = meta[R_VERSION] + 1
local oldest = meta[R_OLDEST_VERSION]
local keepFrom = math.max(oldest, version - keep + 1)
if meta[R_VERSION] >= keepFrom then
  redis.call("HSET", KEYS[2], versionField(id, meta[R_VERSION]),
    packVersion(meta[R_VERSION_CREATED_AT], meta[R_VERSION_KIND], meta[R_SOURCE_VERSION], spec))
end
for v = oldest, math.min(keepFrom - 1, meta[R_VERSION] - 1) do
  redis.call("HDEL", KEYS[2], versionField(id, v))
end
indexRemove(id, meta)
meta[R_TYPE] = jtype
meta[R_VERSION] = version
meta[R_REVISION] = meta[R_REVISION] + 1
meta[R_STATE] = "pending"
meta[R_MESSAGE] = submittedMessage(version)
meta[R_DETAILS] = {}
meta[R_UPDATED_AT] = now
meta[R_LABELS] = labels
meta[R_DIGEST] = digest
meta[R_VERSION_CREATED_AT] = now
meta[R_VERSION_KIND] = kind
meta[R_SOURCE_VERSION] = sourceVersion
meta[R_OLDEST_VERSION] = keepFrom
packed = packRecord(meta, specJson)
redis.call("HSET", KEYS[1], id, packed)
indexAdd(id, meta)
emit(KEYS[3], maxLen, "updated", id, meta, now)
return done(id, packed, 1, 0)
`;
