-- Publishes a merged global top, fenced by the merger lease (docs/design.md §5.7): only when the entries
-- changed; the version is max(previous + 1, server time in µs, this merger's last published + 1), so it
-- never goes backwards across restarts, restores from an older RDB file and failovers.
-- KEYS: 1 merger lease, 2 {sb}:top, 3 {sb}:version. ARGV: 1 lease value, 2 entries JSON, 3 updatedAt,
--       4 lowest acceptable version, 5 channel, 6 publish command (SPUBLISH on a cluster, else PUBLISH).
-- Returns {status, version}: 'fenced', 'same' or 'published'.
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return {'fenced', 0}
end
local entries = ARGV[2]
local current = redis.call('GET', KEYS[2])
local previous = tonumber(redis.call('GET', KEYS[3]) or '0')
if current then
  local at = string.find(current, '"entries":', 1, true)
  if at and string.sub(current, at + 10, -2) == entries then
    return {'same', previous}
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local version = math.max(previous + 1, now, tonumber(ARGV[4]))
local json = '{"version":' .. string.format('%.0f', version) .. ',"updatedAt":' .. cjson.encode(ARGV[3]) ..
  ',"entries":' .. entries .. '}'
redis.call('SET', KEYS[3], string.format('%.0f', version))
redis.call('SET', KEYS[2], json)
redis.call(ARGV[6], ARGV[5], json)
return {'published', version}
