-- Slides a session's expiry. KEYS: session hash, the user's session set. ARGV: ttl (ms).
if redis.call('EXISTS', KEYS[1]) == 0 then return {} end
local now = now_ms()
local ttl = tonumber(ARGV[1])
redis.call('HSET', KEYS[1], 'last_seen', now)
redis.call('PEXPIRE', KEYS[1], ttl)
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return redis.call('HGETALL', KEYS[1])
