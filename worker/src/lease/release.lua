-- Releases a lease only if the caller still holds it. KEYS[1] lease. ARGV[1] value.
-- Returns 1 when released, 0 when it was not ours any more.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
