-- Commits one batch of partition p in one call (docs/design.md §5.5), fenced by the owner's lease:
-- ZADD of the store's absolute totals of every user in the batch, names, dead letters, the partition's
-- top (a new version and a `changed` message only when its entries changed), the cursor, and the trim
-- of the stream up to the cursor.
-- KEYS: 1 lease, 2 lb, 3 names, 4 top, 5 cursor, 6 dlq, 7 updates
-- ARGV: 1 lease value, 2 changed channel, 3 board size, 4 updatedAt, 5 new cursor ('' keeps it),
--       6 hw (highest applied entry id; '' keeps it), 7 #totals, 8 #dead, 9 dlq max length,
--       10 require built (1: refuse when the top is missing), 11 force publish (1/0),
--       12 publish command (SPUBLISH on a cluster, else PUBLISH),
--       then #totals × (user, score, name or ''), #dead × (event, user, reason, error, fields json)
-- Returns {status, version, backlog}: status 'fenced' (not the lease holder: nothing written), 'unbuilt' (the
-- partition's cache is gone: nothing written, rebuild first), 'changed' or 'same'.
-- Ties: equal scores are ranked by user id ascending (byte order).
local lease, lb, names, top, cursor, dlq, stream = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5], KEYS[6], KEYS[7]
if redis.call('GET', lease) ~= ARGV[1] then
  return {'fenced', 0, 0}
end
local current = redis.call('GET', top)
if ARGV[10] == '1' and not current then
  return {'unbuilt', 0, 0}
end
local channel, size, updated_at = ARGV[2], tonumber(ARGV[3]), ARGV[4]
local new_cursor, hw = ARGV[5], ARGV[6]
local n_totals, n_dead, dlq_max = tonumber(ARGV[7]), tonumber(ARGV[8]), ARGV[9]
local force = ARGV[11] == '1'
local publish = ARGV[12]
if publish ~= 'PUBLISH' and publish ~= 'SPUBLISH' then
  return redis.error_reply('commit: unknown publish command')
end
local CHUNK = 500

-- User ids compare by bytes: Lua's `<` on strings follows the server's locale (strcoll).
local function bytes_less(a, b)
  local n = math.min(#a, #b)
  for k = 1, n do
    local x, y = string.byte(a, k), string.byte(b, k)
    if x ~= y then return x < y end
  end
  return #a < #b
end

local i = 13
local zadd, hset = {}, {}
local function flush()
  if #zadd > 0 then redis.call('ZADD', lb, unpack(zadd)); zadd = {} end
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

for _ = 1, n_dead do
  redis.call('XADD', dlq, 'MAXLEN', '~', dlq_max, '*', 'event', ARGV[i], 'user', ARGV[i + 1],
    'reason', ARGV[i + 2], 'error', ARGV[i + 3], 'fields', ARGV[i + 4])
  i = i + 5
end

if new_cursor ~= '' then
  redis.call('SET', cursor, new_cursor)
  redis.call('XTRIM', stream, 'MINID', new_cursor)
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
    return bytes_less(a[1], b[1])
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

local old_entries, old_version, old_updated, old_hw = nil, 0, updated_at, '0-0'
if current then
  local at = string.find(current, '"entries":', 1, true)
  if at then old_entries = string.sub(current, at + 10, -2) end
  old_version = tonumber(string.match(current, '^{"version":(%d+)')) or 0
  old_updated = string.match(current, '"updatedAt":"([^"]*)"') or updated_at
  old_hw = string.match(current, '"hw":"([^"]*)"') or '0-0'
end
if hw == '' then hw = old_hw end

local status, version = 'same', old_version
if force or old_entries ~= entries then
  -- Versions never go backwards, even after a restore from an older RDB file: at least the previous
  -- version + 1 and at least the server time in microseconds.
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
  version = math.max(old_version + 1, now)
  old_updated = updated_at
  status = 'changed'
end
local json = '{"version":' .. string.format('%.0f', version) .. ',"updatedAt":' .. cjson.encode(old_updated) ..
  ',"hw":' .. cjson.encode(hw) .. ',"entries":' .. entries .. '}'
if json ~= current then
  redis.call('SET', top, json)
end
if status == 'changed' then
  redis.call(publish, channel, string.format('%.0f', version))
end
return {status, version, redis.call('XLEN', stream)}
