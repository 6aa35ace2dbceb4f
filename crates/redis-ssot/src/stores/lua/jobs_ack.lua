-- Acknowledges and deletes a job, taking it off its user's count. KEYS[1] the stream,
-- KEYS[2] the per-user counts; ARGV group, job id.
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
local entry = redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2])
if redis.call('XDEL', KEYS[1], ARGV[2]) == 1 and entry[1] then
  uncount(KEYS[2], entry[1][2])
end
return acked
