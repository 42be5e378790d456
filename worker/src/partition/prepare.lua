-- Fenced preparation of a partition after its lease is acquired (docs/design.md §5.4): when the stream's
-- last id is below the store's high-water mark (Redis lost entries the store applied), moves the stream's
-- id to it so no new event can get an id at or below a watermark.
-- KEYS: 1 lease, 2 updates. ARGV: 1 lease value, 2 hw ms, 3 hw seq.
-- Returns {status, last id}: 'fenced', 'moved' (the id was raised) or 'ok'.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'fenced', ''}
end
local hw_ms, hw_seq = tonumber(ARGV[2]), tonumber(ARGV[3])
local hw = ARGV[2] .. '-' .. ARGV[3]
if redis.call('EXISTS', KEYS[2]) == 0 then
  if hw_ms == 0 and hw_seq == 0 then return {'ok', '0-0'} end
  -- An empty stream whose last id is hw.
  redis.call('XADD', KEYS[2], 'MAXLEN', '0', hw, 'x', 'x')
  return {'moved', hw}
end
local info = redis.call('XINFO', 'STREAM', KEYS[2])
local last = '0-0'
for j = 1, #info, 2 do
  if info[j] == 'last-generated-id' then last = info[j + 1] end
end
local dash = string.find(last, '-', 1, true)
local last_ms, last_seq = tonumber(string.sub(last, 1, dash - 1)), tonumber(string.sub(last, dash + 1))
if last_ms < hw_ms or (last_ms == hw_ms and last_seq < hw_seq) then
  redis.call('XSETID', KEYS[2], hw)
  return {'moved', hw}
end
return {'ok', last}
