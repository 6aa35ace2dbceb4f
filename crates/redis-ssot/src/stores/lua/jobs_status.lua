-- The state of each job, for `GET /v1/users/{id}/jobs/{job}`: a string
-- `<status prefix><user>:<job id>` in the partition's hash tag, one of `queued`, `running`,
-- `completed`, `failed` (its last attempt failed; it will be retried) or `dead`, kept for the
-- idempotency TTL from its last change. Composed first by the scripts that move a job; each
-- sets `status.prefix` and `status.ttl` from its ARGV before calling `set_status`.
local status = {}
-- Sets the state of job `id` of the user named in `fields` (an entry's flat field list).
local function set_status(fields, id, state)
  for i = 1, #fields, 2 do
    if fields[i] == 'user' then
      redis.call('SET', status.prefix .. fields[i + 1] .. ':' .. id, state, 'PX', status.ttl)
      return
    end
  end
end
