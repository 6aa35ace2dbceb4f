-- One gateway's periodic presence report. KEYS[1] the sorted set of live gateways (score:
-- when the report expires, server clock), KEYS[2] this gateway's hash `user -> sockets`.
-- ARGV gateway id, TTL (ms), 'full' (replace the hash) or 'diff' (apply changes), '1' when
-- the gateway has users with sockets (so its hash must exist), then pairs user, sockets
-- (0 removes the user). Returns 0 when a diff finds the hash gone (expired while Redis was
-- unreachable, or Redis restarted): the caller sends a full report. Else 1.
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
if ARGV[3] == 'diff' and ARGV[4] == '1' and redis.call('EXISTS', KEYS[2]) == 0 then
  return 0
end
if ARGV[3] == 'full' then redis.call('DEL', KEYS[2]) end
for i = 5, #ARGV, 2 do
  if ARGV[i + 1] == '0' then
    redis.call('HDEL', KEYS[2], ARGV[i])
  else
    redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1])
  end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 1
