-- Takes the lock if free. KEYS: the lease, the fencing counter. ARGV: holder, lease (ms).
if redis.call('EXISTS', KEYS[1]) == 1 then
  return false
end
local now = now_us()
local token = redis.call('INCR', KEYS[2])
if token < now then
  token = now
  redis.call('SET', KEYS[2], string.format('%d', token))
end
redis.call('SET', KEYS[1], string.format('%d', token) .. ':' .. ARGV[1], 'PX', ARGV[2])
return token
