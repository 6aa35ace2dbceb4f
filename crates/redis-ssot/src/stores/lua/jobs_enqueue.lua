-- Adds a job, once per idempotency key, unless the backlog is full. KEYS[1] the stream, KEYS[2]
-- the idempotency marker (absent without a key); ARGV user, kind, payload, idempotency key,
-- marker TTL in ms, max length. Returns `{job_id, 0}` when added, `{job_id, 1}` for a duplicate
-- (answered even when full: a retry of an accepted job), `{'', 2}` when the stream holds max
-- length entries already.
if KEYS[2] then
  local existing = redis.call('GET', KEYS[2])
  if existing then
    return {existing, 1}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[6]) then
  return {'', 2}
end
local id
if KEYS[2] then
  id = redis.call('XADD', KEYS[1], '*',
    'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3], 'idem', ARGV[4])
  redis.call('SET', KEYS[2], id, 'PX', ARGV[5])
else
  id = redis.call('XADD', KEYS[1], '*', 'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3])
end
return {id, 0}
