-- Acknowledges and deletes a job. KEYS[1] the stream; ARGV group, job id.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
