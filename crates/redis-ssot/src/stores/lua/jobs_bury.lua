-- Moves one pending job to the dead-letter stream, with the fields it was enqueued with,
-- and removes it from the queue, taking it off its user's count. Composed after jobs_count
-- and jobs_status, before jobs_fail and jobs_reclaim; KEYS[1] the stream, KEYS[2] the dead letters,
-- KEYS[3] the per-user counts. Returns `{dead_id, job_id, deliveries, reason, {fields}}`.
local function bury(group, id, deliveries, reason, max_len)
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  local fields = {}
  if entry[1] then fields = entry[1][2] end
  local args = {KEYS[2], 'MAXLEN', '~', max_len, '*',
    'job', id, 'deliveries', deliveries, 'error', reason}
  for _, v in ipairs(fields) do args[#args + 1] = v end
  local dead_id = redis.call('XADD', unpack(args))
  redis.call('XACK', KEYS[1], group, id)
  if redis.call('XDEL', KEYS[1], id) == 1 then
    uncount(KEYS[3], fields)
  end
  set_status(fields, id, 'dead')
  return {dead_id, id, deliveries, reason, fields}
end
