-- One partition's top, computed from its set when its `{sb:p}:top` is missing (KEYS: lb, names;
-- ARGV[1]: size). Returns user, score, name triples covering every candidate for the partition's top
-- `size`, ties at the boundary included (the `size` smallest ids at the boundary score, which is the
-- order ZRANGEBYSCORE keeps among equal scores); the caller sorts them.
local n = tonumber(ARGV[1])
local head = redis.call('ZREVRANGE', KEYS[1], 0, n - 1, 'WITHSCORES')
local out = {}
if #head == 0 then return out end
local boundary = head[#head]
local function add(list)
  for i = 1, #list, 2 do
    local name = redis.call('HGET', KEYS[2], list[i]) or ''
    table.insert(out, list[i]); table.insert(out, list[i + 1]); table.insert(out, name)
  end
end
add(redis.call('ZREVRANGEBYSCORE', KEYS[1], '+inf', '(' .. boundary, 'WITHSCORES'))
add(redis.call('ZRANGEBYSCORE', KEYS[1], boundary, boundary, 'WITHSCORES', 'LIMIT', 0, n))
return out
