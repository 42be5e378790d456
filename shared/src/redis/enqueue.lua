-- Accepts one score update in a single round trip on the user's partition (docs/design.md §5.1).
-- KEYS[1] the partition's stream {sb:p}:updates, KEYS[2] rate-limit key, KEYS[3] idempotency key (optional)
-- ARGV: user, name, inc, request id, rate per sec, burst, max backlog, idempotency ttl ms, schema version,
--       touch on replay ('1' when the caller WAITs for replicas: a replay rewrites its key, a write that follows
--       the original XADD in the replication stream, so the caller's WAIT confirms the original too)
-- Returns {status, value}: {"accepted", id} | {"replay", id} | {"conflict", ""}
--   | {"backlogged", ""} | {"limited", retry_after_ms}
local stream, rl_key, idem_key = KEYS[1], KEYS[2], KEYS[3]
local user, name, inc, req = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local rate, burst = tonumber(ARGV[5]), tonumber(ARGV[6])
local max_backlog, idem_ttl = tonumber(ARGV[7]), tonumber(ARGV[8])
local schema = ARGV[9]
local touch_on_replay = ARGV[10] == '1'

-- 1. Idempotency: a replay answers as the first call did; another body under the same key is a conflict.
if idem_key then
  local seen = redis.call('GET', idem_key)
  if seen then
    local sep = string.find(seen, '|', 1, true)
    if string.sub(seen, 1, sep - 1) == inc then
      if touch_on_replay then
        redis.call('SET', idem_key, seen, 'KEEPTTL')
      end
      return {'replay', string.sub(seen, sep + 1)}
    end
    return {'conflict', ''}
  end
end

-- 2. Backlog bound: refuse rather than grow the stream without limit.
if redis.call('XLEN', stream) >= max_backlog then
  return {'backlogged', ''}
end

-- 3. GCRA rate limit in microseconds of server time: a burst of `burst`, then `rate` per second.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = 1000000 / rate
local tat = tonumber(redis.call('GET', rl_key) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then
  return {'limited', string.format('%.0f', math.ceil((allow_at - now) / 1000))}
end
redis.call('SET', rl_key, string.format('%.0f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)

-- 4. Append. The entry id is the event id.
local ts = string.format('%.0f', math.floor(now / 1000))
local id
if name ~= '' then
  id = redis.call('XADD', stream, '*', 'v', schema, 'user', user, 'name', name, 'inc', inc, 'ts', ts, 'req', req)
else
  id = redis.call('XADD', stream, '*', 'v', schema, 'user', user, 'inc', inc, 'ts', ts, 'req', req)
end

if idem_key then
  redis.call('SET', idem_key, inc .. '|' .. id, 'PX', idem_ttl)
end
return {'accepted', id}
