-- How many users of one partition rank above (score, user) (KEYS: lb; ARGV[1]: score as ZSCORE gave it,
-- ARGV[2]: user, who need not be in this partition): #higher scores + #equal scores with a user id smaller
-- in byte order. Equal scores sit at ascending ranks lower .. lower + ties - 1 ordered by member bytes, so
-- the ones before `user` are a prefix, found by binary search. Ids are compared with string.byte, never
-- with `<` on strings: Lua compares strings with strcoll, which follows the server's locale.
local lb, score, user = KEYS[1], ARGV[1], ARGV[2]
local higher = redis.call('ZCOUNT', lb, '(' .. score, '+inf')
local ties = redis.call('ZCOUNT', lb, score, score)
if ties == 0 then return higher end
local lower = redis.call('ZCOUNT', lb, '-inf', '(' .. score)
local function before(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then return x < y end
  end
  return #a < #b
end
local lo, hi = 0, ties
while lo < hi do
  local mid = math.floor((lo + hi) / 2)
  local member = redis.call('ZRANGE', lb, lower + mid, lower + mid)[1]
  if before(member, user) then lo = mid + 1 else hi = mid end
end
return higher + lo
