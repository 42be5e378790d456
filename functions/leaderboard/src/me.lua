-- The caller's position (KEYS: lb, names; ARGV[1]: user). Returns {} when unranked, else
-- {score, rank, name} with rank = 1 + #higher scores + #equal scores with a smaller user id.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return {} end
local higher = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
local lower = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score)
local ties_before = redis.call('ZRANK', KEYS[1], ARGV[1]) - lower
local name = redis.call('HGET', KEYS[2], ARGV[1]) or ''
return {score, higher + ties_before + 1, name}
