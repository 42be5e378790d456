-- The caller's place in their own partition (KEYS: lb, names; ARGV[1]: user). Returns {} when the user has
-- no score, else {score, above, name} with above = #higher scores + #equal scores with a smaller user id
-- (byte order: the order ZRANK keeps among equal scores). One script so score and count are one cut.
local score = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not score then return {} end
local higher = redis.call('ZCOUNT', KEYS[1], '(' .. score, '+inf')
local lower = redis.call('ZCOUNT', KEYS[1], '-inf', '(' .. score)
local ties_before = redis.call('ZRANK', KEYS[1], ARGV[1]) - lower
local name = redis.call('HGET', KEYS[2], ARGV[1]) or ''
return {score, higher + ties_before, name}
