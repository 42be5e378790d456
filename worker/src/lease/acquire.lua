-- Acquires a free lease (docs/design.md §5.2): a new fencing epoch and the caller's new random token.
-- KEYS[1] lease, KEYS[2] epoch counter. ARGV[1] worker id, ARGV[2] token, ARGV[3] ttl ms.
-- Returns the lease value `<worker>|<token>|<epoch>`, or false when the lease is held.
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local epoch = redis.call('INCR', KEYS[2])
local value = ARGV[1] .. '|' .. ARGV[2] .. '|' .. epoch
redis.call('SET', KEYS[1], value, 'PX', ARGV[3])
return value
