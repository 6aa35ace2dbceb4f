-- Marks a job `running` when a worker starts an attempt. KEYS[1] its state key. Only from
-- `queued` or `failed`: a late attempt of a job already completed or dead changes nothing.
local state = redis.call('GET', KEYS[1])
if state == 'queued' or state == 'failed' then
  redis.call('SET', KEYS[1], 'running', 'KEEPTTL')
  return 1
end
return 0
