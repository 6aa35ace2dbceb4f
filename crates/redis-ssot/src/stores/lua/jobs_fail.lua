-- Records a failed delivery. ARGV group, consumer, job id, error, max deliveries, dead-letter
-- max length, idle to set for a retry (ms), job state prefix and TTL (ms). Returns `{0, nil}` when the job is no longer
-- pending for this consumer, `{1, nil}` when it will be retried, `{2, dead}` when it was
-- dead-lettered.
status.prefix, status.ttl = ARGV[8], ARGV[9]
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then
  return {0, false}
end
local deliveries = pending[1][4]
if deliveries < tonumber(ARGV[5]) then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[7], 'JUSTID')
  local entry = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
  if entry[1] then set_status(entry[1][2], ARGV[3], 'failed') end
  return {1, false}
end
return {2, bury(ARGV[1], ARGV[3], deliveries, ARGV[4], ARGV[6])}
