-- Takes over jobs idle longer than a bound, dead-lettering those delivered too often. ARGV
-- group, consumer, min idle (ms), cursor, count, max deliveries, dead-letter max length,
-- job state prefix and TTL (ms).
-- Returns `{next_cursor, {{id, deliveries, {fields}}...}, {dead...}}`.
status.prefix, status.ttl = ARGV[8], ARGV[9]
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4],
  'COUNT', ARGV[5])
local jobs, dead = {}, {}
for _, entry in ipairs(claimed[2]) do
  local id = entry[1]
  if type(entry[2]) ~= 'table' then
    -- Deleted from the stream while pending (Redis 6.2 reports these here).
    redis.call('XACK', KEYS[1], ARGV[1], id)
  else
    local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
    local deliveries = pending[1][4]
    if deliveries > tonumber(ARGV[6]) then
      local reason = 'abandoned: delivered ' .. (deliveries - 1) ..
        ' times without ack (worker died or timed out)'
      dead[#dead + 1] = bury(ARGV[1], id, deliveries - 1, reason, ARGV[7])
    else
      jobs[#jobs + 1] = {id, deliveries, entry[2]}
    end
  end
end
return {claimed[1], jobs, dead}
