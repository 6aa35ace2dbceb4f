-- Compare-and-set of an agent run's state. KEYS: the state hash.
-- ARGV: expected version, JSON value, TTL (ms).
local current = tonumber(redis.call('HGET', KEYS[1], 'version') or '0')
if current ~= tonumber(ARGV[1]) then
  return {0, current}
end
local version = current + 1
redis.call('HSET', KEYS[1], 'version', version, 'value', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {1, version}
