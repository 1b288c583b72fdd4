/** `listJobs.lua`: one keyset page, merged from the index partitions a query selects. */
export const listJobsLua = `
-- listJobs: the first ARGV[8] jobs strictly after the cursor in one order, read from every
-- index partition (namespace x state x type) the query selects, merged k-way. Each partition
-- is read from the cursor with ZRANGEBYLEX ... LIMIT in chunks that grow as the partition
-- keeps winning, so a page costs O(k * log N + count * log k) whatever its depth.
-- KEYS[1] records hash        KEYS[2] namespaces set
-- ARGV[1] key prefix          ARGV[2] namespace or "*"   ARGV[3] states CSV   ARGV[4] types CSV
-- ARGV[5] index kind: created | updated | name           ARGV[6] "asc" | "desc"
-- ARGV[7] cursor member ("" = from the start)            ARGV[8] count
-- Returns {more 0|1, id, packed record, id, packed record, ...}.
local kind, asc, cursor, count = ARGV[5], ARGV[6] == "asc", ARGV[7], tonumber(ARGV[8])
local namespaces = {ARGV[2]}
if ARGV[2] == "*" then namespaces = redis.call("SMEMBERS", KEYS[2]) end
local parts = {}
for _, ns in ipairs(namespaces) do
  for st in string.gmatch(ARGV[3], "[^,]+") do
    for ty in string.gmatch(ARGV[4], "[^,]+") do
      parts[#parts + 1] = {key = indexKey(ns, st, ty, kind)}
    end
  end
end
if #parts == 0 or count < 1 then return {0} end

-- first(a, b): whether member a comes before b in the requested direction, in byte order as
-- Redis sorts members. Lua's "<" uses strcoll(), which is byte order only in the C locale:
-- probe it once and compare bytes by hand otherwise.
local first
if ("B" < "a") and ("Z" < "_") and ("_" < "a") and ("a\\0b" < "a\\1") and not ("a" < "B") then
  if asc then
    first = function(a, b) return a < b end
  else
    first = function(a, b) return b < a end
  end
else
  local function lessThan(a, b)
    local la, lb = #a, #b
    for i = 1, math.min(la, lb) do
      local x, y = string.byte(a, i), string.byte(b, i)
      if x ~= y then return x < y end
    end
    return la < lb
  end
  if asc then
    first = lessThan
  else
    first = function(a, b) return lessThan(b, a) end
  end
end

local want = count + 1 -- one more than asked, to tell whether more follow
local function refill(p)
  local from = (asc and "-") or "+"
  if p.last then from = "(" .. p.last elseif cursor ~= "" then from = "(" .. cursor end
  local got
  if asc then
    got = redis.call("ZRANGEBYLEX", p.key, from, "+", "LIMIT", 0, p.chunk)
  else
    got = redis.call("ZREVRANGEBYLEX", p.key, from, "-", "LIMIT", 0, p.chunk)
  end
  p.buf, p.pos, p.done = got, 1, #got < p.chunk
  if #got > 0 then p.last = got[#got] end
  p.chunk = math.min(p.chunk * 2, want)
  return #got > 0
end

-- A binary min-heap (in the requested direction) of the partitions with members left, keyed by
-- each partition's next member (kept in p.head so sifting reads no nested tables).
local heap, n = {}, 0
local function sift(i)
  local p = heap[i]
  while true do
    local l = 2 * i
    if l > n then break end
    local c = heap[l]
    local r = heap[l + 1]
    if r and first(r.head, c.head) then l, c = l + 1, r end
    if not first(c.head, p.head) then break end
    heap[i] = c
    i = l
  end
  heap[i] = p
end

local chunk = math.min(want, math.max(4, math.ceil(want / #parts) + 1))
for _, p in ipairs(parts) do
  p.chunk = chunk
  if refill(p) then
    p.head = p.buf[1]
    n = n + 1
    heap[n] = p
  end
end
for i = math.floor(n / 2), 1, -1 do sift(i) end

local ids = {}
while n > 0 and #ids < want do
  local p = heap[1]
  ids[#ids + 1] = memberId(kind, p.head)
  p.pos = p.pos + 1
  if p.pos > #p.buf and (p.done or not refill(p)) then
    heap[1] = heap[n]
    heap[n] = nil
    n = n - 1
  else
    p.head = p.buf[p.pos]
  end
  if n > 0 then sift(1) end
end

local out = {0}
if #ids > count then
  out[1] = 1
  ids[#ids] = nil
end
if #ids > 0 then
  local records = redis.call("HMGET", KEYS[1], unpack(ids))
  for i, id in ipairs(ids) do
    out[#out + 1] = id
    out[#out + 1] = records[i]
  end
end
return out
`;
