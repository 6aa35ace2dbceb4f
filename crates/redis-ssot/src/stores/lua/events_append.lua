-- KEYS[1] stream (= channel), optional KEYS[2] the hash `sequence -> id` of a group of
-- events appended once; ARGV: max_len, max_age_ms, name, data, name as a JSON string,
-- the publish command (`PUBLISH`, or `SPUBLISH` on a Cluster; chosen by the topology,
-- never by input), sequence (with KEYS[2]). Publishes the event's JSON object
-- (Event::to_json) on the stream's name. Returns {id, duplicate}.
if KEYS[2] then
  local seen = redis.call('HGET', KEYS[2], ARGV[7])
  if seen then return {seen, 1} end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[3], 'd', ARGV[4])
-- The new id's time part is the server's clock now (or later, never earlier).
local min = tonumber(string.match(id, '^%d+')) - tonumber(ARGV[2])
if min > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', min .. '-0') end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
if KEYS[2] then
  redis.call('HSET', KEYS[2], ARGV[7], id)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
end
redis.call(ARGV[6], KEYS[1], '{"type":"event","id":"' .. id .. '","event":' .. ARGV[5] .. ',"data":' .. ARGV[4] .. '}')
return {id, 0}
