-- KEYS[1] stream (= channel); ARGV: max_len, max_age_ms, name, data, name as a JSON string,
-- the publish command (`PUBLISH`, or `SPUBLISH` on a Cluster; chosen by the topology,
-- never by input). Publishes the event's JSON object (Event::to_json) on the stream's name.
-- Optional KEYS[2], the marker of an append made at most once, with ARGV[7] its kind:
--   'sequence': KEYS[2] is the hash `sequence -> id` of a group, ARGV[8] the sequence;
--   'key': KEYS[2] is a string `<id> <sha1 of name and data>` for one idempotency key,
--          ARGV[8] its lifetime in ms.
-- Returns {id, 0} when appended, {id, 1} for a repeat (nothing added), {id, 2} when an
-- idempotency key was used before with another event (nothing added; id is the first one).
local fingerprint
if KEYS[2] then
  if ARGV[7] == 'sequence' then
    local seen = redis.call('HGET', KEYS[2], ARGV[8])
    if seen then return {seen, 1} end
  else
    fingerprint = redis.sha1hex(ARGV[3] .. '\n' .. ARGV[4])
    local seen = redis.call('GET', KEYS[2])
    if seen then
      local space = string.find(seen, ' ', 1, true)
      local first = string.sub(seen, 1, space - 1)
      if string.sub(seen, space + 1) == fingerprint then return {first, 1} end
      return {first, 2}
    end
  end
end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*', 'e', ARGV[3], 'd', ARGV[4])
-- The new id's time part is the server's clock now (or later, never earlier).
local min = tonumber(string.match(id, '^%d+')) - tonumber(ARGV[2])
if min > 0 then redis.call('XTRIM', KEYS[1], 'MINID', '~', min .. '-0') end
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) * 2)
if fingerprint then
  redis.call('SET', KEYS[2], id .. ' ' .. fingerprint, 'PX', ARGV[8])
elseif KEYS[2] then
  redis.call('HSET', KEYS[2], ARGV[8], id)
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]))
end
redis.call(ARGV[6], KEYS[1], '{"type":"event","id":"' .. id .. '","event":' .. ARGV[5] .. ',"data":' .. ARGV[4] .. '}')
return {id, 0}
