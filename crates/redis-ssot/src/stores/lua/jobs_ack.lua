-- Acknowledges and deletes a job, taking it off its user's count. KEYS[1] the stream,
-- KEYS[2] the per-user counts; ARGV group, job id, job state prefix and TTL (ms).
status.prefix, status.ttl = ARGV[3], ARGV[4]
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 1 and entry[1] then
  uncount(KEYS[2], entry[1][2])
  set_status(entry[1][2], ARGV[2], 'completed')
end
return acked
