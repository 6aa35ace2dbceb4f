-- Adds a job, once per idempotency key, unless the backlog is full or its user holds their
-- most jobs already. KEYS[1] the stream, KEYS[2] the per-user counts, KEYS[3] the idempotency
-- marker (absent without a key); ARGV user, kind, payload, idempotency key, marker TTL in
-- ms, max length, most jobs per user (0: no bound), job state prefix (jobs_status.lua;
-- the state is `queued`, kept as long as the marker). Returns `{job_id, 0}` when added,
-- `{job_id, 1}` for a duplicate (answered even when full: a retry of an accepted job),
-- `{'', 2}` when the stream holds max length entries already, `{'', 3}` when the user holds
-- their most jobs.
if KEYS[3] then
  local existing = redis.call('GET', KEYS[3])
  if existing then
    return {existing, 1}
  end
end
if redis.call('XLEN', KEYS[1]) >= tonumber(ARGV[6]) then
  return {'', 2}
end
local per_user = tonumber(ARGV[7])
if per_user > 0 and (tonumber(redis.call('HGET', KEYS[2], ARGV[1])) or 0) >= per_user then
  return {'', 3}
end
local id
if KEYS[3] then
  id = redis.call('XADD', KEYS[1], '*',
    'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3], 'idem', ARGV[4])
  redis.call('SET', KEYS[3], id, 'PX', ARGV[5])
else
  id = redis.call('XADD', KEYS[1], '*', 'user', ARGV[1], 'kind', ARGV[2], 'payload', ARGV[3])
end
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('SET', ARGV[8] .. ARGV[1] .. ':' .. id, 'queued', 'PX', ARGV[5])
return {id, 0}
