//! The queue's Lua scripts. Each keeps one partition's keys in one hash tag (KEYS[1] the
//! stream, KEYS[2] the dead letters or the idempotency marker), so it is legal on a Cluster.

use std::sync::LazyLock;

use redis::Script;

/// Moves one pending job to the dead-letter stream, with the fields it was enqueued with, and
/// removes it from the queue. Shared by the scripts below; KEYS[1] the stream, KEYS[2] the
/// dead letters. Returns `{dead_id, job_id, deliveries, reason, {fields}}`.
const BURY_LUA: &str = r"
local function bury(group, id, deliveries, reason, max_len)
  local entry = redis.call('XRANGE', KEYS[1], id, id)
  local fields = {}
  if entry[1] then fields = entry[1][2] end
  local args = {KEYS[2], 'MAXLEN', '~', max_len, '*',
    'job', id, 'deliveries', deliveries, 'error', reason}
  for _, v in ipairs(fields) do args[#args + 1] = v end
  local dead_id = redis.call('XADD', unpack(args))
  redis.call('XACK', KEYS[1], group, id)
  redis.call('XDEL', KEYS[1], id)
  return {dead_id, id, deliveries, reason, fields}
end
";

/// Adds a job, once per idempotency key, unless the backlog is full. KEYS[1] the stream,
/// KEYS[2] the idempotency marker (absent without a key); ARGV user, kind, payload,
/// idempotency key, marker TTL in ms, max length. Returns `{job_id, 0}` when added,
/// `{job_id, 1}` for a duplicate (answered even when full: a retry of an accepted job),
/// `{'', 2}` when the stream holds max length entries already.
pub(super) static ENQUEUE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
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
",
    )
});

/// Acknowledges and deletes a job. KEYS[1] the stream; ARGV group, job id.
pub(super) static ACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
",
    )
});

/// Records a failed delivery. ARGV group, consumer, job id, error, max deliveries, dead-letter
/// max length, idle to set for a retry (ms). Returns `{0, nil}` when the job is no longer
/// pending for this consumer, `{1, nil}` when it will be retried, `{2, dead}` when it was
/// dead-lettered.
pub(super) static FAIL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{BURY_LUA}{}",
        r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #pending == 0 or pending[1][2] ~= ARGV[2] then
  return {0, false}
end
local deliveries = pending[1][4]
if deliveries < tonumber(ARGV[5]) then
  redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'IDLE', ARGV[7], 'JUSTID')
  return {1, false}
end
return {2, bury(ARGV[1], ARGV[3], deliveries, ARGV[4], ARGV[6])}
"
    ))
});

/// Takes over jobs idle longer than a bound, dead-lettering those delivered too often.
/// ARGV group, consumer, min idle (ms), cursor, count, max deliveries, dead-letter max length.
/// Returns `{next_cursor, {{id, deliveries, {fields}}...}, {dead...}}`.
pub(super) static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{BURY_LUA}{}",
        r"
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
"
    ))
});
