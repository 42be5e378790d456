-- Commits one batch to Redis in one call (docs/design.md §5): ZADD GT of the store's absolute totals, names,
-- dead letters, XACK, and — only when the top changed — a new version, snapshot and PUBLISH.
-- KEYS: 1 lb, 2 names, 3 top, 4 version, 5 updates stream, 6 dlq
-- ARGV: 1 group, 2 channel, 3 board size, 4 updatedAt, 5 snapshot? (1/0),
--       6 #totals, 7 #acks, 8 #dead, 9 dlq max length,
--       then #totals × (user, score, name or ''), #acks × id, #dead × (id, reason, fields json, deliveries)
-- Returns {changed (0/1), version}.
-- Ties: equal scores are ranked by user id ascending (byte order).
local lb, names, top, version_key, stream, dlq = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6]
local group, channel = ARGV[1], ARGV[2]
local size, updated_at, snapshot = tonumber(ARGV[3]), ARGV[4], ARGV[5] == '1'
local n_totals, n_acks, n_dead, dlq_max = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local CHUNK = 500

local i = 10
local zadd, hset = {}, {}
local function flush()
  if #zadd > 0 then redis.call('ZADD', lb, 'GT', unpack(zadd)); zadd = {} end
  if #hset > 0 then redis.call('HSET', names, unpack(hset)); hset = {} end
end
for _ = 1, n_totals do
  local user, score, name = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  zadd[#zadd + 1] = score
  zadd[#zadd + 1] = user
  if name ~= '' then
    hset[#hset + 1] = user
    hset[#hset + 1] = name
  end
  if #zadd >= 2 * CHUNK then flush() end
  i = i + 3
end
flush()

local acks = {}
for _ = 1, n_acks do
  acks[#acks + 1] = ARGV[i]
  i = i + 1
  if #acks >= CHUNK then redis.call('XACK', stream, group, unpack(acks)); acks = {} end
end
if #acks > 0 then redis.call('XACK', stream, group, unpack(acks)) end

for _ = 1, n_dead do
  redis.call('XADD', dlq, 'MAXLEN', '~', dlq_max, '*', 'event', ARGV[i], 'reason', ARGV[i + 1],
    'fields', ARGV[i + 2], 'deliveries', ARGV[i + 3])
  i = i + 4
end

if not snapshot then
  return {0, tonumber(redis.call('GET', version_key) or '0')}
end

-- The top `size`: members above the cutoff score, sorted by (score desc, user asc), then the members
-- at the cutoff in ZRANGEBYSCORE order (user ascending) up to `size`.
local rows = {}
local head = redis.call('ZREVRANGE', lb, 0, size - 1, 'WITHSCORES')
if #head > 0 then
  local cutoff = head[#head]
  local above = redis.call('ZREVRANGEBYSCORE', lb, '+inf', '(' .. cutoff, 'WITHSCORES')
  for j = 1, #above, 2 do
    rows[#rows + 1] = {above[j], tonumber(above[j + 1])}
  end
  table.sort(rows, function(a, b)
    if a[2] ~= b[2] then return a[2] > b[2] end
    return a[1] < b[1]
  end)
  local at = redis.call('ZRANGEBYSCORE', lb, cutoff, cutoff, 'LIMIT', 0, size - #rows)
  local cut = tonumber(cutoff)
  for j = 1, #at do
    rows[#rows + 1] = {at[j], cut}
  end
end

local parts = {}
if #rows > 0 then
  local members = {}
  for j = 1, #rows do members[j] = rows[j][1] end
  local shown = redis.call('HMGET', names, unpack(members))
  for j = 1, #rows do
    local name = shown[j]
    if not name then name = rows[j][1] end
    -- Scores are integers below 2^53: print them whole (cjson would use exponent form).
    parts[j] = '{"rank":' .. j .. ',"userId":' .. cjson.encode(rows[j][1]) .. ',"name":' ..
      cjson.encode(name) .. ',"score":' .. string.format('%.0f', rows[j][2]) .. '}'
  end
end
local entries = '[' .. table.concat(parts, ',') .. ']'

local current = redis.call('GET', top)
local old_entries = '[]'
if current then
  local at = string.find(current, '"entries":', 1, true)
  if at then old_entries = string.sub(current, at + 10, -2) end
end
if current and old_entries == entries then
  return {0, tonumber(redis.call('GET', version_key) or '0')}
end
if not current and entries == '[]' then
  return {0, tonumber(redis.call('GET', version_key) or '0')}
end

-- Versions only grow, even across a lost cache: a missing counter restarts from server time in
-- microseconds, above any version handed out before (fewer than 10^6 versions a second).
local version
if redis.call('EXISTS', version_key) == 1 then
  version = redis.call('INCR', version_key)
else
  local t = redis.call('TIME')
  version = tonumber(t[1]) * 1000000 + tonumber(t[2])
  redis.call('SET', version_key, string.format('%.0f', version))
end
local json = '{"version":' .. string.format('%.0f', version) .. ',"updatedAt":' .. cjson.encode(updated_at) ..
  ',"entries":' .. entries .. '}'
redis.call('SET', top, json)
redis.call('PUBLISH', channel, json)
return {1, version}
