-- Renews a lease only if the caller still holds it (the whole value: worker, token, epoch).
-- KEYS[1] lease. ARGV[1] value, ARGV[2] ttl ms. Returns 1 when renewed, 0 when lost.
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
