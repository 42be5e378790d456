-- Reads the snapshot in one round trip (KEYS: top, lb, names, version; ARGV[1]: size).
-- Returns {top_json} when the snapshot exists, else {false, version, rows…} with rows as
-- user, score, name triples covering every candidate for the top `size` (ties at the boundary included).
local top = redis.call('GET', KEYS[1])
if top then return {top} end
local n = tonumber(ARGV[1])
local version = redis.call('GET', KEYS[4]) or '0'
local head = redis.call('ZREVRANGE', KEYS[2], 0, n - 1, 'WITHSCORES')
local out = {false, version}
if #head == 0 then return out end
local boundary = head[#head]
local function add(list)
  for i = 1, #list, 2 do
    local name = redis.call('HGET', KEYS[3], list[i]) or ''
    table.insert(out, list[i]); table.insert(out, list[i + 1]); table.insert(out, name)
  end
end
add(redis.call('ZREVRANGEBYSCORE', KEYS[2], '+inf', '(' .. boundary, 'WITHSCORES'))
add(redis.call('ZRANGEBYSCORE', KEYS[2], boundary, boundary, 'WITHSCORES', 'LIMIT', 0, n))
return out
