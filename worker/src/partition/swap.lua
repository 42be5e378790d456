-- Swaps a rebuilt partition cache in, fenced by the owner's lease (docs/design.md §5.8).
-- KEYS: 1 lease, 2 lb, 3 names, 4 scratch lb, 5 scratch names, 6 top. ARGV: 1 lease value.
-- Returns 'fenced' (nothing changed) or 'swapped'. The caller then commits an empty batch to write the top.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 'fenced'
end
if redis.call('EXISTS', KEYS[4]) == 1 then
  redis.call('RENAME', KEYS[4], KEYS[2])
else
  redis.call('DEL', KEYS[2])
end
if redis.call('EXISTS', KEYS[5]) == 1 then
  redis.call('RENAME', KEYS[5], KEYS[3])
else
  redis.call('DEL', KEYS[3])
end
-- A missing top marks the partition unbuilt until the caller's commit writes it.
redis.call('DEL', KEYS[6])
return 'swapped'
