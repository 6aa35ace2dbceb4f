-- Creates a session. KEYS: session hash, the user's session set.
-- ARGV: id, ttl (ms), meta (JSON).
local now = now_ms()
local ttl = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'created', now, 'last_seen', now, 'meta', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('SADD', KEYS[2], ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return now
